"""Checks of user input that fail early with a message naming the problem and the fix."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from cgmvae.nn.likelihood import get_likelihood

logger = logging.getLogger(__name__)

POSITIVE_INT_PARAMS = (
    "components_per_cluster",
    "n_latent",
    "n_hidden",
    "n_layers",
    "n_clusters",
    "n_mc_samples",
)
NON_NEGATIVE_PARAMS = ("beta", "beta_y", "free_bits", "noise_sd")
PREVIEW = 5


def _preview(values, n: int = PREVIEW) -> str:
    """Return the first ``n`` values quoted, and how many more there are."""
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def _check_positive_int(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{name} must be a whole number, got {value!r} ({type(value).__name__}); "
            f"pass an int such as {name}=10."
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; use {name}>=1.")


def _check_real(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")


def check_model_params(**params) -> None:
    """Check model hyper-parameters before anything is built.

    Raises
    ------
    TypeError
        A size that is not an integer (``n_latent=2.5``) or a weight that is not a number.
    ValueError
        An unknown likelihood, a size below 1, a negative weight or a dropout rate
        outside [0, 1).
    """
    get_likelihood(params.get("likelihood", "gaussian"))
    for name in POSITIVE_INT_PARAMS:
        _check_positive_int(name, params.get(name))
    for name in NON_NEGATIVE_PARAMS:
        value = params.get(name)
        if value is not None:
            _check_real(name, value)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}.")
    dropout = params.get("dropout_rate", 0.0)
    _check_real("dropout_rate", dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout!r}.")


def check_anndata(adata) -> None:
    """Check that ``adata`` is an in-memory AnnData, not a view, with a cell and a gene.

    Views are refused, never converted: registering writes into the AnnData, and
    converting a view in place would change the object the user holds.

    Raises
    ------
    TypeError
        ``adata`` is not an :class:`~anndata.AnnData`.
    ValueError
        ``adata`` is a view, backed (opened with ``read_h5ad(..., backed="r")``) or empty.
    """
    if not isinstance(adata, AnnData):
        raise TypeError(
            f"Expected an AnnData, got {type(adata).__name__}; wrap the matrix first "
            "(anndata.AnnData(X))."
        )
    if adata.isbacked:
        raise ValueError(
            f"adata is backed by {str(adata.filename)!r}; backed AnnData are not supported. "
            "Load it into memory first: adata = adata.to_memory()."
        )
    if adata.is_view:
        raise ValueError(
            "adata is a view of another AnnData (e.g. adata[mask]); views are not registered "
            "or converted, so that the AnnData you hold is left as it is. Pass a copy "
            "(adata[mask].copy()), or for inference the full AnnData with indices=."
        )
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(
            f"adata is empty ({adata.n_obs} cells × {adata.n_vars} genes); the model needs "
            "at least one cell and one gene. Check the filtering that produced it."
        )


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


def _value_chunks(data) -> Iterator[np.ndarray]:
    """Yield the stored values of ``data`` (dense or sparse), :data:`CHUNK_VALUES` at a time."""
    if sp.issparse(data):
        for start in range(0, data.data.size, CHUNK_VALUES):
            yield data.data[start : start + CHUNK_VALUES]
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


def scan_matrix(data) -> MatrixScan:
    """Summarise the values of ``data`` and sum its rows and columns in one pass over rows.

    Dense and CSR matrices are read :data:`CHUNK_VALUES` at a time; a CSC matrix (whose
    rows are not contiguous) is summarised over its stored values and summed by scipy.
    """
    if sp.issparse(data) and data.format != "csr":
        return MatrixScan(
            summarize_values(data),
            np.asarray(data.sum(1)).ravel(),
            np.asarray(data.sum(0)).ravel(),
        )
    n_obs, n_vars = data.shape
    step = max(1, CHUNK_VALUES // max(1, n_vars))
    summary, cells, genes = ValueSummary(), [], np.zeros(n_vars)
    for start in range(0, n_obs, step):
        block = data[start : start + step]
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
    like fractions; scipy sums them only on request.
    """
    if not sp.issparse(data) or data.format not in ("csr", "csc"):
        return
    if getattr(data, "has_canonical_format", False):
        return
    major = np.repeat(np.arange(len(data.indptr) - 1, dtype=np.int64), np.diff(data.indptr))
    keys = major * data.shape[1 if data.format == "csr" else 0] + data.indices
    if np.unique(keys).size < keys.size:
        raise ValueError(
            f"{location} is a sparse matrix that stores some (cell, gene) entries more than "
            f"once, which the checks and the model would read apart. Merge them first: call "
            f".sum_duplicates() on {location}."
        )


