"""Latent priors and their closed-form KL divergences."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def kl_standard_normal(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag var) || N(0, I)) per observation: ½ Σ (var + mean² − 1 − log var)."""
    return 0.5 * (var + mean.pow(2) - 1.0 - var.log()).sum(-1)


def kl_diagonal_gaussians(
    mean: torch.Tensor, var: torch.Tensor, prior_mean: torch.Tensor, prior_var: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean, var) || N(prior_mean_k, prior_var_k)) for every observation and component.

    Parameters
    ----------
    mean, var
        Posterior parameters, shape ``(n, d)``.
    prior_mean, prior_var
        Component parameters, shape ``(K, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, K)``.
    """
    mean, var = mean.unsqueeze(-2), var.unsqueeze(-2)
    ratio = (var + (mean - prior_mean).pow(2)) / prior_var
    return 0.5 * (prior_var.log() - var.log() + ratio - 1.0).sum(-1)


class MixturePrior(nn.Module):
    """Gaussian-mixture prior p(y) p(z | y) = Cat(π) N(μ_y, diag σ_y²) with learned μ, σ.

    Parameters
    ----------
    n_clusters
        Number of components K.
    n_latent
        Dimension of z.
    learn_weights
        Learn the mixture weights π; if ``False`` they stay uniform.
    """

    def __init__(self, n_clusters: int, n_latent: int, learn_weights: bool = False):
        super().__init__()
        self.means = nn.Parameter(torch.randn(n_clusters, n_latent))
        self.log_vars = nn.Parameter(torch.zeros(n_clusters, n_latent))
        self.logits = nn.Parameter(torch.zeros(n_clusters), requires_grad=learn_weights)
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def n_clusters(self) -> int:
        """Number of mixture components."""
        return self.means.shape[0]

    @property
    def variances(self) -> torch.Tensor:
        """Component variances σ_k², shape ``(K, d)``."""
        return self.log_vars.clamp(-10.0, 10.0).exp()

    def log_weights(self) -> torch.Tensor:
        """Log π, shape ``(K,)``."""
        return torch.log_softmax(self.logits, dim=-1)

    def component_kl(self, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || p(z | y = k)) for every observation and component, shape ``(n, K)``."""
        return kl_diagonal_gaussians(mean, var, self.means, self.variances)

    def cluster_posterior_logits(
        self, component_kl: torch.Tensor, kl_ratio: float = 1.0
    ) -> torch.Tensor:
        """Logits of the q(y | x) that minimises the mixture terms of the negative ELBO.

        Minimising ``β Σ_k q_k KL_k + β_y KL(q || π)`` over the simplex gives
        ``q_k ∝ π_k exp(−(β / β_y) KL_k)``; ``kl_ratio`` is ``β / β_y``.
        """
        return self.log_weights() - kl_ratio * component_kl

    def cluster_kl(self, cluster_probs: torch.Tensor) -> torch.Tensor:
        """KL(q(y | x) || Cat(π)) per observation."""
        log_q = cluster_probs.clamp_min(1e-12).log()
        return (cluster_probs * (log_q - self.log_weights())).sum(-1)

    @torch.no_grad()
    def initialize(
        self,
        latent: np.ndarray,
        seed: int = 0,
        targets: np.ndarray | None = None,
        labelled: np.ndarray | None = None,
    ) -> None:
        """Place the components on a k-means clustering (10 restarts) of ``latent``.

        Each component takes a k-means cluster's centroid and per-dimension variance. With
        known labels (``targets``: cluster probabilities, ``labelled``: mask of the cells that
        have them), each labelled component takes its cells' weighted mean and the variance
        of the k-means cluster nearest to that mean (one-to-one); the other components take
        the remaining k-means clusters.
        """
        clusters, centroids = _kmeans(latent, self.n_clusters, seed)
        overall_var = latent.var(axis=0) + 1e-4
        variances = np.stack(
            [
                latent[clusters == k].var(axis=0) + 1e-4
                if (clusters == k).sum() > 1
                else overall_var
                for k in range(self.n_clusters)
            ]
        )
        means, order = centroids.copy(), np.arange(self.n_clusters)
        if targets is not None and labelled is not None and labelled.any():
            weights = targets[labelled]
            seeded = np.flatnonzero(weights.sum(0) > 0)
            label_means = np.stack(
                [np.average(latent[labelled], axis=0, weights=weights[:, k]) for k in seeded]
            )
            order = _match_components(label_means, centroids, seeded, self.n_clusters)
            means = centroids[order]
            means[seeded] = label_means
        self.means.copy_(torch.as_tensor(means, dtype=self.means.dtype))
        self.log_vars.copy_(torch.as_tensor(np.log(variances[order]), dtype=self.log_vars.dtype))
        self.initialized.fill_(True)

    @torch.no_grad()
    def sample(self, clusters: torch.Tensor) -> torch.Tensor:
        """Draw z ~ N(μ_y, σ_y²) for the given component indices."""
        std = self.variances[clusters].sqrt()
        return self.means[clusters] + std * torch.randn_like(std)


def _kmeans(latent: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters, n_init=10, random_state=seed).fit(latent)
    return kmeans.labels_, kmeans.cluster_centers_


def _match_components(
    label_means: np.ndarray, centroids: np.ndarray, seeded: np.ndarray, n_clusters: int
) -> np.ndarray:
    """Return, per component, the k-means cluster it takes: labelled ones the nearest."""
    from scipy.optimize import linear_sum_assignment

    distances = ((label_means[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    _, matched = linear_sum_assignment(distances)
    order = np.full(n_clusters, -1)
    order[seeded] = matched
    order[order < 0] = np.setdiff1d(np.arange(n_clusters), matched)
    return order
