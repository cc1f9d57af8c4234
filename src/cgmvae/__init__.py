"""cgmvae: conditional Gaussian-mixture VAEs with an scvi-tools-style AnnData API."""

from importlib.metadata import version

from cgmvae import data, metrics
from cgmvae.models import AE, CGMVAE, CVAE, GMVAE, VAE

__all__ = ["AE", "CGMVAE", "CVAE", "GMVAE", "VAE", "data", "metrics"]
__version__ = version("cgmvae")
