"""Checks of the registered matrix's values, read in chunks and never copied whole."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.abc import CSRDataset

from cgmvae.nn.likelihood import get_likelihood
from cgmvae.validation._format import _preview, _show

logger = logging.getLogger(__name__)

#: Values checked at a time (16 MiB of float32), so no check copies a whole matrix.
CHUNK_VALUES = 1 << 22


@dataclass
class ValueSummary:
    """What the checks need to know about a matrix's stored values, found in one pass."""

    n_nan: int = 0
    n_inf: int = 0
    minimum: float = np.inf
    maximum: float = -np.inf
    #: integers to within ``np.allclose``'s tolerance
    integers: bool = True
    #: integers exactly (no rounding error)
    exact_integers: bool = True

    @property
    def finite(self) -> bool:
        """Whether no value is NaN or infinite."""
        return self.n_nan == 0 and self.n_inf == 0


def _row_blocks(data) -> Iterator:
    """Yield ``data`` (dense, CSR, or on disk) :data:`CHUNK_VALUES` cells' worth of rows at a time.

    Blocks are in memory (NumPy arrays or CSR matrices) whatever ``data`` is; an on-disk
    matrix (a backed AnnData's ``X``) is read one block at a time.
    """
    n_obs, n_vars = data.shape
    step = max(1, CHUNK_VALUES // max(1, n_vars))
    for start in range(0, n_obs, step):
        yield data[start : start + step]


def _value_chunks(data) -> Iterator[np.ndarray]:
    """Yield the stored values of ``data`` (dense or sparse), :data:`CHUNK_VALUES` at a time."""
    if sp.issparse(data):
        for start in range(0, data.data.size, CHUNK_VALUES):
            yield data.data[start : start + CHUNK_VALUES]
        return
    if isinstance(data, CSRDataset):
        for block in _row_blocks(data):
            yield block.data
        return
    n_rows = data.shape[0] if len(data.shape) else 1
    row_size = max(1, int(np.prod(data.shape[1:])))
    step = max(1, CHUNK_VALUES // row_size)
    for start in range(0, n_rows, step):
        yield np.asarray(data[start : start + step]).ravel()


def summarize_values(data) -> ValueSummary:
    """Count NaN/inf and find the range and integrality of the finite stored values.

    Sparse matrices are summarised over their stored entries only.
    """
    summary = ValueSummary()
    for chunk in _value_chunks(data):
        finite = np.isfinite(chunk)
        if not finite.all():
            summary.n_nan += int(np.isnan(chunk).sum())
            summary.n_inf += int(np.isinf(chunk).sum())
            chunk = chunk[finite]
        if not chunk.size:
            continue
        summary.minimum = min(summary.minimum, float(chunk.min()))
        summary.maximum = max(summary.maximum, float(chunk.max()))
        _update_integrality(summary, chunk)
    return summary


def _update_integrality(summary: ValueSummary, chunk: np.ndarray) -> None:
    if not summary.exact_integers:
        if summary.integers and not np.allclose(chunk, np.round(chunk)):
            summary.integers = False
        return
    rounded = np.round(chunk)
    if not np.array_equal(chunk, rounded):
        summary.exact_integers = False
        summary.integers = bool(np.allclose(chunk, rounded))


@dataclass
class MatrixScan:
    """The registered matrix read once: its values, and its total per cell and per gene."""

    values: ValueSummary
    cell_totals: np.ndarray
    gene_totals: np.ndarray


def scan_matrix(data, location: str = "The registered data") -> MatrixScan:
    """Summarise the values of ``data`` and sum its rows and columns in one pass over rows.

    Dense and CSR matrices, in memory or on disk (a backed AnnData's ``X``), are read
    :data:`CHUNK_VALUES` at a time, each sparse block checked for duplicate entries on the
    way (:func:`check_no_duplicate_entries`); a CSC matrix in memory (whose rows are not
    contiguous) is checked whole, summarised over its stored values and summed by scipy.

    Raises
    ------
    ValueError
        ``data`` stores an entry more than once; ``location`` names it in the message.
    """
    if sp.issparse(data) and data.format != "csr":
        check_no_duplicate_entries(data, location)
        return MatrixScan(
            summarize_values(data),
            np.asarray(data.sum(1)).ravel(),
            np.asarray(data.sum(0)).ravel(),
        )
    summary, cells, genes = ValueSummary(), [], np.zeros(data.shape[1])
    for block in _checked_row_blocks(data, location):
        values = block.data if sp.issparse(block) else np.asarray(block).ravel()
        part = summarize_values(values)
        _merge(summary, part)
        cells.append(np.asarray(block.sum(1), dtype=np.float64).ravel())
        genes += np.asarray(block.sum(0), dtype=np.float64).ravel()
    return MatrixScan(summary, np.concatenate(cells), genes)


def _merge(summary: ValueSummary, part: ValueSummary) -> None:
    summary.n_nan += part.n_nan
    summary.n_inf += part.n_inf
    summary.minimum = min(summary.minimum, part.minimum)
    summary.maximum = max(summary.maximum, part.maximum)
    summary.integers = summary.integers and part.integers
    summary.exact_integers = summary.exact_integers and part.exact_integers


def check_no_duplicate_entries(data, location: str = "The registered data") -> None:
    """Raise ``ValueError`` if a sparse ``data`` stores one (cell, gene) entry more than once.

    The checks read the stored values, and two entries 0.5 + 0.5 of one count would look
    like fractions; scipy sums them only on request. A CSR matrix, in memory or on disk, is
    checked one block of rows at a time.
    """
    if isinstance(data, CSRDataset) or (sp.issparse(data) and data.format == "csr"):
        if not getattr(data, "has_canonical_format", False):  # else nothing to read
            for _ in _checked_row_blocks(data, location):
                pass
        return
    if sp.issparse(data) and data.format == "csc" and _stores_duplicates(data):
        _raise_duplicates(location)


def _checked_row_blocks(data, location: str) -> Iterator:
    """:func:`_row_blocks`, each sparse block checked for duplicate entries on the way.

    A matrix in memory that scipy finds canonical (sorted, no duplicates) is not checked again
    block by block.
    """
    canonical = getattr(data, "has_canonical_format", False)
    for block in _row_blocks(data):
        if not canonical and sp.issparse(block) and _stores_duplicates(block):
            _raise_duplicates(location)
        yield block


def _checked_summary(data, location: str) -> ValueSummary:
    """Check ``data`` for duplicate entries and summarise its values; one read from disk."""
    if isinstance(data, CSRDataset):
        summary = ValueSummary()
        for block in _checked_row_blocks(data, location):
            _merge(summary, summarize_values(block.data))
        return summary
    check_no_duplicate_entries(data, location)
    return summarize_values(data)


def _stores_duplicates(matrix: sp.spmatrix) -> bool:
    """Whether a CSR or CSC ``matrix`` in memory stores an entry more than once."""
    if matrix.has_canonical_format:
        return False
    major = np.repeat(np.arange(len(matrix.indptr) - 1, dtype=np.int64), np.diff(matrix.indptr))
    keys = major * matrix.shape[1 if matrix.format == "csr" else 0] + matrix.indices
    return np.unique(keys).size < keys.size


def _raise_duplicates(location: str) -> None:
    raise ValueError(
        f"{location} is a sparse matrix that stores some (cell, gene) entries more than "
        f"once, which the checks and the model would read apart. Merge them first: call "
        f".sum_duplicates() on {location}."
    )


def _raise_if_not_finite(summary: ValueSummary, location: str) -> None:
    if not summary.finite:
        raise ValueError(
            f"{location} contain {summary.n_nan} NaN and {summary.n_inf} infinite values. "
            "Remove or impute them (e.g. np.nan_to_num) before setup_anndata."
        )


def check_finite(data, location: str = "The registered data") -> None:
    """Raise ``ValueError`` if ``data`` (dense or sparse) holds NaN or infinite values.

    A sparse matrix that stores an entry twice is refused too
    (:func:`check_no_duplicate_entries`).
    """
    _raise_if_not_finite(_checked_summary(data, location), location)


def check_values_for_likelihood(
    data, likelihood: str, location: str = "The registered data"
) -> None:
    """Check registered data against the likelihood's support.

    Raises ``ValueError`` for NaN/inf, then whatever the likelihood's
    :meth:`~cgmvae.nn.LikelihoodHead.check_values` refuses (negative counts, values outside
    [0, 1] for ``"bernoulli"``); a count likelihood warns on non-integers. ``location``
    names the data in the messages (e.g. ``"adata.layers['counts']"``). The data are read
    in chunks, never copied whole.
    """
    check_summary_for_likelihood(_checked_summary(data, location), likelihood, location)


def check_summary_for_likelihood(summary: ValueSummary, likelihood: str, location: str) -> None:
    """:func:`check_values_for_likelihood` on values already summarised."""
    _raise_if_not_finite(summary, location)
    get_likelihood(likelihood).check_values(summary, location)


def warn_empty_genes(gene_totals: np.ndarray, var_names: pd.Index, location: str) -> None:
    """Log a warning naming the genes that are zero in every cell of ``location``."""
    empty = var_names[np.asarray(gene_totals) == 0]
    if len(empty):
        logger.warning(
            "%d of %d genes are zero in every cell of %s (%s); they only cost time and "
            "their decoder weights learn nothing. Drop them first, e.g. "
            "sc.pp.filter_genes(adata, min_cells=1).",
            len(empty),
            len(var_names),
            location,
            _preview(empty),
        )


def check_integer_counts(source: sp.spmatrix | np.ndarray, where: str) -> sp.csr_matrix:
    """Check that a matrix holds non-negative integer counts; return a float64 CSR copy.

    Parameters
    ----------
    source
        Cells × genes matrix, sparse or dense.
    where
        Where the matrix comes from, for the message (e.g. ``"adata.layers['counts']"``).

    Returns
    -------
    scipy.sparse.csr_matrix
        A float64 copy, explicit zeros removed.

    Raises
    ------
    ValueError
        If a value is negative, not finite or not an integer.
    """
    counts = sp.csr_matrix(source, dtype=np.float64, copy=True)
    values = counts.data
    bad = ~np.isfinite(values) | (values < 0) | (values != np.rint(values))
    if bad.any():
        raise ValueError(
            f"{where} must hold non-negative integer counts, but has e.g. "
            f"{_show(values[bad][0])}; pass the raw counts (layer=... names the layer, None "
            "reads .X)"
        )
    counts.eliminate_zeros()
    return counts
