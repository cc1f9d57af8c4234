"""Variational autoencoder with a standard normal prior (also the CVAE)."""

from __future__ import annotations

import torch

from cgmvae.modules.base import AutoencoderModule, LatentCost
from cgmvae.nn.priors import kl_standard_normal


class VAEModule(AutoencoderModule):
    """VAE: z ~ N(0, I), q(z | x, c) diagonal Gaussian, reparameterised draws.

    Parameters
    ----------
    beta
        Weight of the KL term (β-VAE).
    n_mc_samples
        Number k of draws of z per observation averaged in the reconstruction term.
    **kwargs
        Passed to :class:`~cgmvae.modules.AutoencoderModule`.
    """

    variational = True

    def __init__(self, *args, beta: float = 1.0, n_mc_samples: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.beta = beta
        self.n_mc_samples = n_mc_samples

    def draw_latent(
        self, z_mean: torch.Tensor, z_var: torch.Tensor, n_samples: int
    ) -> torch.Tensor:
        """Reparameterised draw(s) z = μ + σ ⊙ ε; ``n_samples > 1`` adds a leading dimension."""
        n_samples = self.n_mc_samples if self.training else n_samples
        shape = (n_samples, *z_mean.shape) if n_samples > 1 else z_mean.shape
        return z_mean + z_var.sqrt() * torch.randn(shape, device=z_mean.device)

    def latent_terms(
        self, inference_outputs: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]
    ) -> LatentCost:
        """KL(q(z | x, c) || N(0, I)) in closed form, weighted by β."""
        kl_z = kl_standard_normal(inference_outputs["z_mean"], inference_outputs["z_var"])
        return LatentCost({"kl_z": kl_z}, self.beta * kl_z)

    @torch.inference_mode()
    def sample_prior(
        self, n_samples: int, cluster: int | None = None
    ) -> tuple[torch.Tensor, None]:
        """Draw z ~ N(0, I); a VAE has no clusters to choose from."""
        if cluster is not None:
            raise ValueError("A VAE has no clusters; use GMVAE or CGMVAE to sample per cluster.")
        return torch.randn(n_samples, self.n_latent, device=self.device), None
