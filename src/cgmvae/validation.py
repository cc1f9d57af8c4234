"""Checks of user input that fail early with a message naming the problem and the fix."""

from __future__ import annotations

import difflib
import warnings

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from cgmvae.nn.likelihood import COUNT_LIKELIHOODS, check_likelihood

POSITIVE_INT_PARAMS = ("n_latent", "n_hidden", "n_layers", "n_clusters", "n_mc_samples")
NON_NEGATIVE_PARAMS = ("beta", "beta_y", "free_bits", "noise_sd")


def check_model_params(**params) -> None:
    """Raise ``ValueError`` for hyper-parameters outside their valid range."""
    check_likelihood(params.get("likelihood", "gaussian"))
    for name in POSITIVE_INT_PARAMS:
        value = params.get(name)
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    for name in NON_NEGATIVE_PARAMS:
        value = params.get(name)
        if value is not None and not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}.")
    dropout = params.get("dropout_rate", 0.0)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout!r}.")


def _values(data) -> np.ndarray:
    return data.data if sp.issparse(data) else np.asarray(data)


def check_values_for_likelihood(data, likelihood: str) -> None:
    """Check registered data against the likelihood's support.

    Raises ``ValueError`` for NaN/inf, negative values with a count likelihood, or values
    outside [0, 1] with ``"bernoulli"``; warns when a count likelihood sees non-integers.
    """
    values = _values(data)
    if values.size and not np.isfinite(values).all():
        raise ValueError(
            "The registered data contain NaN or infinite values. Remove or impute them "
            "(e.g. np.nan_to_num) before setup_anndata."
        )
    if likelihood in COUNT_LIKELIHOODS:
        if values.size and values.min() < 0:
            raise ValueError(
                f"likelihood={likelihood!r} needs non-negative counts, but the registered "
                "data have negative values. Register the raw counts (setup_anndata(layer=...)) "
                "or use likelihood='gaussian' for scaled data."
            )
        if values.size and not np.allclose(values, np.round(values)):
            warnings.warn(
                f"likelihood={likelihood!r} expects integer counts but the registered data "
                "have non-integer values; register raw counts with setup_anndata(layer=...).",
                UserWarning,
                stacklevel=3,
            )
    if likelihood == "bernoulli" and values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            "likelihood='bernoulli' needs values in [0, 1], but the registered data go from "
            f"{values.min():g} to {values.max():g}. Rescale them (e.g. pixels / 255)."
        )


def _close_matches(key: str, options) -> str:
    matches = difflib.get_close_matches(str(key), [str(o) for o in options], n=3, cutoff=0.5)
    return f" Did you mean {', '.join(map(repr, matches))}?" if matches else ""


def check_obs_key(adata: AnnData, key: str | None, argument: str) -> None:
    """Raise ``KeyError`` naming ``argument`` when ``key`` is not an ``.obs`` column."""
    if key is not None and key not in adata.obs.columns:
        raise KeyError(
            f"{argument}={key!r} is not a column of adata.obs.{_close_matches(key, adata.obs)}"
            f" Available columns: {', '.join(map(str, adata.obs.columns)) or 'none'}."
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
