"""Observation models p(x | z, c), one class each, registered by name.

Every model takes ``likelihood="<name>"``; the name is looked up in :data:`LIKELIHOODS`.
A likelihood class owns everything that depends on it: its output layer and link, the
distribution and its summed log-likelihood, which data it accepts, its default network size,
and whether it models counts (library sizes, normalised expression, differential
expression, count condition effects). A new one is a subclass of :class:`LikelihoodHead`
decorated with :func:`register_likelihood`.
"""

from __future__ import annotations

import logging
import warnings
from typing import ClassVar, Protocol

import torch
from scvi.distributions import Poisson, ZeroInflatedNegativeBinomial
from torch import nn
from torch.distributions import Bernoulli, Distribution, Normal

from cgmvae.nn.negative_binomial import GeneNegativeBinomial

logger = logging.getLogger(__name__)

__all__ = [
    "LIKELIHOODS",
    "LikelihoodHead",
    "get_likelihood",
    "register_likelihood",
]


class ValueSummary(Protocol):
    """What :meth:`LikelihoodHead.check_values` reads of the data's values.

    :class:`cgmvae.validation.ValueSummary` is one.
    """

    minimum: float
    maximum: float
    integers: bool
    exact_integers: bool


#: The likelihoods by name: what ``likelihood=`` accepts in every model.
LIKELIHOODS: dict[str, type[LikelihoodHead]] = {}


def register_likelihood(cls: type[LikelihoodHead]) -> type[LikelihoodHead]:
    """Class decorator: make ``cls`` available to every model as ``likelihood=cls.name``."""
    LIKELIHOODS[cls.name] = cls
    return cls


def get_likelihood(name: str) -> type[LikelihoodHead]:
    """Return the likelihood class registered as ``name``.

    Raises
    ------
    ValueError
        ``name`` is not registered; the message lists the registered ones and their use.
    """
    if name not in LIKELIHOODS:
        uses = "; ".join(f"{key!r} for {cls.use_for}" for key, cls in LIKELIHOODS.items())
        raise ValueError(f"Unknown likelihood {name!r}. Choose one of: {uses}.")
    return LIKELIHOODS[name]


