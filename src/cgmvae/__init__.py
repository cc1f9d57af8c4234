"""cgmvae: conditional Gaussian-mixture VAEs with an scvi-tools-style AnnData API.

The models and subpackages load on first use, so that ``cgmvae --help`` and
``import cgmvae.constants`` import neither torch nor scvi-tools.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version

_MODELS = ("AE", "CGMVAE", "CVAE", "GMVAE", "VAE")
_SUBPACKAGES = ("data", "metrics", "pl")
__all__ = [*_MODELS, *_SUBPACKAGES]
__version__ = version("cgmvae")


def __getattr__(name: str):
    if name in _MODELS:
        return getattr(importlib.import_module("cgmvae.models"), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"cgmvae.{name}")
    raise AttributeError(f"module 'cgmvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
