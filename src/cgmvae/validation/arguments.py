"""Checks of numbers and names passed as arguments: sizes, weights, fractions, choices.

A value of the wrong kind (``n_latent=2.5``, ``"16"``, ``True`` for a size; a string for a
weight) raises ``TypeError``; a value of the right kind outside its range raises
``ValueError``. Every message names the argument and shows the value it got.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike

from cgmvae.nn.likelihood import get_likelihood
from cgmvae.validation._format import _message, _show

POSITIVE_INT_PARAMS = (
    "components_per_cluster",
    "n_latent",
    "n_hidden",
    "n_layers",
    "n_clusters",
    "n_mc_samples",
)

NON_NEGATIVE_PARAMS = ("beta", "beta_y", "free_bits", "noise_sd")


def check_count(name: str, value: int, *, minimum: int = 0) -> None:
    """Check that ``value`` is an integer (``int`` or NumPy integer) of at least ``minimum``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (``2.5``, ``3.0``, ``"3"``, ``True``).
    ValueError
        ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{name} must be a whole number, got {_show(value)} ({type(value).__name__}); "
            f"pass an int such as {name}={max(minimum, 10)}."
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {_show(value)}")


def check_real(name: str, value: float) -> None:
    """Raise ``TypeError`` unless ``value`` is a real number (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {_show(value)} ({type(value).__name__}).")


def check_positive(name: str, value: float, *, hint: str = "") -> None:
    """Check that ``value`` is a finite number > 0; ``hint`` ends the message.

    Raises ``TypeError`` for a non-number, ``ValueError`` otherwise.
    """
    check_real(name, value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(_message(f"{name} must be positive and finite, not {_show(value)}", hint))


def check_non_negative(name: str, value: float) -> None:
    """Check that ``value`` is a finite number >= 0 (``TypeError`` for a non-number)."""
    check_real(name, value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, not {_show(value)}")


def check_fraction(name: str, value: float, *, strict: bool = False) -> None:
    """Check that ``value`` lies in [0, 1], or strictly between 0 and 1 (``strict``).

    Raises ``TypeError`` for a non-number, ``ValueError`` outside the interval (NaN too).
    """
    check_real(name, value)
    inside = 0.0 < value < 1.0 if strict else 0.0 <= value <= 1.0
    if not inside:
        where = "strictly between 0 and 1" if strict else "in [0, 1]"
        raise ValueError(f"{name} must lie {where}, not {_show(value)}")


def check_model_params(**params) -> None:
    """Check model hyper-parameters before anything is built.

    Raises
    ------
    TypeError
        A size that is not an integer (``n_latent=2.5``) or a weight that is not a number.
    ValueError
        An unknown likelihood, a size below 1, a negative or infinite weight, or a dropout
        rate outside [0, 1).
    """
    get_likelihood(params.get("likelihood", "gaussian"))
    for name in POSITIVE_INT_PARAMS:
        if params.get(name) is not None:
            check_count(name, params[name], minimum=1)
    for name in NON_NEGATIVE_PARAMS:
        if params.get(name) is not None:
            check_non_negative(name, params[name])
    dropout = params.get("dropout_rate", 0.0)
    check_real("dropout_rate", dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout!r}.")


def check_n_clusters(n_clusters: int, n_cells: int, what: str) -> None:
    """Raise ``ValueError`` if fewer than ``n_clusters`` cells are there to place them on."""
    if n_clusters > n_cells:
        raise ValueError(
            f"n_clusters={n_clusters} but {what} only {n_cells} cells; every cluster needs "
            f"cells to be placed on. Use n_clusters <= {n_cells} or more cells."
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
