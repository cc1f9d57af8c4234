"""Plots: latent UMAPs, training histories, image grids."""

from cgmvae.pl.embedding import latent_umap
from cgmvae.pl.history import training_history
from cgmvae.pl.images import image_grid

__all__ = ["image_grid", "latent_umap", "training_history"]
