"""Checks of an AnnData's structure: its type, names, keys, layers and categories.

A missing key raises ``KeyError`` (with close matches); a key that exists but whose content
cannot be used raises ``ValueError``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData

from cgmvae.validation._format import _close_matches, _preview

logger = logging.getLogger(__name__)


def check_anndata(adata) -> None:
    """Check that ``adata`` is an AnnData, not a view, with a cell and a gene.

    Views are refused, never converted: registering writes into the AnnData, and
    converting a view in place would change the object the user holds. A backed AnnData
    (``read_h5ad(..., backed="r")``) is read from disk in row blocks
    (:func:`check_backed_matrix`).

    Raises
    ------
    TypeError
        ``adata`` is not an :class:`~anndata.AnnData`.
    ValueError
        ``adata`` is a view or empty, or backed with a matrix stored by columns.
    """
    if not isinstance(adata, AnnData):
        raise TypeError(
            f"Expected an AnnData, got {type(adata).__name__}; wrap the matrix first "
            "(anndata.AnnData(X))."
        )
    if adata.isbacked:
        check_backed_matrix(adata)
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


def check_backed_matrix(adata: AnnData) -> None:
    """Refuse a backed ``X`` stored by columns (CSC): a minibatch of cells would read all of it.

    Dense and CSR matrices on disk are read one block of rows at a time by the checks and
    one minibatch at a time by training.
    """
    if getattr(adata.X, "format", None) == "csc":
        raise ValueError(
            f"adata is backed by {str(adata.filename)!r} with X stored by columns (CSC); a "
            "minibatch of cells would read the whole matrix from disk. Rewrite it by rows: "
            "adata = adata.to_memory(); adata.X = adata.X.tocsr(); adata.write_h5ad(path)."
        )


def warn_backed_layer(adata: AnnData, layer: str | None) -> None:
    """Log that a backed AnnData's ``layer`` is in memory: anndata keeps only ``X`` on disk."""
    if adata.isbacked and layer is not None:
        logger.warning(
            "adata is backed by %r, but anndata reads its layers into memory: "
            "adata.layers[%r] is trained from memory. To train from disk, store the "
            "counts as X and call setup_anndata with layer=None.",
            str(adata.filename),
            layer,
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


def data_location(layer: str | None) -> str:
    """Name the registered matrix for error messages."""
    return "adata.X" if layer is None else f"adata.layers[{layer!r}]"


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


def check_layer(adata: AnnData, layer: str | None, *, reserved: str | None = None) -> None:
    """Check that ``layer`` names a layer of ``adata`` (``None``: ``.X``), not ``reserved``.

    Raises
    ------
    KeyError
        The layer does not exist; the message lists close matches and the layers.
    ValueError
        ``layer`` is ``reserved``, a name the caller's output uses for something else.
    """
    if layer is not None and layer not in adata.layers:
        raise KeyError(
            f"layer={layer!r} is not in adata.layers.{_close_matches(layer, adata.layers)}"
            f" Available layers: {', '.join(adata.layers) or 'none'}; use layer=None for .X."
        )
    if reserved is not None and layer == reserved:
        raise ValueError(f"layer must not be {reserved!r}: the output uses that name")


def report_label_counts(adata: AnnData, key: str, unlabeled_category: str) -> None:
    """Log how many cells of ``adata.obs[key]`` carry each label (the unlabelled ones apart).

    Few labelled cells per class are what semi-supervision is for, so this is said once at
    setup, by class name, in place of scvi-tools' warning per category code.
    """
    labels = adata.obs[key].astype(str)
    counts = labels[labels != unlabeled_category].value_counts()
    logger.info(
        "%s: %d of %d cells labelled (%s).",
        key,
        int(counts.sum()),
        adata.n_obs,
        ", ".join(f"{name} {count}" for name, count in counts.sort_index().items()),
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


def check_new_obs_column(adata: AnnData, key: str, name: str) -> None:
    """Check that ``adata.obs`` has no column ``key`` yet.

    Parameters
    ----------
    adata
        The input.
    key
        Column that the output will add.
    name
        Argument that gave ``key``, for the message.

    Raises
    ------
    ValueError
        If the column exists.
    """
    if key in adata.obs:
        raise ValueError(
            f"adata.obs already has a column {key!r}; pass another {name} or drop the column first"
        )


def check_labels(adata: AnnData, key: str, name: str) -> pd.Categorical:
    """Check that ``adata.obs[key]`` holds labels for every cell; return them.

    Parameters
    ----------
    adata
        The input.
    key
        Column of ``adata.obs``.
    name
        Argument that gave ``key``, for the message.

    Returns
    -------
    pandas.Categorical
        The labels, unused categories removed and category names converted to strings.

    Raises
    ------
    KeyError
        If the column does not exist.
    ValueError
        If a label is missing.
    """
    if key not in adata.obs:
        raise KeyError(
            f"{name} {key!r} is not a column of adata.obs (columns: "
            f"{list(adata.obs.columns)}); pass the column that holds the labels"
        )
    column = adata.obs[key]
    if column.isna().any():
        raise ValueError(f"adata.obs[{key!r}] has missing values; label or drop those cells")
    labels = pd.Categorical(column).remove_unused_categories()
    return labels.rename_categories([str(name) for name in labels.categories])


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
