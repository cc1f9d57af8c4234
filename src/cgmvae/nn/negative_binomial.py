"""A negative binomial with one dispersion per gene whose log-likelihood skips zero counts."""

from __future__ import annotations

import torch
from scvi.distributions import NegativeBinomial

#: Added inside the logarithms, as in scvi-tools' ``log_nb_positive``.
EPS = 1e-8


class _CountLogGamma(torch.autograd.Function):
    """``lgamma(x + θ) - lgamma(θ) - lgamma(x + 1)`` for counts ``x`` and per-gene ``θ``.

    The term is zero wherever ``x = 0``, most entries of single-cell counts, so only the
    non-zero entries are evaluated, forward (log-gamma) and backward (digamma).
    """

    @staticmethod
    def forward(ctx, counts: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        flat = counts.reshape(-1)
        entries = (flat > 0).nonzero().squeeze(1)  # counts are non-negative
        genes = entries % theta.shape[-1]
        values = flat[entries].to(theta.dtype)
        shifted = values + theta[genes]
        terms = torch.lgamma(shifted) - torch.lgamma(values + 1.0)
        terms = terms - torch.lgamma(theta)[genes]
        out = torch.zeros(flat.shape, dtype=theta.dtype, device=theta.device)
        out[entries] = terms
        ctx.save_for_backward(entries, genes, shifted, theta)
        return out.reshape(counts.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        entries, genes, shifted, theta = ctx.saved_tensors
        slopes = torch.digamma(shifted) - torch.digamma(theta)[genes]
        local = grad.reshape(-1)[entries] * slopes
        return None, torch.zeros_like(theta).index_add_(0, genes, local)


class GeneNegativeBinomial(NegativeBinomial):
    """scvi-tools' negative binomial (mean ``mu``, inverse dispersion per gene ``theta``).

    ``log_prob`` equals :func:`scvi.distributions.NegativeBinomial.log_prob` but evaluates
    the log-gamma terms once per gene and only at non-zero counts, and their gradient
    (digamma) likewise (measured in ``benchmarks/results/profile_findings.md``).

    Parameters
    ----------
    mu
        Means, shape ``(..., n_cells, n_genes)``.
    theta
        Inverse dispersion of each gene, shape ``(n_genes,)``.
    scale
        Normalised expression (rows sum to 1), what ``get_normalized("scale")`` returns.
    """

    def __init__(self, mu: torch.Tensor, theta: torch.Tensor, scale: torch.Tensor | None = None):
        super().__init__(mu=mu, theta=theta.expand_as(mu), scale=scale, validate_args=False)
        self.gene_theta = theta

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Return ``log p(value)`` per entry, shape of ``mu`` broadcast with ``value``."""
        theta = self.gene_theta
        log_theta_mu = torch.log(theta + self.mu + EPS)
        res = theta * (torch.log(theta + EPS) - log_theta_mu)
        res = res + value * (torch.log(self.mu + EPS) - log_theta_mu)
        return res + _CountLogGamma.apply(value, theta)
