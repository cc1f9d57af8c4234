"""Variational autoencoder with a standard normal prior."""

from __future__ import annotations

from anndata import AnnData

from cgmvae.constants import ConditionEffectKind, ConditionInvarianceKind
from cgmvae.models.base import BaseAutoencoderModel
from cgmvae.models.conditional import ConditionalMixin
from cgmvae.modules.vae import VAEModule


class VAE(BaseAutoencoderModel):
    """VAE: z ~ N(0, I), x ~ p(x | z), q(z | x) a diagonal Gaussian.

    The negative ELBO is E_q[−log p(x | z)] + β KL(q(z | x) ‖ N(0, I)), with the KL in
    closed form and the reconstruction averaged over ``n_mc_samples`` reparameterised draws
    of z (the k of Kingma & Welling's estimator).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    registry
        A saved data registry, used by :meth:`load` when no AnnData is given.
    n_latent, n_hidden, n_layers, dropout_rate
        Network sizes; ``n_hidden``/``n_layers`` ``None``: 512 × 2 for ``"bernoulli"``
        (images), else 128 × 1.
    likelihood
        ``"nb"`` (default), ``"zinb"``, ``"poisson"``, ``"gaussian"``, ``"bernoulli"``, or a name
        registered with :func:`~cgmvae.nn.register_likelihood`.
    beta
        Weight of the KL term (β-VAE); ``beta=0`` leaves the latent unregularised.
    n_mc_samples
        Draws of z per observation in the reconstruction term.

    Examples
    --------
    >>> VAE.setup_anndata(adata, layer="counts")
    >>> model = VAE(adata, beta=1.0, n_mc_samples=1)
    >>> model.train()
    >>> model.write_results(adata)  # .obsm["X_vae"]
    """

    _module_cls = VAEModule

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        n_latent: int = 10,
        n_hidden: int | None = None,
        n_layers: int | None = None,
        dropout_rate: float = 0.1,
        likelihood: str = "nb",
        beta: float = 1.0,
        n_mc_samples: int = 1,
    ):
        self._build(locals())


class CVAE(ConditionalMixin, VAE):
    """Conditional VAE: z ~ N(0, I), x ~ p(x | z, c), q(z | x, c).

    The condition registered with ``setup_anndata(condition_key=...)`` enters the decoder
    (and, for count likelihoods, the encoder: ``encode_condition``), so z need not encode
    it; in the decoder by default as a response shared by all cells
    (``condition_effect="additive"``, see
    :class:`~cgmvae.models.conditional.ConditionalMixin`).

    Parameters
    ----------
    adata, registry, n_latent, n_hidden, n_layers, dropout_rate, likelihood, beta, n_mc_samples
        As for :class:`VAE`.
    condition_effect
        How the condition changes the decoder: ``None`` (default) is ``"additive"`` (a
        response shared by all cells) for count likelihoods and ``"injected"`` (an input of
        every layer) for the others; ``"affine"`` undoes a per-condition contrast and offset
        before the encoder, ``"switched"`` gives each condition its own first encoder and
        last decoder layer.
    specific_effect_scale
        Unused without clusters; kept so that every conditional model takes it.
    condition_invariance, invariance_weight
        A learned penalty that keeps the condition out of the latent (``"mmd"``, the
        default, ``"adversarial"`` or ``None``) and its weight, see
        :class:`~cgmvae.models.conditional.ConditionalMixin`.
    encode_condition
        Whether the encoder sees the condition or encodes x alone; ``None`` (default): it
        sees it for count likelihoods only, see
        :class:`~cgmvae.models.conditional.ConditionalMixin`.

    Examples
    --------
    >>> CVAE.setup_anndata(adata, layer="counts", condition_key="batch")
    >>> model = CVAE(adata)
    >>> model.train()
    >>> model.write_results(adata)  # .obsm["X_cvae"]
    >>> stimulated = model.predict_counterfactual(target_condition="stim")
    """

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        n_latent: int = 10,
        n_hidden: int | None = None,
        n_layers: int | None = None,
        dropout_rate: float = 0.1,
        likelihood: str = "nb",
        beta: float = 1.0,
        n_mc_samples: int = 1,
        condition_effect: ConditionEffectKind | None = None,
        specific_effect_scale: float = 0.1,
        condition_invariance: ConditionInvarianceKind | None = "mmd",
        invariance_weight: float = 10.0,
        encode_condition: bool | None = None,
    ):
        self._build(locals())
