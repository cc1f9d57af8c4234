"""The torch module every model builds on: encode, decode, reconstruct."""

from __future__ import annotations

from typing import NamedTuple

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data

from cgmvae.nn.blocks import Decoder, Encoder
from cgmvae.nn.likelihood import COUNT_LIKELIHOODS, check_likelihood, negative_log_likelihood


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
    """Deterministic autoencoder x̂ = D(E(x, c), c); the base of every variational module.

    Subclasses change how z is drawn (:meth:`draw_latent`) and what the latent costs
    (:meth:`latent_terms`); everything else is shared.

    Parameters
    ----------
    n_input
        Number of observed features.
    n_conditions
        Number of condition categories (1: unconditional).
    n_latent, n_hidden, n_layers, dropout_rate
        Network sizes.
    likelihood
        Observation model, see :mod:`cgmvae.nn.likelihood`.
    linear
        Remove every non-linearity (and batch norm, dropout) from encoder and decoder.
    noise_sd
        Standard deviation of the Gaussian noise added to the encoder input during training
        (denoising autoencoder); the loss still targets the clean input.
    """

    variational = False

    def __init__(
        self,
        n_input: int,
        n_conditions: int = 1,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        likelihood: str = "gaussian",
        linear: bool = False,
        noise_sd: float = 0.0,
    ):
        super().__init__()
        self.likelihood = check_likelihood(likelihood)
        self.n_latent = n_latent
        self.noise_sd = noise_sd
        self.log_transform_input = likelihood in COUNT_LIKELIHOODS
        self.register_buffer("typical_library", torch.tensor(1.0))
        self.encoder = Encoder(
            n_input, n_latent, n_hidden, n_layers, n_conditions, dropout_rate,
            linear=linear, variational=self.variational,
        )  # fmt: skip
        self.decoder = Decoder(
            n_latent, n_input, n_hidden, n_layers, n_conditions, dropout_rate, likelihood,
            linear=linear, learn_scale=self.variational,
        )  # fmt: skip

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": tensors[REGISTRY_KEYS.X_KEY], "condition": tensors[REGISTRY_KEYS.BATCH_KEY]}

    def _get_generative_input(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor],
        target_condition: int | None = None,
        use_mean: bool = False,
    ) -> dict[str, torch.Tensor]:
        condition = tensors[REGISTRY_KEYS.BATCH_KEY]
        if target_condition is not None:
            condition = torch.full_like(condition, target_condition)
        z = inference_outputs["z_mean" if use_mean else "z"]
        return {"z": z, "condition": condition, "library": inference_outputs["library"]}

    @auto_move_data
    def inference(
        self, x: torch.Tensor, condition: torch.Tensor, n_samples: int = 1
    ) -> dict[str, torch.Tensor | None]:
        """Encode ``x`` under ``condition``; returns the posterior and a draw of z."""
        encoder_input = torch.log1p(x) if self.log_transform_input else x
        if self.training and self.noise_sd > 0:
            encoder_input = encoder_input + self.noise_sd * torch.randn_like(encoder_input)
        z_mean, z_var = self.encoder(encoder_input, condition)
        return {
            "z_mean": z_mean,
            "z_var": z_var,
            "z": self.draw_latent(z_mean, z_var, n_samples),
            "library": x.sum(-1, keepdim=True),
        }

    def draw_latent(
        self, z_mean: torch.Tensor, z_var: torch.Tensor | None, n_samples: int
    ) -> torch.Tensor:
        """Return the code fed to the decoder; the autoencoder uses the point estimate."""
        return z_mean

    @auto_move_data
    def generative(
        self, z: torch.Tensor, condition: torch.Tensor, library: torch.Tensor
    ) -> dict[str, torch.distributions.Distribution]:
        """Decode ``z`` under ``condition`` into p(x | z, c)."""
        return {"px": self.decoder(z, condition, library)}

    def latent_terms(
        self, inference_outputs: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]
    ) -> LatentCost:
        """Return the latent's cost per observation; the autoencoder's latent is free."""
        return LatentCost({})

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict[str, torch.Tensor],
        generative_outputs: dict[str, torch.distributions.Distribution],
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO (or reconstruction error) averaged over the minibatch."""
        reconstruction = negative_log_likelihood(
            generative_outputs["px"], tensors[REGISTRY_KEYS.X_KEY]
        )
        if reconstruction.dim() == 2:  # Monte-Carlo samples of z come first
            reconstruction = reconstruction.mean(0)
        cost = self.latent_terms(inference_outputs, tensors)
        loss = torch.mean(reconstruction + kl_weight * cost.penalty + cost.extra_loss)
        logged = {**cost.kl_terms, **(cost.extra_terms or {})}
        extra = {name: value.mean().detach() for name, value in logged.items()}
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

    def sample_prior(
        self, n_samples: int, cluster: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw latent codes from the prior; returns ``(z, clusters)``."""
        raise ValueError(
            "A deterministic autoencoder has no prior to sample from; use VAE, CVAE, GMVAE or "
            "CGMVAE to generate observations."
        )

    @torch.inference_mode()
    def sample(
        self,
        n_samples: int,
        condition: int = 0,
        library: float | None = None,
        cluster: int | None = None,
    ) -> tuple[torch.distributions.Distribution, torch.Tensor | None]:
        """Decode draws from the prior under ``condition``; returns p(x | z, c) and the clusters.

        ``library`` is the total count of each generated cell (count likelihoods only).
        """
        z, clusters = self.sample_prior(n_samples, cluster)
        conditions = torch.full((n_samples, 1), condition, device=z.device, dtype=torch.long)
        libraries = None if library is None else torch.full((n_samples, 1), float(library))
        return self.decoder(z, conditions, libraries), clusters
