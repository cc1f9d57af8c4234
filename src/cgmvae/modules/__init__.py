"""Torch modules: inference, generative model and loss of each variant."""

from cgmvae.modules.base import AutoencoderModule, LatentCost
from cgmvae.modules.gmvae import GMVAEModule
from cgmvae.modules.vae import VAEModule

__all__ = ["AutoencoderModule", "GMVAEModule", "LatentCost", "VAEModule"]
