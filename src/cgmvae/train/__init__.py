"""The training plan and the placement of mixture components and condition effects."""

from cgmvae.train.effect_placement import PlaceConditionEffect
from cgmvae.train.mixture_placement import PlaceMixture
from cgmvae.train.placement import cluster_latent, cut_fraction
from cgmvae.train.plan import AutoencoderTrainingPlan

__all__ = [
    "AutoencoderTrainingPlan",
    "PlaceConditionEffect",
    "PlaceMixture",
    "cluster_latent",
    "cut_fraction",
]
