"""Building blocks shared by the modules: networks, priors, likelihoods."""

from cgmvae.nn.blocks import Decoder, Encoder
from cgmvae.nn.condition_adapter import ConditionAdapter
from cgmvae.nn.condition_effect import ConditionEffect, specific_support
from cgmvae.nn.invariance import AdversarialPenalty, MMDPenalty, cluster_share_penalty
from cgmvae.nn.likelihood import (
    LIKELIHOODS,
    LikelihoodHead,
    get_likelihood,
    register_likelihood,
)
from cgmvae.nn.negative_binomial import GeneNegativeBinomial
from cgmvae.nn.priors import MixturePrior, kl_diagonal_gaussians, kl_standard_normal

__all__ = [
    "LIKELIHOODS",
    "AdversarialPenalty",
    "ConditionAdapter",
    "ConditionEffect",
    "Decoder",
    "Encoder",
    "GeneNegativeBinomial",
    "LikelihoodHead",
    "MMDPenalty",
    "MixturePrior",
    "cluster_share_penalty",
    "get_likelihood",
    "kl_diagonal_gaussians",
    "kl_standard_normal",
    "register_likelihood",
    "specific_support",
]
