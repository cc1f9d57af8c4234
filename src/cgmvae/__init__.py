"""cgmvae: conditional Gaussian-mixture VAEs with an scvi-tools-style AnnData API.

The models and subpackages load on first use, so that ``cgmvae --help`` and
``import cgmvae.constants`` import neither torch nor scvi-tools.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import version

_FROM_MODELS = ("AE", "CGMVAE", "CVAE", "GMVAE", "VAE", "select_n_clusters")
_SUBPACKAGES = ("data", "lightning", "metrics", "pl")
__all__ = [*_FROM_MODELS, *_SUBPACKAGES]
__version__ = version("cgmvae")


def _configure_logging() -> None:
    """Show the package's INFO messages (e.g. what the mixture placement did) on stderr.

    As scvi-tools does for ``scvi``: the ``cgmvae`` logger has its own handler and does not
    propagate; ``logging.getLogger("cgmvae").setLevel(logging.WARNING)`` silences it.
    Nothing else's logging is changed (Lightning's tips are hidden only while a model
    trains, :func:`cgmvae.train.quiet.quiet_lightning`).
    """
    logger = logging.getLogger("cgmvae")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[cgmvae] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


_configure_logging()


def __getattr__(name: str):
    if name in _FROM_MODELS:
        return getattr(importlib.import_module("cgmvae.models"), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"cgmvae.{name}")
    raise AttributeError(f"module 'cgmvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
