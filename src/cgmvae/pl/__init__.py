"""Plots: latent UMAPs, training histories, image grids, cluster composition, choosing K."""

from cgmvae.pl.composition import cluster_composition
from cgmvae.pl.embedding import latent_umap
from cgmvae.pl.history import training_history
from cgmvae.pl.images import image_grid
from cgmvae.pl.selection import n_clusters_selection

__all__ = [
    "cluster_composition",
    "image_grid",
    "latent_umap",
    "n_clusters_selection",
    "training_history",
]
