"""cgmvae: conditional Gaussian-mixture VAEs with an scvi-tools-style AnnData API."""

from importlib.metadata import version

from cgmvae import data, metrics, pl
from cgmvae.models import AE, CGMVAE, CVAE, GMVAE, VAE

__all__ = ["AE", "CGMVAE", "CVAE", "GMVAE", "VAE", "data", "metrics", "pl"]
__version__ = version("cgmvae")
