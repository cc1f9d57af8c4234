"""A negative binomial with one dispersion per gene whose log-likelihood skips zero counts."""

from __future__ import annotations

from functools import cached_property

import torch
from scvi.distributions import NegativeBinomial
from torch.distributions import Distribution

#: Added inside the logarithms, as in scvi-tools' ``log_nb_positive``.
EPS = 1e-8

#: Counts below this are looked up in a per-gene table of log-gamma (and digamma) values.
TABLE_COUNTS = 32


class _NonZeroCounts:
    """The non-zero entries of a ``(..., n_cells, n_genes)`` count tensor (flat positions).

    Their log-gamma terms and digamma slopes come from tables of ``TABLE_COUNTS × n_genes``
    values, one row per small count, instead of one evaluation per entry; larger and
    non-integer counts are evaluated directly.
    """

    def __init__(self, counts: torch.Tensor):
        n_genes = counts.shape[-1]
        flat = counts.reshape(-1)
        self.entries = (flat > 0).nonzero().squeeze(1)  # counts are non-negative
        self.values = flat.index_select(0, self.entries)
        self.cells = self.entries // n_genes
        self.genes = self.entries - self.cells * n_genes
        rows = self.values.long().clamp_(max=TABLE_COUNTS - 1)
        self.slots = rows * n_genes + self.genes
        # a count beyond the table (clamped) or not an integer differs from its row
        self.direct = (self.values != rows).nonzero().squeeze(1)

    def _direct_entries(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.values[self.direct], self.genes[self.direct]

    def _steps(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.arange(TABLE_COUNTS, dtype=theta.dtype, device=theta.device)[:, None]

    def log_gamma_terms(self, theta: torch.Tensor) -> torch.Tensor:
        """``lgamma(x + θ_g) - lgamma(θ_g) - lgamma(x + 1)`` for every non-zero entry."""
        steps = self._steps(theta)
        at_theta = torch.lgamma(theta)
        table = torch.lgamma(steps + theta) - at_theta - torch.lgamma(steps + 1.0)
        out = table.reshape(-1).index_select(0, self.slots)
        if self.direct.numel():
            values, genes = self._direct_entries()
            direct = torch.lgamma(values + theta[genes]) - at_theta[genes]
            out[self.direct] = direct - torch.lgamma(values + 1.0)
        return out

    def digamma_gradient(self, weights: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """``Σ_e weights_e (ψ(x_e + θ_g) - ψ(θ_g))`` over the entries e of each gene g."""
        at_theta = torch.digamma(theta)
        table = (torch.digamma(self._steps(theta) + theta) - at_theta).reshape(-1)
        per_slot = torch.zeros_like(table).index_add_(0, self.slots, weights)
        out = (per_slot * table).reshape(TABLE_COUNTS, -1).sum(0)
        if self.direct.numel():
            values, genes = self._direct_entries()
            slopes = torch.digamma(values + theta[genes]) - at_theta[genes]
            slopes = slopes - table[self.slots[self.direct]]  # replaces the table's row
            out = out.index_add_(0, genes, weights[self.direct] * slopes)
        return out


class _CountLogGamma(torch.autograd.Function):
    """``lgamma(x + θ) - lgamma(θ) - lgamma(x + 1)`` per entry (counts ``x``, per-gene ``θ``).

    The term is zero wherever ``x = 0``, most entries of single-cell counts, so only the
    non-zero entries are evaluated (:class:`_NonZeroCounts`), forward and backward.
    """

    @staticmethod
    def forward(ctx, counts: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        nonzero = _NonZeroCounts(counts)
        out = torch.zeros(counts.numel(), dtype=theta.dtype, device=theta.device)
        out[nonzero.entries] = nonzero.log_gamma_terms(theta)
        ctx.nonzero = nonzero
        ctx.save_for_backward(theta)
        return out.reshape(counts.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (theta,) = ctx.saved_tensors
        nonzero = ctx.nonzero
        weights = grad.reshape(-1).index_select(0, nonzero.entries)
        return None, nonzero.digamma_gradient(weights, theta)


class _SummedLogLikelihood(torch.autograd.Function):
    """``Σ_g log NB(x_ng | μ_ng, θ_g)`` per cell, from the decoder's logits, in one node.

    ``log μ = log_softmax(logits) + log(library)`` is exact (no ``EPS``), and the gradient
    is written out, so autograd stores and replays none of the element-wise steps. With
    ``d = log1p(μ / θ)`` the terms are ``x (log μ - log θ) - (x + θ) d`` and the slopes
    ``θ (x - μ) / (θ + μ)`` (in ``log μ``) and ``(μ - x) / (θ + μ) - d`` (in θ): no large
    terms cancel, also for genes with a large θ.
    """

    @staticmethod
    def forward(ctx, logits, library, theta, counts):
        with torch.autocast(device_type=logits.device.type, enabled=False):
            log_mu = torch.log_softmax(logits, dim=-1) + library.clamp_min(EPS).log()
            mu = log_mu.exp()
            excess = torch.log1p(mu / theta)
            dense = (counts * (log_mu - theta.log()) - (counts + theta) * excess).sum(-1)
            nonzero = _NonZeroCounts(counts)
            per_cell = torch.zeros(counts.shape[0], dtype=theta.dtype, device=theta.device)
            per_cell.index_add_(0, nonzero.cells, nonzero.log_gamma_terms(theta))
            out = dense + per_cell
        ctx.nonzero = nonzero
        ctx.save_for_backward(library, theta, counts, mu, excess)
        return out

    @staticmethod
    def backward(ctx, grad):
        library, theta, counts, mu, excess = ctx.saved_tensors
        residual = (mu - counts) / (mu + theta)
        grad_logits = grad_theta = None
        if ctx.needs_input_grad[0]:
            grad_log_mu = grad[..., None] * theta * -residual
            scale = mu / library.clamp_min(EPS)
            grad_logits = grad_log_mu - scale * grad_log_mu.sum(-1, keepdim=True)
        if ctx.needs_input_grad[2]:
            n_genes = theta.shape[-1]
            grad_theta = grad.reshape(-1) @ (residual - excess).reshape(-1, n_genes)
            nonzero = ctx.nonzero
            per_cell = grad.reshape(-1, counts.shape[0]).sum(0)
            weights = per_cell.index_select(0, nonzero.cells)
            grad_theta = grad_theta + nonzero.digamma_gradient(weights, theta)
        return grad_logits, None, grad_theta, None


class GeneNegativeBinomial(NegativeBinomial):
    """scvi-tools' negative binomial (mean ``mu``, inverse dispersion per gene ``theta``).

    ``log_prob`` equals :func:`scvi.distributions.NegativeBinomial.log_prob` but evaluates
    the log-gamma terms once per gene and only at non-zero counts, and their gradient
    (digamma) likewise. Built from the decoder's ``logits`` and the ``library`` sizes, the
    means are ``softmax(logits) * library`` and :meth:`log_prob_sum` evaluates the
    log-likelihood of each cell in one fused autograd node (measured in
    ``benchmarks/results/profile_findings.md``).

    Parameters
    ----------
    mu
        Means, shape ``(..., n_cells, n_genes)`` (or give ``logits`` and ``library``).
    theta
        Inverse dispersion of each gene, shape ``(n_genes,)``.
    scale
        Normalised expression (rows sum to 1), what ``get_normalized("scale")`` returns.
    logits
        Log-normalised expression up to a constant per cell, shape ``(..., n_cells, n_genes)``.
    library
        Library size of each cell, shape ``(n_cells, 1)``; with ``logits``.
    """

    def __init__(
        self,
        mu: torch.Tensor | None = None,
        theta: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
        *,
        logits: torch.Tensor | None = None,
        library: torch.Tensor | None = None,
    ):
        if (mu is None) == (logits is None) or (logits is not None) != (library is not None):
            raise ValueError("Give either mu, or logits and library.")
        self.gene_theta = theta
        self.logits, self.library = logits, library
        if mu is not None:
            super().__init__(mu=mu, theta=theta.expand_as(mu), scale=scale, validate_args=False)
            return
        self.on_mps = logits.device.type == "mps"
        self._eps = EPS
        Distribution.__init__(self, validate_args=False)

    # computed on first use when built from logits (the training loss needs none of them)
    @cached_property
    def scale(self) -> torch.Tensor:
        """Normalised expression, ``softmax(logits)``."""
        return torch.softmax(self.logits, dim=-1)

    @cached_property
    def mu(self) -> torch.Tensor:
        """Means, ``scale * library``."""
        return self.scale * self.library

    @cached_property
    def theta(self) -> torch.Tensor:
        """Inverse dispersion, broadcast to the shape of the means."""
        return self.gene_theta.expand(self.logits.shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Return ``log p(value)`` per entry, shape of ``mu`` broadcast with ``value``."""
        theta = self.gene_theta
        log_theta_mu = torch.log(theta + self.mu + EPS)
        res = theta * (torch.log(theta + EPS) - log_theta_mu)
        res = res + value * (torch.log(self.mu + EPS) - log_theta_mu)
        return res + _CountLogGamma.apply(value, theta)

    def log_prob_sum(self, value: torch.Tensor) -> torch.Tensor:
        """Return ``Σ log p(value)`` over the last axis (genes), one value per cell."""
        if self.logits is None or value.shape != self.logits.shape[-2:]:
            return self.log_prob(value).sum(-1)
        return _SummedLogLikelihood.apply(self.logits, self.library, self.gene_theta, value)
