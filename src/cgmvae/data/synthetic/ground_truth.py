"""The ground truth of synthetic data: one ``.uns`` scheme and one API for every generator.

:func:`~cgmvae.data.simulate` and :func:`~cgmvae.data.add_condition_effect` both store
their truth in ``adata.uns["ground_truth"]`` (:data:`GROUND_TRUTH_KEY`), a dict that
h5ad files can hold, with the same fields for what they share:

- ``generator``: the function that made the data (``"simulate"`` or
  ``"add_condition_effect"``);
- ``params``: its scalar arguments;
- ``group_key`` and ``condition_key``: the ``.obs`` columns with each cell's group (cluster
  or cell type) and condition;
- ``group_names`` (n_groups,) and ``condition_names`` (n_conditions,): their categories, in
  order;
- ``reference_condition``: the condition without an effect (the first one);
- ``log_fold_changes``: (n_groups, n_conditions, n_vars) float64, the true natural-log fold
  change of each gene's expected mean count in each group, each condition versus the
  reference (zero for the reference);
- ``true_means``: (n_groups, n_conditions, n_vars) expected expression fractions, only where
  the generator knows them (:func:`~cgmvae.data.simulate`);
- a dict named after the generator (``truth[truth["generator"]]``) with what only that
  generator has.

:func:`true_log_fold_change`, :func:`true_mean` and :func:`true_cell_means` read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from numpy.typing import ArrayLike

#: Key of the ground truth in ``adata.uns``.
GROUND_TRUTH_KEY = "ground_truth"

#: ``.uns`` keys of the ground truth written by earlier versions of cgmvae.
_LEGACY_KEYS = ("simulation", "semisynthetic")


def make_ground_truth(
    generator: str,
    params: Mapping[str, object],
    *,
    group_key: str,
    condition_key: str,
    group_names: Sequence[str],
    condition_names: Sequence[str],
    log_fold_changes: np.ndarray,
    extras: Mapping[str, object],
    true_means: np.ndarray | None = None,
) -> dict:
    """Return the ground truth of a generator in the shared scheme (see the module docstring).

    Parameters
    ----------
    generator
        Name of the generating function; also the name of the field holding ``extras``.
    params
        Its scalar arguments.
    group_key, condition_key
        ``.obs`` columns of the groups and conditions.
    group_names, condition_names
        Their categories, in order; the first condition is the reference.
    log_fold_changes
        (n_groups, n_conditions, n_vars) true log fold changes versus the reference.
    extras
        Fields only this generator has.
    true_means
        (n_groups, n_conditions, n_vars) expected expression fractions, if known.

    Returns
    -------
    dict
        The ground truth, to be stored as ``adata.uns[GROUND_TRUTH_KEY]``.

    Raises
    ------
    ValueError
        If the shapes of the arrays do not match the names.
    """
    shape = (len(group_names), len(condition_names))
    for name, array in (("log_fold_changes", log_fold_changes), ("true_means", true_means)):
        if array is not None and np.shape(array)[:2] != shape:
            raise ValueError(f"{name} has shape {np.shape(array)}, expected {shape} + (n_vars,)")
    truth = {
        "generator": generator,
        "params": dict(params),
        "group_key": group_key,
        "condition_key": condition_key,
        "group_names": np.array([str(name) for name in group_names], dtype=object),
        "condition_names": np.array([str(name) for name in condition_names], dtype=object),
        "reference_condition": str(condition_names[0]),
        "log_fold_changes": np.asarray(log_fold_changes, dtype=np.float64),
        generator: dict(extras),
    }
    if true_means is not None:
        truth["true_means"] = np.asarray(true_means, dtype=np.float64)
    return truth


def get_ground_truth(adata: AnnData) -> Mapping:
    """Return the ground truth of data made by a generator.

    Parameters
    ----------
    adata
        Output of :func:`~cgmvae.data.simulate` or :func:`~cgmvae.data.add_condition_effect`
        (or a subset or copy of it that kept ``.uns``).

    Returns
    -------
    Mapping
        ``adata.uns["ground_truth"]``.

    Raises
    ------
    KeyError
        If ``adata`` has no ground truth.
    """
    if GROUND_TRUTH_KEY in adata.uns:
        return adata.uns[GROUND_TRUTH_KEY]
    legacy = [key for key in _LEGACY_KEYS if key in adata.uns]
    hint = (
        f"; its .uns[{legacy[0]!r}] was written by an earlier cgmvae, make the data again"
        if legacy
        else ""
    )
    raise KeyError(
        f"adata.uns has no {GROUND_TRUTH_KEY!r} ground truth; make the data with "
        "cgmvae.data.simulate or cgmvae.data.add_condition_effect (and keep .uns when "
        f"subsetting or saving){hint}"
    )


def true_log_fold_change(
    adata: AnnData,
    group: int | str,
    condition: int | str | None = None,
    reference: int | str | None = None,
) -> np.ndarray:
    """Return the true log fold change of a condition versus a reference, within a group.

    The same for every generator: the natural-log fold change of each gene's expected mean
    count in cells of ``group``. For :func:`~cgmvae.data.simulate` (group: cluster) it is
    ``log(true_mean(group, condition) / true_mean(group, reference))``, which differs slightly
    from the drawn ``condition_log_fold_changes`` because fractions are renormalised; for
    :func:`~cgmvae.data.add_condition_effect` (group: cell type) it is the effect that was
    applied, zero for genes that do not respond and for unaffected types.

    Parameters
    ----------
    adata
        Output of a generator (or a subset or copy of it that kept ``.uns``).
    group
        Group (cluster or cell type) name or index.
    condition
        Condition name or index; default the only condition other than the reference
        (an error when there are more than two conditions).
    reference
        Reference condition name or index; default ``truth["reference_condition"]``.

    Returns
    -------
    numpy.ndarray
        (n_vars,) float64 natural-log fold changes.

    Raises
    ------
    KeyError
        If ``adata`` has no ground truth or a name is unknown.
    IndexError
        If an index is out of range.
    ValueError
        If ``condition`` is ``None`` and there are more than two conditions.
    """
    truth = get_ground_truth(adata)
    names = truth["condition_names"]
    g = _index(truth["group_names"], group, "group")
    if reference is None:
        reference = truth["reference_condition"]
    r = _index(names, reference, "condition")
    c = _other_condition(names, r) if condition is None else _index(names, condition, "condition")
    lfc = np.asarray(truth["log_fold_changes"][g], dtype=np.float64)
    return lfc[c] - lfc[r]


def true_mean(adata: AnnData, group: int | str, condition: int | str) -> np.ndarray:
    """Return the true expected expression fractions of one (group, condition) pair.

    Only for generators that know them (:func:`~cgmvae.data.simulate`).

    Parameters
    ----------
    adata
        Output of :func:`~cgmvae.data.simulate` (or a subset or copy that kept ``.uns``).
    group
        Group (cluster) name or index.
    condition
        Condition name or index.

    Returns
    -------
    numpy.ndarray
        (n_vars,) float64 fractions summing to 1; multiply by a library size for expected
        counts.

    Raises
    ------
    KeyError
        If ``adata`` has no ground truth or no true means, or a name is unknown.
    IndexError
        If an index is out of range.
    """
    truth = get_ground_truth(adata)
    means = _true_means(truth)
    g = _index(truth["group_names"], group, "group")
    c = _index(truth["condition_names"], condition, "condition")
    return np.array(means[g, c], dtype=np.float64)


def true_cell_means(adata: AnnData, condition: int | str | None = None) -> np.ndarray:
    """Return every cell's true expected expression fractions, optionally counterfactual.

    Only for generators that know them (:func:`~cgmvae.data.simulate`).

    Parameters
    ----------
    adata
        Output of :func:`~cgmvae.data.simulate` (any subset of its cells).
    condition
        If given, the fractions every cell would have in this condition (its group kept);
        else in its own condition.

    Returns
    -------
    numpy.ndarray
        Dense (n_obs, n_vars) float64; mind the memory for many cells.

    Raises
    ------
    KeyError
        If ``adata`` has no ground truth or no true means, or a name is unknown.
    ValueError
        If a cell's group or condition is not among the ground truth's names.
    """
    truth = get_ground_truth(adata)
    means = np.asarray(_true_means(truth), dtype=np.float64)
    g = _codes(adata.obs[truth["group_key"]], truth["group_names"])
    if condition is None:
        c = _codes(adata.obs[truth["condition_key"]], truth["condition_names"])
    else:
        c = np.full(adata.n_obs, _index(truth["condition_names"], condition, "condition"))
    return means[g, c]


def _true_means(truth: Mapping) -> np.ndarray:
    if "true_means" not in truth:
        raise KeyError(
            f"the ground truth of {truth['generator']} has no true means (expected "
            "expression fractions are known only for cgmvae.data.simulate); use "
            "true_log_fold_change"
        )
    return truth["true_means"]


def _other_condition(names: ArrayLike, reference: int) -> int:
    others = [i for i in range(len(names)) if i != reference]
    if len(others) != 1:
        raise ValueError(
            f"pass condition: there are {len(names)} conditions {[str(n) for n in names]}, "
            "so the one to compare with the reference is ambiguous"
        )
    return others[0]


def _index(names: ArrayLike, key: int | str, what: str) -> int:
    names = [str(name) for name in np.asarray(names)]
    if isinstance(key, str):
        if key not in names:
            raise KeyError(f"unknown {what} {key!r}; expected one of {names}")
        return names.index(key)
    if not -len(names) <= int(key) < len(names):
        raise IndexError(f"{what} index {key} out of range for {len(names)} {what}s")
    return int(key) % len(names)


def _codes(labels: pd.Series, names: ArrayLike) -> np.ndarray:
    codes = pd.Categorical(labels.astype(str), categories=[str(n) for n in np.asarray(names)])
    if np.any(codes.codes < 0):
        raise ValueError("labels not among the ground truth's names")
    return codes.codes.astype(np.int64)
