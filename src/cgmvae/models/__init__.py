"""User-facing models with an AnnData API."""

from cgmvae.models.ae import AE
from cgmvae.models.base import BaseAutoencoderModel
from cgmvae.models.cgmvae import CGMVAE
from cgmvae.models.gmvae import GMVAE
from cgmvae.models.selection import select_n_clusters
from cgmvae.models.vae import CVAE, VAE

__all__ = ["AE", "CGMVAE", "CVAE", "GMVAE", "VAE", "BaseAutoencoderModel", "select_n_clusters"]
