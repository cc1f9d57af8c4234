"""The conditional Gaussian-mixture VAE."""

from __future__ import annotations

from anndata import AnnData

from cgmvae.constants import ConditionEffectKind, ConditionInvarianceKind
from cgmvae.models.conditional import ConditionalMixin
from cgmvae.models.gmvae import GMVAE


class CGMVAE(ConditionalMixin, GMVAE):
    """Conditional Gaussian-mixture VAE.

    y ~ Cat(π), z | y ~ N(μ_y, diag σ_y²), x ~ p(x | z, c) with the condition c given to
    the decoder (and, for count likelihoods, the encoder: ``encode_condition``), so that the
    clusters need not encode it, and the condition can be swapped at decoding time
    (:meth:`predict_counterfactual`). By default the condition
    changes the decoder's outputs by a response shared by all cells plus one per cluster,
    shrunk toward the shared one (``condition_effect="additive"``, see
    :class:`~cgmvae.models.conditional.ConditionalMixin`), so that a cluster never seen
    under a condition gets the shared response, and a learned penalty (maximum mean
    discrepancy between the conditions' latent codes, ``condition_invariance="mmd"``) keeps
    the condition out of z. Training and cluster methods as
    :class:`GMVAE`; register the condition with ``setup_anndata(condition_key=...)``.

    Parameters
    ----------
    adata, registry, n_clusters, components_per_cluster, n_latent, n_hidden, n_layers, \
dropout_rate, likelihood, beta, beta_y, free_bits, learn_cluster_weights, n_mc_samples, \
classification_weight
        As for :class:`GMVAE`.
    condition_effect
        How the condition changes the decoder: ``None`` (default) is ``"additive"`` for
        count likelihoods and ``"injected"`` (an input of every layer) for the others;
        ``"affine"`` undoes a per-condition contrast and offset before the encoder,
        ``"switched"`` gives each condition its own first encoder and last decoder layer
        (see :class:`~cgmvae.models.conditional.ConditionalMixin`).
    specific_effect_scale
        Scale of the Laplace prior shrinking each cluster's response toward the shared one.
    condition_invariance, invariance_weight
        A learned penalty that keeps the condition out of the latent (``"mmd"``, the
        default, ``"adversarial"`` or ``None``) and its weight, see
        :class:`~cgmvae.models.conditional.ConditionalMixin`.
    cluster_share_weight
        With a condition penalty, the weight of a second one on the mixture: every cluster
        holds the same share of each condition's cells (q(y | x, c) averaged per condition
        in every minibatch, :func:`~cgmvae.nn.cluster_share_penalty`), from the placement
        of the mixture on; 0 turns it off. It makes the same assumption as
        ``condition_invariance``. ``None`` (default): 30 for count likelihoods
        (``cgmvae.nn.invariance.CLUSTER_SHARE_WEIGHT``), 0 for the others (on images it did
        not help, see the conditions page of the docs).
    encode_condition
        Whether the encoder sees the condition or encodes x alone; ``None`` (default): it
        sees it for count likelihoods only, see
        :class:`~cgmvae.models.conditional.ConditionalMixin`.

    Examples
    --------
    >>> CGMVAE.setup_anndata(adata, layer="counts", condition_key="stim")
    >>> model = CGMVAE(adata, n_clusters=8)
    >>> model.train()
    >>> model.write_results(adata)  # X_cgmvae, cgmvae_cluster, cgmvae_cluster_probs
    >>> stimulated = model.predict_counterfactual(target_condition="stim")
    """

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        n_clusters: int = 10,
        components_per_cluster: int = 4,
        n_latent: int = 10,
        n_hidden: int | None = None,
        n_layers: int | None = None,
        dropout_rate: float = 0.1,
        likelihood: str = "nb",
        beta: float = 1.0,
        beta_y: float = 1.0,
        free_bits: float = 0.0,
        learn_cluster_weights: bool = False,
        n_mc_samples: int = 1,
        classification_weight: float = 100.0,
        condition_effect: ConditionEffectKind | None = None,
        specific_effect_scale: float = 0.1,
        condition_invariance: ConditionInvarianceKind | None = "mmd",
        invariance_weight: float = 10.0,
        cluster_share_weight: float | None = None,
        encode_condition: bool | None = None,
    ):
        self._build(locals())
