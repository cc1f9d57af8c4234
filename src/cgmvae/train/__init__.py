"""Training plans and the placement of mixture components."""

from cgmvae.train.placement import cluster_latent, cut_fraction
from cgmvae.train.plan import AutoencoderTrainingPlan

__all__ = ["AutoencoderTrainingPlan", "cluster_latent", "cut_fraction"]