def check_names(adata: AnnData) -> None:
    """Refuse duplicate gene names; warn about duplicate cell names.

    Genes are matched by name when a trained model meets new data, so they must be
    unique. Cells are used by position; duplicate names only make results ambiguous to
    look up.
    """
    duplicated = adata.var_names[adata.var_names.duplicated()]
    if len(duplicated):
        raise ValueError(
            f"adata.var_names has {len(duplicated)} duplicate gene names "
            f"({_preview(duplicated.unique())}); genes are matched by name, so they must be "
            "unique. Run adata.var_names_make_unique() first."
        )
    duplicated = adata.obs_names[adata.obs_names.duplicated()]
    if len(duplicated):
        logger.warning(
            "adata.obs_names has %d duplicate cell names (%s); results are written by "
            "position, but looking cells up by name will be ambiguous. "
            "adata.obs_names_make_unique() fixes it.",
            len(duplicated),
            _preview(duplicated.unique()),
        )


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


def check_n_clusters(n_clusters: int, n_cells: int, what: str) -> None:
    """Raise ``ValueError`` if fewer than ``n_clusters`` cells are there to place them on."""
    if n_clusters > n_cells:
        raise ValueError(
            f"n_clusters={n_clusters} but {what} only {n_cells} cells; every cluster needs "
            f"cells to be placed on. Use n_clusters <= {n_cells} or more cells."
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
    check_no_duplicate_entries(data, location)
    _raise_if_not_finite(summarize_values(data), location)


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
    check_no_duplicate_entries(data, location)
    check_summary_for_likelihood(summarize_values(data), likelihood, location)


def check_summary_for_likelihood(summary: ValueSummary, likelihood: str, location: str) -> None:
    """:func:`check_values_for_likelihood` on values already summarised."""
    _raise_if_not_finite(summary, location)
    get_likelihood(likelihood).check_values(summary, location)


def data_location(layer: str | None) -> str:
    """Name the registered matrix for error messages."""
    return "adata.X" if layer is None else f"adata.layers[{layer!r}]"


def _close_matches(key: str, options) -> str:
    matches = difflib.get_close_matches(str(key), [str(o) for o in options], n=3, cutoff=0.5)
    return f" Did you mean {', '.join(map(repr, matches))}?" if matches else ""


def check_obs_key(adata: AnnData, key: str | None, argument: str, hint: str = "") -> None:
    """Raise ``KeyError`` naming ``argument`` when ``key`` is not an ``.obs`` column.

    The message lists close matches and the available columns, then ``hint``.
    """
    if key is not None and key not in adata.obs.columns:
        raise KeyError(
            f"{argument}={key!r} is not a column of adata.obs.{_close_matches(key, adata.obs)}"
            f" Available columns: {', '.join(map(str, adata.obs.columns)) or 'none'}.{hint}"
        )


def check_obs_complete(adata: AnnData, key: str | None, argument: str) -> None:
    """Raise ``ValueError`` when the ``.obs`` column ``key`` has missing values."""
    if key is None:
        return
    n_missing = int(adata.obs[key].isna().sum())
    fill = " (for labels: the unlabeled_category)" if argument == "labels_key" else ""
    if n_missing:
        raise ValueError(
            f"adata.obs[{key!r}] ({argument}) has {n_missing} missing values (NaN). Fill "
            f"them with a category of their own{fill}, or drop those cells: "
            f"adata = adata[adata.obs[{key!r}].notna()].copy()."
        )


def check_covariates(
    adata: AnnData,
    categorical: list[str] | None,
    continuous: list[str] | None,
    reserved: dict[str, str | None],
) -> None:
    """Check the covariate columns given to ``setup_anndata``.

    Each must be an ``.obs`` column, categorical ones without missing values, continuous ones
    numeric and finite; no column may serve twice (``reserved`` maps the other arguments,
    e.g. ``condition_key``, to their columns).
    """
    used = {key: argument for argument, key in reserved.items() if key is not None}
    for argument, keys in (
        ("categorical_covariate_keys", categorical),
        ("continuous_covariate_keys", continuous),
    ):
        for key in keys or []:
            check_obs_key(adata, key, argument)
            if key in used:
                raise ValueError(
                    f"adata.obs[{key!r}] is given both as {used[key]} and in {argument}; "
                    "each column can play one role. Drop it from one of them."
                )
            used[key] = argument
    for key in categorical or []:
        check_obs_complete(adata, key, "categorical_covariate_keys")
    for key in continuous or []:
        values = adata.obs[key]
        if not pd.api.types.is_numeric_dtype(values) or not np.isfinite(values).all():
            raise ValueError(
                f"adata.obs[{key!r}] (continuous_covariate_keys) must be numeric and finite. "
                "Convert it (pd.to_numeric) and fill or drop missing values, or pass it in "
                "categorical_covariate_keys instead."
            )


def check_known_categories(adata: AnnData, key: str, argument: str, known) -> None:
    """Raise ``ValueError`` when ``adata.obs[key]`` holds categories not in ``known``.

    ``known`` are the categories registered at training; values are compared as they are
    (as scvi-tools does when it transfers a setup), and the message lists both sets.
    """
    known = list(known)
    known_set = set(known)
    present = pd.unique(np.asarray(adata.obs[key], dtype=object))
    unknown = [value for value in present if value not in known_set]
    if unknown:
        raise ValueError(
            f"adata.obs[{key!r}] ({argument}) holds categories not seen in training: "
            f"{_preview(unknown)}. Known categories: {_preview(known, 20)}. "
            f"Keep the cells of known categories (adata[adata.obs[{key!r}].isin(known)]"
            ".copy()) or train a model that includes them."
        )


def check_layer(adata: AnnData, layer: str | None) -> None:
    """Raise ``KeyError`` when ``layer`` is not in ``adata.layers``."""
    if layer is not None and layer not in adata.layers:
        raise KeyError(
            f"layer={layer!r} is not in adata.layers.{_close_matches(layer, adata.layers)}"
            f" Available layers: {', '.join(adata.layers) or 'none'}; use layer=None for .X."
        )


def check_label_probs(adata: AnnData, key: str | None) -> None:
    """Check that ``adata.obsm[key]`` is a relaxed class matrix (rows ≥ 0 summing to 1 or 0)."""
    if key is None:
        return
    if key not in adata.obsm:
        raise KeyError(
            f"label_probs_key={key!r} is not in adata.obsm.{_close_matches(key, adata.obsm)}"
            f" Available keys: {', '.join(adata.obsm) or 'none'}."
        )
    probs = np.asarray(adata.obsm[key], dtype=np.float64)
    sums = probs.sum(1)
    if (
        probs.ndim != 2
        or (probs < 0).any()
        or not np.all(np.isclose(sums, 1.0, atol=1e-4) | np.isclose(sums, 0.0))
    ):
        raise ValueError(
            f"adata.obsm[{key!r}] must hold class probabilities: non-negative rows that sum "
            "to 1 (labelled cells) or to 0 (unlabelled cells)."
        )


def align_var_names(adata: AnnData, genes) -> AnnData:
    """Return ``adata`` with its genes in the order of ``genes`` (the training genes).

    ``adata`` itself is returned when its genes already match; a reordered copy when it
    has the same genes in another order (``adata`` is never modified).

    Raises
    ------
    ValueError
        When genes are missing, extra or duplicated: the message names the first few and
        how many.
    """
    genes = pd.Index(np.asarray(genes))
    var_names = adata.var_names
    if var_names.equals(genes):
        return adata
    missing = genes[~genes.isin(var_names)]
    extra = var_names[~var_names.isin(genes)]
    if len(missing) or len(extra):
        raise ValueError(_gene_mismatch_message(genes, missing, extra))
    if not (var_names.is_unique and genes.is_unique):
        raise ValueError(
            "adata has the training genes in another order, but gene names are duplicated "
            f"({_preview(var_names[var_names.duplicated()])}), so they cannot be matched by "
            "name. Make them unique as at training (adata.var_names_make_unique())."
        )
    logger.info("Reordering the genes of a copy of adata to match the training genes.")
    return adata[:, genes].copy()


def _gene_mismatch_message(genes: pd.Index, missing: pd.Index, extra: pd.Index) -> str:
    parts = []
    if len(missing):
        parts.append(f"{len(missing)} training genes are missing ({_preview(missing)})")
    if len(extra):
        parts.append(f"{len(extra)} genes were not in training ({_preview(extra)})")
    fix = (
        "Select the training genes: adata[:, model.get_var_names()].copy()."
        if not len(missing)
        else "Add the missing genes (e.g. as zero counts) or train on the shared genes."
    )
    return (
        f"adata's genes differ from the {len(genes)} genes the model was trained on: "
        f"{'; '.join(parts)}. {fix}"
    )


def check_trainable(n_obs: int, n_train: int, batch_size: int, drop_last: bool = False) -> None:
    """Check that training gets minibatches batch normalisation can train on (≥ 2 cells).

    Parameters
    ----------
    n_obs
        Cells in the AnnData.
    n_train
        Cells in the training set, as scvi-tools' data splitter chose them.
    batch_size
        Minibatch size.
    drop_last
        Whether the last, incomplete minibatch is dropped.

    Raises
    ------
    ValueError
        ``batch_size`` below 2, fewer than 2 training cells, or a last minibatch of a
        single cell.
    """
    if batch_size < 2:
        raise ValueError(
            f"batch_size={batch_size} is too small: batch normalisation needs at least 2 "
            "cells per minibatch. Use batch_size>=2 (default 128)."
        )
    if n_train < 2:
        fix = "Train on at least 2 cells." if n_obs < 2 else "Pass train_size=1.0."
        raise ValueError(
            f"Training needs at least 2 training cells (batch normalisation cannot train on "
            f"one), but adata has {n_obs} cells of which {n_train} are for training. {fix}"
        )
    if not drop_last and n_train % batch_size == 1:
        better = next(size for size in range(batch_size + 1, n_train + 1) if n_train % size != 1)
        raise ValueError(
            f"The last minibatch would hold a single cell ({n_train} training cells, "
            f"batch_size={batch_size}), which batch normalisation cannot train on. Use "
            f"batch_size={better} or datasplitter_kwargs={{'drop_last': True}}."
        )
