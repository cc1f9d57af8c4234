"""Training plans."""

from cgmvae.train.plan import AutoencoderTrainingPlan

__all__ = ["AutoencoderTrainingPlan"]