class LikelihoodHead(nn.Module):
    """Map decoder activations ``h`` to the distribution p(x | z, c).

    The output layer gives one value per feature (``self.mean``); an additive condition
    ``offset`` is added to it before the link, and :meth:`distribution` turns it into the
    distribution. The distribution's parameters are float32 also under mixed precision
    (``precision="bf16-mixed"``), where the count log-likelihoods would lose their digits in
    bfloat16.

    Parameters
    ----------
    n_hidden
        Width of the decoder activations ``h``.
    n_output
        Number of observed features (genes, pixels).
    learn_scale
        For likelihoods with a scale parameter (``"gaussian"``): learn it. If ``False`` it is
        fixed at 1 (a plain autoencoder's squared error).
    """

    #: Name models accept as ``likelihood=``.
    name: ClassVar[str]
    #: The data it is for, as the error for an unknown name lists it.
    use_for: ClassVar[str]
    #: Counts: the decoder mean is ``softmax(W h) * library`` (as in scVI and scVAE), the
    #: encoder sees ``log1p(x)``, and normalised expression, differential expression and
    #: count condition effects are defined.
    counts: ClassVar[bool] = False
    #: Whether an affine condition adapter (``a·mean + b``) can act on its mean.
    supports_affine: ClassVar[bool] = False
    #: Default (width, depth) of the hidden layers.
    network_size: ClassVar[tuple[int, int]] = (128, 1)
    #: Whether generated observations are the decoder means rather than draws.
    generates_means: ClassVar[bool] = False

    def __init__(self, n_hidden: int, n_output: int, learn_scale: bool = True):
        super().__init__()
        self.mean = nn.Linear(n_hidden, n_output)

    def forward(
        self,
        hidden: torch.Tensor,
        library: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
        affine: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Distribution:
        """Return p(x | h) as a torch distribution with ``log_prob``, ``mean`` and ``sample``.

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
            ``(a, b)``: the mean becomes ``a * mean + b`` after the link, see
            :class:`~cgmvae.nn.ConditionAdapter` (likelihoods with ``supports_affine``).
        """
        raw = self.mean(hidden).float()  # float32 likelihoods under mixed precision
        if offset is not None:
            raw = raw + offset
        return self.distribution(raw, hidden, library, affine)

    def input_layers(self) -> list[nn.Linear]:
        """Return the linear layers that read ``hidden`` (every direct linear child).

        A head whose layers are deeper overrides this; a decoder with a weight block per
        condition zeroes those blocks in these layers.
        """
        return [layer for layer in self.children() if isinstance(layer, nn.Linear)]

    def distribution(
        self,
        raw: torch.Tensor,
        hidden: torch.Tensor,
        library: torch.Tensor | None,
        affine: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> Distribution:
        """Turn the output layer's values ``raw`` into the distribution p(x | h)."""
        raise NotImplementedError(f"{type(self).__name__} must define distribution().")

    def negative_log_likelihood(self, px: Distribution, x: torch.Tensor) -> torch.Tensor:
        """Return ``-log p(x)`` summed over features, one value per observation."""
        return -px.log_prob(x).sum(-1)

    @classmethod
    def check_values(cls, summary: ValueSummary, location: str) -> None:
        """Raise ``ValueError`` for values outside the support; ``location`` names the data.

        NaN and infinite values are refused before this is called.
        """

    def generate(self, px: Distribution) -> torch.Tensor:
        """Observations generated from ``px``: its means or a draw (``generates_means``)."""
        return px.mean if self.generates_means else px.sample()


@register_likelihood
class GaussianLikelihood(LikelihoodHead):
    """Normal with one learned standard deviation per feature (or 1, ``learn_scale=False``)."""

    name = "gaussian"
    use_for = "log-normalised or other continuous data"
    supports_affine = True

    def __init__(self, n_hidden: int, n_output: int, learn_scale: bool = True):
        super().__init__(n_hidden, n_output)
        self.log_scale = nn.Parameter(torch.zeros(n_output)) if learn_scale else None

    def distribution(self, raw, hidden, library, affine) -> Distribution:
        scale = torch.ones_like(raw) if self.log_scale is None else self.log_scale.exp()
        scale = scale.expand_as(raw)
        if affine is not None:
            raw, scale = affine[0] * raw + affine[1], affine[0] * scale
        return Normal(raw, scale, validate_args=False)


@register_likelihood
class BernoulliLikelihood(LikelihoodHead):
    """Bernoulli on values in [0, 1] (pixel intensities); generates the means."""

    name = "bernoulli"
    use_for = "values in [0, 1] such as images"
    supports_affine = True
    # images in [0, 1] need more capacity for a latent that clusters (clustering_ablation.md)
    network_size = (512, 2)
    generates_means = True

    def distribution(self, raw, hidden, library, affine) -> Distribution:
        if affine is None:
            return Bernoulli(logits=raw, validate_args=False)
        probs = affine[0] * torch.sigmoid(raw) + affine[1]
        return Bernoulli(probs=probs.clamp(1e-6, 1 - 1e-6), validate_args=False)

    @classmethod
    def check_values(cls, summary: ValueSummary, location: str) -> None:
        if summary.minimum < 0 or summary.maximum > 1:
            raise ValueError(
                f"likelihood='bernoulli' needs values in [0, 1], but {location} go from "
                f"{summary.minimum:g} to {summary.maximum:g}. Rescale them (e.g. pixels / 255)."
            )


class CountLikelihood(LikelihoodHead):
    """Counts: non-negative data, integers expected; the mean is ``softmax(raw) * library``.

    The distributions are scvi-tools' and carry the normalised expression ``softmax(raw)``
    as ``scale`` (``get_normalized("scale")``), which scvi-tools' ``RNASeqMixin`` reads.
    """

    counts = True

    @classmethod
    def check_values(cls, summary: ValueSummary, location: str) -> None:
        if summary.minimum < 0:
            raise ValueError(
                f"likelihood={cls.name!r} needs non-negative counts, but {location} have "
                "negative values. Register the raw counts (setup_anndata(layer=...)) "
                "or use likelihood='gaussian' for scaled data."
            )
        if not summary.integers:
            warnings.warn(
                f"likelihood={cls.name!r} expects integer counts but {location} have "
                "non-integer values; register raw counts with setup_anndata(layer=...).",
                UserWarning,
                stacklevel=4,
            )
        elif not summary.exact_integers:
            logger.warning(
                "%s hold counts that are integers only up to rounding error (e.g. 2.9999998); "
                "they are modelled as they are. Round them (np.rint) if they should be whole.",
                location,
            )


@register_likelihood
class PoissonLikelihood(CountLikelihood):
    """Poisson counts."""

    name = "poisson"
    use_for = "raw counts without overdispersion"

    def distribution(self, raw, hidden, library, affine) -> Distribution:
        scale = torch.softmax(raw, dim=-1)
        return Poisson((scale * library).clamp_min(1e-8), validate_args=False, scale=scale)


class DispersedCountLikelihood(CountLikelihood):
    """Counts with one learned inverse dispersion θ per gene (``log_theta``)."""

    def __init__(self, n_hidden: int, n_output: int, learn_scale: bool = True):
        super().__init__(n_hidden, n_output)
        self.log_theta = nn.Parameter(torch.zeros(n_output))


@register_likelihood
class NegativeBinomialLikelihood(DispersedCountLikelihood):
    """Negative binomial counts with one inverse dispersion per gene (scVI's default)."""

    name = "nb"
    use_for = "raw counts (UMIs)"

    def distribution(self, raw, hidden, library, affine) -> Distribution:
        return GeneNegativeBinomial(theta=self.log_theta.exp(), logits=raw, library=library)

    def negative_log_likelihood(self, px: Distribution, x: torch.Tensor) -> torch.Tensor:
        return -px.log_prob_sum(x)


@register_likelihood
class ZeroInflatedNegativeBinomialLikelihood(DispersedCountLikelihood):
    """Negative binomial counts with extra zeros, their logits from ``h``."""

    name = "zinb"
    use_for = "raw counts with more zeros than a negative binomial explains"

    def __init__(self, n_hidden: int, n_output: int, learn_scale: bool = True):
        super().__init__(n_hidden, n_output)
        self.dropout_logits = nn.Linear(n_hidden, n_output)

    def distribution(self, raw, hidden, library, affine) -> Distribution:
        scale = torch.softmax(raw, dim=-1)
        mu = scale * library
        return ZeroInflatedNegativeBinomial(
            mu=mu,
            theta=self.log_theta.exp().expand_as(mu),
            zi_logits=self.dropout_logits(hidden).float(),
            scale=scale,
            validate_args=False,
        )
