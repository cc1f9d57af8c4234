"""The training plan and the placement of mixture components."""

from cgmvae.train.mixture_placement import PlaceMixture
from cgmvae.train.placement import cluster_latent, cut_fraction
from cgmvae.train.plan import AutoencoderTrainingPlan

__all__ = ["AutoencoderTrainingPlan", "PlaceMixture", "cluster_latent", "cut_fraction"]
