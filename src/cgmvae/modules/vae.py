"""Variational autoencoder with a standard normal prior (also the CVAE)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from cgmvae.constants import MODULE_KEYS, REGISTRY_KEYS
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

    def draw_latent(self, qzm: torch.Tensor, qzv: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Reparameterised draw(s) z = μ + σ ⊙ ε; ``n_samples > 1`` adds a leading dimension."""
        n_samples = self.n_mc_samples if self.training else n_samples
        shape = (n_samples, *qzm.shape) if n_samples > 1 else qzm.shape
        return qzm + qzv.sqrt() * torch.randn(shape, device=qzm.device)

    def latent_terms(
        self, inference_outputs: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]
    ) -> LatentCost:
        """KL(q(z | x, c) || N(0, I)) in closed form, weighted by β."""
        kl_z = kl_standard_normal(
            inference_outputs[MODULE_KEYS.QZM_KEY], inference_outputs[MODULE_KEYS.QZV_KEY]
        )
        return LatentCost({"kl_z": kl_z}, self.beta * kl_z)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Log p(z) summed over latent dimensions (leading sample dimensions kept)."""
        return Normal(0.0, 1.0).log_prob(z).sum(-1)

    @torch.inference_mode()
    def marginal_ll(
        self,
        tensors: dict[str, torch.Tensor],
        n_mc_samples: int = 1000,
        return_mean: bool = False,
        n_mc_samples_per_pass: int = 100,
    ) -> torch.Tensor | float:
        """Importance-sampled log p(x | c) with q(z | x, c) as the proposal.

        log p(x) ≈ logsumexp_s [log p(x | z_s) + log p(z_s) − log q(z_s | x)] − log S, with
        p(z) the model's prior (the mixture, for GMVAE and CGMVAE).

        Parameters
        ----------
        tensors
            A minibatch from a data loader.
        n_mc_samples
            Number S of draws of z per observation.
        return_mean
            Return the minibatch mean instead of one value per observation.
        n_mc_samples_per_pass
            Draws decoded at once (bounds memory: draws × cells × features).
        """
        was_training = self.training
        self.eval()
        x = tensors[REGISTRY_KEYS.X_KEY]
        log_weights = []
        for start in range(0, n_mc_samples, n_mc_samples_per_pass):
            n_draws = min(n_mc_samples_per_pass, n_mc_samples - start)
            inference = self.inference(**self._get_inference_input(tensors), n_samples=n_draws)
            z = inference[MODULE_KEYS.Z_KEY].reshape(n_draws, len(x), -1)
            inference[MODULE_KEYS.Z_KEY] = z
            px = self.generative(**self._get_generative_input(tensors, inference))
            log_px = px[MODULE_KEYS.PX_KEY].log_prob(x.to(z.device)).sum(-1)
            log_qz = inference[MODULE_KEYS.QZ_KEY].log_prob(z).sum(-1)
            log_weights.append(log_px + self.log_prior(z) - log_qz)
        self.train(was_training)
        log_likelihood = torch.logsumexp(torch.cat(log_weights), 0) - math.log(n_mc_samples)
        return log_likelihood.mean().item() if return_mean else log_likelihood.cpu()

    @torch.inference_mode()
    def sample_prior(self, n_samples: int) -> torch.Tensor:
        """Draw z ~ N(0, I)."""
        return torch.randn(n_samples, self.n_latent, device=self.device)
