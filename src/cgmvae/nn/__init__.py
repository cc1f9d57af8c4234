"""Building blocks shared by the modules: networks, priors, likelihoods."""

from cgmvae.nn.blocks import Decoder, Encoder
from cgmvae.nn.condition_adapter import ConditionAdapter
from cgmvae.nn.condition_effect import ConditionEffect
from cgmvae.nn.likelihood import COUNT_LIKELIHOODS, LIKELIHOODS, LikelihoodHead
from cgmvae.nn.negative_binomial import GeneNegativeBinomial
from cgmvae.nn.priors import MixturePrior, kl_diagonal_gaussians, kl_standard_normal

__all__ = [
    "COUNT_LIKELIHOODS",
    "LIKELIHOODS",
    "ConditionAdapter",
    "ConditionEffect",
    "Decoder",
    "Encoder",
    "GeneNegativeBinomial",
    "LikelihoodHead",
    "MixturePrior",
    "kl_diagonal_gaussians",
    "kl_standard_normal",
]
