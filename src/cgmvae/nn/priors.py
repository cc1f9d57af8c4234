"""Latent priors and their closed-form KL divergences."""

from __future__ import annotations

import math

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
    """Gaussian-mixture prior whose clusters are each a union of diagonal Gaussians.

    Cluster y = k owns ``components_per_cluster`` = M components j, and
    p(y = k) p(z | y = k) = Σ_{j ∈ k} π_j N(μ_j, diag σ_j²), with learned μ, σ (and π).
    M = 1 is the classical GMVAE prior Cat(π) N(μ_y, diag σ_y²). With M > 1 a cluster can
    take a curved or elongated shape that one diagonal Gaussian cannot follow, while every
    term of the ELBO stays analytic: the components are marginalised like clusters are.

    Parameters
    ----------
    n_clusters
        Number of clusters K.
    n_latent
        Dimension of z.
    learn_weights
        Learn the component weights π; if ``False`` they stay uniform.
    components_per_cluster
        Number M of Gaussian components per cluster.
    """

    def __init__(
        self,
        n_clusters: int,
        n_latent: int,
        learn_weights: bool = False,
        components_per_cluster: int = 1,
    ):
        super().__init__()
        if components_per_cluster < 1:
            raise ValueError(
                f"components_per_cluster must be at least 1, got {components_per_cluster}."
            )
        n_components = n_clusters * components_per_cluster
        self.components_per_cluster = components_per_cluster
        self.means = nn.Parameter(torch.randn(n_components, n_latent))
        self.log_vars = nn.Parameter(torch.zeros(n_components, n_latent))
        self.logits = nn.Parameter(torch.zeros(n_components), requires_grad=learn_weights)
        self.register_buffer(
            "component_cluster", torch.arange(n_components) // components_per_cluster
        )
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def n_clusters(self) -> int:
        """Number of clusters K."""
        return self.means.shape[0] // self.components_per_cluster

    @property
    def n_components(self) -> int:
        """Number of Gaussian components, K × M."""
        return self.means.shape[0]

    @property
    def variances(self) -> torch.Tensor:
        """Component variances σ_j², shape ``(K·M, d)``."""
        return self.log_vars.clamp(-10.0, 10.0).exp()

    def log_weights(self) -> torch.Tensor:
        """Log π of every component, shape ``(K·M,)``."""
        return torch.log_softmax(self.logits, dim=-1)

    def cluster_weights(self) -> torch.Tensor:
        """p(y = k), the summed weights of each cluster's components, shape ``(K,)``."""
        return self.to_clusters(self.log_weights().exp())

    def to_clusters(self, component_probs: torch.Tensor) -> torch.Tensor:
        """Sum probabilities over each cluster's components: ``(..., K·M)`` → ``(..., K)``."""
        shape = (*component_probs.shape[:-1], self.n_clusters, self.components_per_cluster)
        return component_probs.reshape(shape).sum(-1)

    def to_components(
        self, cluster_probs: torch.Tensor, component_logits: torch.Tensor
    ) -> torch.Tensor:
        """Spread cluster probabilities over components by the posterior within each cluster.

        Used for cells of known cluster: their weight on component j of cluster k is
        p(k) × q(j | y = k, x), a softmax of ``component_logits`` over k's components.
        """
        shape = (*component_logits.shape[:-1], self.n_clusters, self.components_per_cluster)
        within = torch.softmax(component_logits.reshape(shape), dim=-1)
        return (cluster_probs.unsqueeze(-1) * within).reshape(component_logits.shape)

    def component_kl(self, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || N(μ_j, σ_j²)) for every observation and component, ``(n, K·M)``."""
        return kl_diagonal_gaussians(mean, var, self.means, self.variances)

    def component_posterior_logits(
        self, component_kl: torch.Tensor, kl_ratio: float = 1.0
    ) -> torch.Tensor:
        """Logits of the q(j | x) that minimises the mixture terms of the negative ELBO.

        Minimising ``β Σ_j q_j KL_j + β_y KL(q || π)`` over the simplex gives
        ``q_j ∝ π_j exp(−(β / β_y) KL_j)``; ``kl_ratio`` is ``β / β_y``.
        """
        return self.log_weights() - kl_ratio * component_kl

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log p(z) = log Σ_j π_j N(z; μ_j, σ_j²) for every row of ``z`` (leading dims kept)."""
        var = self.variances
        squared = (z.unsqueeze(-2) - self.means) ** 2 / var
        log_normal = -0.5 * (squared + var.log() + math.log(2 * math.pi)).sum(-1)
        return torch.logsumexp(self.log_weights() + log_normal, dim=-1)

    def component_kl_to_weights(self, component_probs: torch.Tensor) -> torch.Tensor:
        """KL(q(j | x) || Cat(π)) per observation."""
        log_q = component_probs.clamp_min(1e-12).log()
        return (component_probs * (log_q - self.log_weights())).sum(-1)

    @torch.no_grad()
    def initialize(
        self,
        latent: np.ndarray,
        components: np.ndarray,
        anchors: dict[int, np.ndarray] | None = None,
        latent_var: np.ndarray | None = None,
    ) -> None:
        """Place every component on its cells: the Gaussian nearest to their posteriors.

        ``latent`` holds the cells' posterior means and ``latent_var`` their posterior
        variances (``None``: zero). Component j gets the mean of its cells' means and, per
        dimension, the variance of those means plus the mean of their posterior variances:
        the μ_j, σ_j² that minimise the cells' summed KL(q(z | x) ‖ N(μ_j, σ_j²)), the term of
        the ELBO the placement sets. With the posterior variances left out, a tight cluster
        gets a component narrower than its own cells' posteriors, their KL to it exceeds their
        KL to a broad neighbour, and q(y | x) moves whole clusters there.

        ``components`` gives each row of ``latent`` a component index in [0, K·M); cluster
        k's cells are those of components k·M … k·M + M − 1
        (:func:`~cgmvae.train.placement.split_clusters` makes such labels). A component
        without cells takes its cluster's cells, or all cells. ``anchors`` maps a cluster to
        a point (e.g. the mean of its labelled cells) that its components are shifted onto.
        """
        size = self.components_per_cluster
        clusters = components // size
        if latent_var is None:
            latent_var = np.zeros_like(latent)
        moments = np.concatenate([latent, latent_var], axis=1)
        d = latent.shape[1]
        means, variances = [], []
        for k in range(self.n_clusters):
            group = _cells(moments, clusters, k)
            shift = (
                0.0 if anchors is None or k not in anchors else anchors[k] - group[:, :d].mean(0)
            )
            for m in range(size):
                cells = _cells(moments, components, k * size + m, fallback=group)
                spread = cells if len(cells) > 1 else group
                means.append(cells[:, :d].mean(0) + shift)
                variances.append(spread[:, :d].var(axis=0) + spread[:, d:].mean(0) + 1e-4)
        self.means.copy_(torch.as_tensor(np.stack(means), dtype=self.means.dtype))
        self.log_vars.copy_(
            torch.as_tensor(np.log(np.stack(variances)), dtype=self.log_vars.dtype)
        )
        self.initialized.fill_(True)

    @torch.no_grad()
    def sample(self, clusters: torch.Tensor) -> torch.Tensor:
        """Draw z from the given clusters: a component by its weight within, then its Gaussian."""
        weights = self.log_weights().exp().reshape(self.n_clusters, -1)[clusters]
        within = torch.multinomial(weights, 1).squeeze(-1)
        components = clusters * self.components_per_cluster + within
        std = self.variances[components].sqrt()
        return self.means[components] + std * torch.randn_like(std)


def _cells(
    latent: np.ndarray, labels: np.ndarray, label: int, fallback: np.ndarray | None = None
) -> np.ndarray:
    """Rows of ``latent`` with ``label``; if none, ``fallback`` (default: all rows)."""
    cells = latent[labels == label]
    if len(cells) > 0:
        return cells
    return latent if fallback is None else fallback
