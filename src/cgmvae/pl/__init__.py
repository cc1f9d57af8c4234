"""Plots: latent UMAPs and training histories."""

from cgmvae.pl.embedding import latent_umap
from cgmvae.pl.history import training_history

__all__ = ["latent_umap", "training_history"]
