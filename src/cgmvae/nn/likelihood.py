"""Observation models p(x | z, c) shared by every model of the package."""

from __future__ import annotations

import torch
from scvi.distributions import Poisson, ZeroInflatedNegativeBinomial
from torch import nn
from torch.distributions import Bernoulli, Distribution, Normal

from cgmvae.constants import COUNT_LIKELIHOODS, LIKELIHOODS, check_likelihood
from cgmvae.nn.negative_binomial import GeneNegativeBinomial

__all__ = [
    "COUNT_LIKELIHOODS",
    "LIKELIHOODS",
    "LikelihoodHead",
    "check_likelihood",
    "negative_log_likelihood",
]


class LikelihoodHead(nn.Module):
    """Map decoder activations to the distribution p(x | z, c).

    Count likelihoods use the observed library size: the mean is
    ``softmax(W h) * library``, as in scVI and scVAE. Their distributions are scvi-tools'
    and carry the normalised expression ``softmax(W h)`` as ``scale``
    (``get_normalized("scale")``), which scvi-tools' ``RNASeqMixin`` reads. The
    distribution's parameters are float32 also under mixed precision (``precision=
    "bf16-mixed"``), where the count log-likelihoods would lose their digits in bfloat16.

    Parameters
    ----------
    n_hidden
        Width of the decoder activations ``h``.
    n_output
        Number of observed features (genes, pixels).
    likelihood
        One of ``"gaussian"``, ``"bernoulli"``, ``"poisson"``, ``"nb"``, ``"zinb"``.
    learn_scale
        For ``"gaussian"``: learn one standard deviation per feature. If ``False`` the
        standard deviation is 1 and the negative log-likelihood is half the squared error
        (up to a constant), which is what a plain autoencoder minimises.
    """

    def __init__(self, n_hidden: int, n_output: int, likelihood: str, learn_scale: bool = True):
        super().__init__()
        self.likelihood = check_likelihood(likelihood)
        self.mean = nn.Linear(n_hidden, n_output)
        if likelihood in ("nb", "zinb"):
            self.log_theta = nn.Parameter(torch.zeros(n_output))
        if likelihood == "zinb":
            self.dropout_logits = nn.Linear(n_hidden, n_output)
        self.log_scale = (
            nn.Parameter(torch.zeros(n_output))
            if likelihood == "gaussian" and learn_scale
            else None
        )

    def forward(
        self,
        hidden: torch.Tensor,
        library: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
        affine: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Distribution:
        """Return p(x | h) as a torch distribution with ``log_prob`` and ``mean``.

        Parameters
        ----------
        hidden
            Decoder activations, shape ``(..., n_cells, n_hidden)``.
        library
            Observed library size per cell, shape ``(n_cells, 1)``; required for counts.
        offset
            Added to the output before the link (log-rates for counts, logits for
            ``"bernoulli"``, means for ``"gaussian"``), shape ``(n_cells, n_output)``.
        affine
            ``(a, b)``: the mean becomes ``a * mean + b`` after the link (and a Gaussian's
            standard deviation ``a`` times its own), see :class:`~cgmvae.nn.ConditionAdapter`;
            ``"gaussian"`` and ``"bernoulli"`` only.
        """
        raw = self.mean(hidden).float()  # float32 likelihoods under mixed precision
        if offset is not None:
            raw = raw + offset
        if self.likelihood == "gaussian":
            scale = torch.ones_like(raw) if self.log_scale is None else self.log_scale.exp()
            scale = scale.expand_as(raw)
            if affine is not None:
                raw, scale = affine[0] * raw + affine[1], affine[0] * scale
            return Normal(raw, scale, validate_args=False)
        if self.likelihood == "bernoulli":
            if affine is None:
                return Bernoulli(logits=raw, validate_args=False)
            probs = affine[0] * torch.sigmoid(raw) + affine[1]
            return Bernoulli(probs=probs.clamp(1e-6, 1 - 1e-6), validate_args=False)
        if self.likelihood == "nb":
            return GeneNegativeBinomial(theta=self.log_theta.exp(), logits=raw, library=library)
        scale = torch.softmax(raw, dim=-1)
        mu = scale * library
        if self.likelihood == "poisson":
            return Poisson(mu.clamp_min(1e-8), validate_args=False, scale=scale)
        theta = self.log_theta.exp()
        return ZeroInflatedNegativeBinomial(
            mu=mu,
            theta=theta.expand_as(mu),
            zi_logits=self.dropout_logits(hidden).float(),
            scale=scale,
            validate_args=False,
        )


def negative_log_likelihood(distribution: Distribution, x: torch.Tensor) -> torch.Tensor:
    """Return ``-log p(x)`` summed over features, one value per observation."""
    if isinstance(distribution, GeneNegativeBinomial):
        return -distribution.log_prob_sum(x)
    return -distribution.log_prob(x).sum(-1)
