"""Argument checks shared by the generators (:func:`simulate`, :func:`add_condition_effect`).

Every check raises with a message that names the argument, shows the value it got and,
where it helps, says what to change. Checks of numbers raise ``ValueError``; checks that a
key exists in an AnnData raise ``KeyError``. A few return the checked value converted
(names as strings, normalised proportions, counts as CSR).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from numpy.typing import ArrayLike


def check_count(name: str, value: int, *, minimum: int = 0) -> None:
    """Check that ``value`` is a whole number of at least ``minimum``.

    Parameters
    ----------
    name
        Argument name, for the message.
    value
        The value (an ``int``, a NumPy integer, or a float with an integer value).
    minimum
        Smallest allowed value.

    Raises
    ------
    ValueError
        If ``value`` is not a whole number or is below ``minimum``.
    """
    if not (_is_whole(value) and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, not {_show(value)}")


def check_positive(name: str, value: float, *, hint: str = "") -> None:
    """Check that ``value`` is a finite number > 0.

    Parameters
    ----------
    name
        Argument name, for the message.
    value
        The value.
    hint
        Appended to the message after ``"; "`` when not empty.

    Raises
    ------
    ValueError
        If ``value`` is not finite and positive.
    """
    if not (_is_real(value) and np.isfinite(value) and value > 0):
        message = f"{name} must be positive and finite, not {_show(value)}"
        raise ValueError(_message(message, hint))


def check_non_negative(name: str, value: float) -> None:
    """Check that ``value`` is a finite number >= 0.

    Parameters
    ----------
    name
        Argument name, for the message.
    value
        The value.

    Raises
    ------
    ValueError
        If ``value`` is not finite or is negative.
    """
    if not (_is_real(value) and np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, not {_show(value)}")


def check_fraction(name: str, value: float, *, strict: bool = False) -> None:
    """Check that ``value`` lies in [0, 1], or strictly between 0 and 1.

    Parameters
    ----------
    name
        Argument name, for the message.
    value
        The value.
    strict
        Whether 0 and 1 themselves are refused.

    Raises
    ------
    ValueError
        If ``value`` is outside the interval (NaN included).
    """
    if not _is_real(value):
        inside = False
    elif strict:
        inside = 0.0 < value < 1.0
    else:
        inside = 0.0 <= value <= 1.0
    if not inside:
        where = "strictly between 0 and 1" if strict else "in [0, 1]"
        raise ValueError(f"{name} must lie {where}, not {_show(value)}")


def check_distinct_names(names: Sequence[str], n: int, what: str) -> list[str]:
    """Check that there are ``n`` names and that they differ; return them as strings.

    Parameters
    ----------
    names
        The names.
    n
        How many there must be.
    what
        The argument(s) that gave them, for the message.

    Returns
    -------
    list of str
        The names, converted with ``str``.

    Raises
    ------
    ValueError
        If there are not ``n`` names or two are equal.
    """
    names = [str(name) for name in names]
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"{what} must be {n} distinct names, not {names}")
    return names


def check_proportions(proportions: ArrayLike | None, n: int, name: str) -> np.ndarray:
    """Check ``n`` non-negative weights with a positive sum; return them normalised.

    Parameters
    ----------
    proportions
        The weights, or ``None`` for equal proportions.
    n
        How many there must be.
    name
        Argument name, for the message.

    Returns
    -------
    numpy.ndarray
        (n,) float64 proportions summing to 1.

    Raises
    ------
    ValueError
        If the weights have the wrong length, a negative value or a sum of 0.
    """
    if proportions is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(proportions, dtype=np.float64)
    if p.shape != (n,) or not np.all(p >= 0) or not 0 < p.sum() < np.inf:
        raise ValueError(
            f"{name} must be {n} non-negative numbers with a positive sum, "
            f"not {_show(proportions)}"
        )
    return p / p.sum()


def check_dispersion(dispersion: float | ArrayLike, n_vars: int) -> np.ndarray:
    """Check negative binomial dispersions: one number, or one per gene, finite and >= 0.

    Parameters
    ----------
    dispersion
        A number or ``n_vars`` numbers.
    n_vars
        Number of genes.

    Returns
    -------
    numpy.ndarray
        (n_vars,) float64 dispersions, a new array.

    Raises
    ------
    ValueError
        If the shape does not fit or a value is negative or not finite.
    """
    phi = np.asarray(dispersion, dtype=np.float64)
    if phi.ndim > 1 or phi.size not in (1, n_vars):
        raise ValueError(
            f"dispersion must be one number or {n_vars} (one per gene), not shape {phi.shape}"
        )
    if np.any(phi < 0) or not np.all(np.isfinite(phi)):
        raise ValueError("dispersion must be finite and >= 0")
    return np.broadcast_to(phi, (n_vars,)).copy()


def check_enough_genes(
    needed: int, available: int, *, needed_for: str, available_as: str, hint: str
) -> None:
    """Check that enough genes are available for the requested effects.

    Parameters
    ----------
    needed
        Genes needed.
    available
        Genes available.
    needed_for
        What needs them, for the message.
    available_as
        Which genes count as available, for the message.
    hint
        What to change, for the message.

    Raises
    ------
    ValueError
        If ``needed > available``.
    """
    if needed > available:
        raise ValueError(
            f"{needed} genes are needed ({needed_for}), but only {available} are available "
            f"({available_as}); {hint}"
        )


def check_layer(adata: AnnData, layer: str | None, *, reserved: str) -> None:
    """Check that ``layer`` names an existing layer (``None``: ``.X``) other than ``reserved``.

    Parameters
    ----------
    adata
        The input.
    layer
        Layer name, or ``None`` for ``.X``.
    reserved
        A layer name the output uses for something else.

    Raises
    ------
    KeyError
        If the layer does not exist.
    ValueError
        If ``layer`` is ``reserved``.
    """
    if layer is not None and layer not in adata.layers:
        raise KeyError(
            f"layer {layer!r} is not in adata.layers (layers: {list(adata.layers)}); "
            "pass layer=None to read the counts from .X, or the name of the counts layer"
        )
    if layer == reserved:
        raise ValueError(f"layer must not be {reserved!r}: the output uses that name")


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


def check_subset(
    requested: Sequence[str] | str | None, names: Sequence[str], *, name: str, among: str
) -> np.ndarray:
    """Check that ``requested`` names are distinct members of ``names``; return their indices.

    Parameters
    ----------
    requested
        One name, several names, or ``None`` for all.
    names
        The names to choose among.
    name
        Argument that gave ``requested``, for the message.
    among
        What ``names`` are, for the message (e.g. ``"cell types of adata.obs['x']"``).

    Returns
    -------
    numpy.ndarray
        Sorted int64 indices into ``names``.

    Raises
    ------
    ValueError
        If a name is unknown or given twice.
    """
    names = list(names)
    if requested is None:
        return np.arange(len(names))
    chosen = [requested] if isinstance(requested, str) else [str(item) for item in requested]
    unknown = [item for item in chosen if item not in names]
    if unknown:
        raise ValueError(
            f"{name} {unknown} are not {among}; choose among {names}, or pass None for all"
        )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{name} has duplicates: {chosen}")
    return np.array(sorted(names.index(item) for item in chosen), dtype=np.int64)


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


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_whole(value: object) -> bool:
    return _is_real(value) and bool(np.isfinite(value)) and int(value) == value


def _show(value: object) -> str:
    """Return ``repr(value)``, with NumPy scalars shown as Python numbers (``1.5``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _message(text: str, hint: str) -> str:
    return f"{text}; {hint}" if hint else text
