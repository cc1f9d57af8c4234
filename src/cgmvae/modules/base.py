"""The torch module every model builds on: encode, decode, reconstruct."""

from __future__ import annotations

from typing import NamedTuple

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch.distributions import Normal

from cgmvae.constants import MODULE_KEYS, REGISTRY_KEYS, check_condition_effect
from cgmvae.nn.blocks import Decoder, Encoder
from cgmvae.nn.condition_adapter import ConditionAdapter
from cgmvae.nn.condition_effect import ConditionEffect
from cgmvae.nn.invariance import INVARIANCE_PENALTIES
from cgmvae.nn.likelihood import get_likelihood


class LatentCost(NamedTuple):
    """What the latent adds to the loss, per observation.

    ``kl_terms`` are the unweighted KL terms of the ELBO; ``penalty`` is their weighted sum,
    scaled by the KL warm-up; ``extra_loss`` is added without warm-up (e.g. a classification
    loss) and ``extra_terms`` are only logged.
    """

    kl_terms: dict[str, torch.Tensor]
    penalty: torch.Tensor | float = 0.0
    extra_loss: torch.Tensor | float = 0.0
    extra_terms: dict[str, torch.Tensor] | None = None


class AutoencoderModule(BaseModuleClass):
    """Deterministic autoencoder x̂ = D(E(x, c), c, s); the base of every variational module.

    The condition c enters the decoder and, with ``encode_condition``, the encoder (see
    ``condition_effect``); batch and covariates s only the decoder, as in scVI.
    ``inference`` and ``generative`` return scvi-tools' module keys
    (:data:`cgmvae.constants.MODULE_KEYS`): ``qz`` (a distribution, variational modules
    only), ``qzm``, ``qzv``, ``z``, ``library`` and
    ``px``. Subclasses change how z is drawn (:meth:`draw_latent`) and what the latent
    costs (:meth:`latent_terms`); everything else is shared.

    Parameters
    ----------
    n_input
        Number of observed features.
    n_conditions
        Number of condition categories (1: unconditional).
    n_batch
        Number of batches (nuisance, decoder only).
    n_cats_per_cov
        Number of categories of each categorical covariate (decoder only).
    n_continuous_cov
        Number of continuous covariates (decoder only).
    n_latent, n_hidden, n_layers, dropout_rate
        Network sizes.
    likelihood
        Observation model, see :mod:`cgmvae.nn.likelihood`.
    linear
        Remove every non-linearity (and batch norm, dropout) from encoder and decoder.
    noise_sd
        Standard deviation of the Gaussian noise added to the encoder input during training
        (denoising autoencoder); the loss still targets the clean input.
    condition_effect
        How the condition enters the decoder: ``"injected"`` as an input of every hidden
        layer, ``"additive"`` only as a :class:`~cgmvae.nn.ConditionEffect` added to the
        outputs (the hidden layers then see z, batch and covariates only), ``"affine"``
        only as a :class:`~cgmvae.nn.ConditionAdapter` on the mean, whose inverse is
        applied to the encoder input (which then does not see the condition), ``"switched"``
        as a weight block per condition in the encoder's first and the decoder's last layer
        (:func:`~cgmvae.nn.blocks.switch_by_condition`; the layers between see no condition).
    n_effect_clusters
        Clusters with their own additive response (0: a shared response only).
    specific_effect_scale
        Scale of the Laplace prior on the cluster-specific responses.
    condition_invariance
        A learned penalty on the latent means that makes the conditions hard to tell apart
        from them (``"mmd"`` or ``"adversarial"``, see :mod:`cgmvae.nn.invariance`); ``None``:
        none. Only with two conditions or more.
    invariance_weight
        Weight of that penalty in the loss (per observation, as the ELBO's terms).
    encode_condition
        Whether the encoder sees the condition (as an input of every layer, with
        ``"injected"`` and ``"additive"``); ``False`` encodes every observation by one function
        of x alone, as scVI's ``encode_covariates=False``. Not with ``"switched"``, whose
        first encoder layer is the condition's own.
    """

    variational = False

    def __init__(
        self,
        n_input: int,
        n_conditions: int = 1,
        n_batch: int = 1,
        n_cats_per_cov: list[int] | None = None,
        n_continuous_cov: int = 0,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        likelihood: str = "gaussian",
        linear: bool = False,
        noise_sd: float = 0.0,
        condition_effect: str = "injected",
        n_effect_clusters: int = 0,
        specific_effect_scale: float = 0.1,
        condition_invariance: str | None = None,
        invariance_weight: float = 10.0,
        encode_condition: bool = True,
    ):
        super().__init__()
        observation = get_likelihood(likelihood)
        self.likelihood = likelihood
        self.n_latent = n_latent
        self.n_conditions = n_conditions
        self.noise_sd = noise_sd
        self.log_transform_input = observation.counts
        self.n_cats_per_cov = list(n_cats_per_cov or [])
        self.n_continuous_cov = n_continuous_cov
        self.register_buffer("typical_library", torch.tensor(1.0))
        kind = check_condition_effect(condition_effect)
        self.condition_effect = (
            ConditionEffect(n_conditions, n_input, n_effect_clusters, specific_effect_scale)
            if kind == "additive"
            else None
        )
        self.condition_adapter = None
        if kind == "affine":
            if not observation.supports_affine:
                raise ValueError(
                    f"condition_effect='affine' is for gaussian and bernoulli data, not "
                    f"likelihood={likelihood!r}; use condition_effect='additive' (or "
                    "'injected') for it."
                )
            self.condition_adapter = ConditionAdapter(n_conditions, n_input)
        self.invariance = None
        if condition_invariance is not None and n_conditions > 1:
            penalty = INVARIANCE_PENALTIES[condition_invariance]
            self.invariance = penalty.for_latent(n_latent, n_conditions)
        self.invariance_weight = invariance_weight
        if not encode_condition and kind == "switched":
            raise ValueError(
                "encode_condition=False cannot be combined with condition_effect='switched', "
                "whose first encoder layer is the condition's own; choose another "
                "condition_effect or keep encode_condition=True."
            )
        blind = not encode_condition or kind in ("affine", "switched")
        encoder_conditions = 1 if blind else n_conditions
        decoder_conditions = n_conditions if kind == "injected" else 1
        switched = n_conditions if kind == "switched" else 1
        self.encoder = Encoder(
            n_input, n_latent, n_hidden, n_layers, encoder_conditions, dropout_rate,
            linear=linear, variational=self.variational, n_switched=switched,
        )  # fmt: skip
        self.decoder = Decoder(
            n_latent, n_input, n_hidden, n_layers,
            [decoder_conditions, n_batch, *self.n_cats_per_cov], dropout_rate,
            likelihood,
            linear=linear, learn_scale=self.variational, n_continuous=n_continuous_cov,
            n_switched=switched,
        )  # fmt: skip

    @property
    def models_counts(self) -> bool:
        """Whether the likelihood models counts (:attr:`~cgmvae.nn.LikelihoodHead.counts`)."""
        return self.decoder.head.counts

    def unplaced_condition_parts(self) -> tuple[str, ...]:
        """Name the condition parts still to be estimated from the data before training.

        ``"adapter"``: an affine :class:`~cgmvae.nn.ConditionAdapter`; ``"shared_effect"``:
        the shared response of an additive :class:`~cgmvae.nn.ConditionEffect` (count
        likelihoods). Empty with one condition or once they are placed.
        """
        if self.n_conditions < 2:
            return ()
        parts = []
        if self.condition_adapter is not None and not bool(self.condition_adapter.initialized):
            parts.append("adapter")
        effect = self.condition_effect
        if effect is not None and not bool(effect.initialized) and self.models_counts:
            parts.append("shared_effect")
        return tuple(parts)

    def place_condition_adapter(self, x: torch.Tensor, condition: torch.Tensor) -> None:
        """Estimate the affine condition adapter from cells (:meth:`ConditionAdapter.place`)."""
        self.condition_adapter.place(x, condition)

    def place_shared_effect(
        self, counts: torch.Tensor, libraries: torch.Tensor, n_cells: torch.Tensor
    ) -> None:
        """Set the shared condition response from pseudo-bulk sums per (group, condition).

        See :meth:`~cgmvae.nn.ConditionEffect.place_shared`.
        """
        device = self.condition_effect.shared.device
        self.condition_effect.place_shared(
            *(part.to(device) for part in (counts, libraries, n_cells))
        )

    def placement_state(self) -> list[torch.nn.Module]:
        """Return the parts whose values placement sets (DDP sends them from rank 0)."""
        parts = (self.condition_adapter, self.condition_effect)
        return [part for part in parts if part is not None]

    def _get_inference_input(
        self, tensors: dict[str, torch.Tensor], **kwargs
    ) -> dict[str, torch.Tensor]:
        return {
            MODULE_KEYS.X_KEY: tensors[REGISTRY_KEYS.X_KEY],
            MODULE_KEYS.CONDITION_KEY: tensors[REGISTRY_KEYS.CONDITION_KEY].long(),
        }

    def _get_generative_input(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor],
        use_mean: bool = False,
    ) -> dict[str, torch.Tensor | None]:
        """Return the decoder inputs; ``use_mean`` decodes the posterior mean, not a draw."""
        z_key = MODULE_KEYS.QZM_KEY if use_mean else MODULE_KEYS.Z_KEY
        return {
            MODULE_KEYS.Z_KEY: inference_outputs[z_key],
            MODULE_KEYS.LIBRARY_KEY: inference_outputs[MODULE_KEYS.LIBRARY_KEY],
            MODULE_KEYS.CONDITION_KEY: tensors[REGISTRY_KEYS.CONDITION_KEY].long(),
            MODULE_KEYS.BATCH_INDEX_KEY: tensors.get(REGISTRY_KEYS.BATCH_KEY),
            MODULE_KEYS.CAT_COVS_KEY: tensors.get(REGISTRY_KEYS.CAT_COVS_KEY),
            MODULE_KEYS.CONT_COVS_KEY: tensors.get(REGISTRY_KEYS.CONT_COVS_KEY),
            MODULE_KEYS.CLUSTER_PROBS_KEY: self.effect_cluster_probs(inference_outputs),
        }

    def effect_cluster_probs(self, inference_outputs: dict) -> torch.Tensor | None:
        """Cluster probabilities that weight the cluster-specific condition responses."""
        return None

    @auto_move_data
    def inference(
        self, x: torch.Tensor, condition: torch.Tensor, n_samples: int = 1
    ) -> dict[str, torch.Tensor | Normal | None]:
        """Encode ``x`` under ``condition``; returns q(z | x, c) and a draw of z."""
        encoder_input = torch.log1p(x) if self.log_transform_input else x
        if self.condition_adapter is not None:
            encoder_input = self.condition_adapter.to_base(encoder_input, condition)
        if self.training and self.noise_sd > 0:
            encoder_input = encoder_input + self.noise_sd * torch.randn_like(encoder_input)
        qzm, qzv = self.encoder(encoder_input, condition)
        qz = None if qzv is None else Normal(qzm, qzv.sqrt(), validate_args=False)
        return {
            MODULE_KEYS.QZ_KEY: qz,
            MODULE_KEYS.QZM_KEY: qzm,
            MODULE_KEYS.QZV_KEY: qzv,
            MODULE_KEYS.Z_KEY: self.draw_latent(qzm, qzv, n_samples),
            MODULE_KEYS.LIBRARY_KEY: x.sum(-1, keepdim=True),
        }

    def draw_latent(
        self, qzm: torch.Tensor, qzv: torch.Tensor | None, n_samples: int
    ) -> torch.Tensor:
        """Return the code fed to the decoder; the autoencoder uses the point estimate."""
        return qzm

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        library: torch.Tensor | None,
        condition: torch.Tensor,
        batch_index: torch.Tensor | None = None,
        cat_covs: torch.Tensor | None = None,
        cont_covs: torch.Tensor | None = None,
        transform_batch: int | None = None,
        transform_condition: int | None = None,
        cluster_probs: torch.Tensor | None = None,
    ) -> dict[str, torch.distributions.Distribution]:
        """Decode ``z`` into p(x | z, c, s).

        ``transform_condition`` and ``transform_batch`` decode every cell under that
        condition or batch code instead of its own (counterfactuals; scvi-tools'
        ``transform_batch``). ``cluster_probs`` weights the cluster-specific condition
        responses of an additive condition effect.
        """
        if transform_condition is not None:
            condition = torch.full_like(condition, transform_condition)
        batch_index = torch.zeros_like(condition) if batch_index is None else batch_index.long()
        if transform_batch is not None:
            batch_index = torch.full_like(batch_index, transform_batch)
        categorical = [condition, batch_index]
        if cat_covs is not None:
            categorical.extend(torch.split(cat_covs.long(), 1, dim=1))
        offset = affine = None
        if self.condition_effect is not None:
            offset = self.condition_effect(condition, cluster_probs)
        if self.condition_adapter is not None:
            affine = self.condition_adapter.coefficients(condition)
        px = self.decoder(z, categorical, cont_covs, library, offset, affine)
        return {MODULE_KEYS.PX_KEY: px}

    def latent_terms(
        self, inference_outputs: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]
    ) -> LatentCost:
        """Return the latent's cost per observation; the autoencoder's latent is free."""
        return LatentCost({})

    def condition_penalties(
        self, inference_outputs: dict[str, torch.Tensor], condition: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Return the minibatch penalties that keep the condition out, by name: (weight, value).

        Here the learned penalty on the latent means (``condition_invariance``); mixture
        models add one on the clusters.
        """
        penalty = self.invariance(inference_outputs[MODULE_KEYS.QZM_KEY], condition)
        return {"condition_invariance": (self.invariance_weight, penalty)}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor],
        generative_outputs: dict[str, torch.distributions.Distribution],
        kl_weight: float = 1.0,
        n_obs: int | None = None,
    ) -> LossOutput:
        """Negative ELBO (or reconstruction error) averaged over the minibatch.

        During training scvi-tools passes ``n_obs``, the number of training observations;
        the log-prior of the condition-effect parameters is then added, divided by it (a
        maximum a posteriori estimate of those parameters). The condition-invariance
        penalty enters training steps only: validation reports the ELBO itself.
        """
        reconstruction = self.decoder.head.negative_log_likelihood(
            generative_outputs[MODULE_KEYS.PX_KEY], tensors[REGISTRY_KEYS.X_KEY]
        )
        if reconstruction.dim() == 2:  # Monte-Carlo samples of z come first
            reconstruction = reconstruction.mean(0)
        cost = self.latent_terms(inference_outputs, tensors)
        loss = torch.mean(reconstruction + kl_weight * cost.penalty + cost.extra_loss)
        if self.condition_effect is not None and n_obs:
            loss = loss - self.condition_effect.log_prior() / n_obs
        logged = {**cost.kl_terms, **(cost.extra_terms or {})}
        extra = {name: value.mean().detach() for name, value in logged.items()}
        if self.invariance is not None and n_obs and self.training:
            condition = tensors[REGISTRY_KEYS.CONDITION_KEY]
            for name, (weight, penalty) in self.condition_penalties(
                inference_outputs, condition
            ).items():
                loss = loss + weight * penalty
                extra[name] = penalty.detach()
        extra.update(self.diagnostics(inference_outputs))
        return LossOutput(
            loss=loss,
            reconstruction_loss=reconstruction,
            kl_local=cost.kl_terms or None,
            extra_metrics=extra,
        )

    def diagnostics(self, inference_outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Scalars logged during training besides the loss terms."""
        return {}

    @torch.inference_mode()
    def sample(
        self,
        tensors: dict[str, torch.Tensor],
        n_samples: int = 1,
        generative_kwargs: dict | None = None,
    ) -> torch.Tensor:
        """Draw from the posterior predictive p(x̂ | x): z ~ q(z | x, c), then x̂ ~ p(x | z, c).

        What scvi-tools' ``posterior_predictive_sample`` calls. ``generative_kwargs`` are passed
        to :meth:`generative` (e.g. ``transform_batch``).

        Returns
        -------
        torch.Tensor
            On the CPU, ``(n_cells, n_features)`` for ``n_samples=1``, else
            ``(n_cells, n_features, n_samples)``: one z per draw, then one x̂ per z.
        """
        draws = []
        for _ in range(n_samples):
            _, generative_outputs = self.forward(
                tensors, generative_kwargs=generative_kwargs, compute_loss=False
            )
            draws.append(generative_outputs[MODULE_KEYS.PX_KEY].sample().cpu())
        return draws[0] if n_samples == 1 else torch.stack(draws, dim=-1)

    def sample_prior(self, n_samples: int) -> torch.Tensor:
        """Draw latent codes from the prior."""
        raise ValueError(
            "A deterministic autoencoder has no prior to sample from; use VAE, CVAE, GMVAE or "
            "CGMVAE to generate observations."
        )

    @torch.inference_mode()
    def decode(
        self,
        z: torch.Tensor,
        condition: int = 0,
        library: float | None = None,
        cluster_probs: torch.Tensor | None = None,
    ) -> torch.distributions.Distribution:
        """Decode latent codes under one condition code.

        Every code is decoded in the first batch, the first category of each categorical
        covariate and continuous covariates of 0. ``library`` is the total count of each
        generated cell (count likelihoods only); ``cluster_probs`` selects the
        cluster-specific condition responses (additive condition effect).
        """
        n_cells, device = len(z), z.device
        conditions = torch.full((n_cells, 1), condition, device=device, dtype=torch.long)
        libraries = None
        if library is not None:
            libraries = torch.full((n_cells, 1), float(library), device=device)
        cat_covs = cont_covs = None
        if self.n_cats_per_cov:
            cat_covs = torch.zeros((n_cells, len(self.n_cats_per_cov)), device=device)
        if self.n_continuous_cov:
            cont_covs = torch.zeros((n_cells, self.n_continuous_cov), device=device)
        px = self.generative(
            z, libraries, conditions, cat_covs=cat_covs, cont_covs=cont_covs,
            cluster_probs=cluster_probs,
        )  # fmt: skip
        return px[MODULE_KEYS.PX_KEY]
