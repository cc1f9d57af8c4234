"""Choosing the number of clusters by the held-out ELBO."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scvi
from anndata import AnnData

from cgmvae.models.cgmvae import CGMVAE
from cgmvae.models.cluster import ClusterMixin

logger = logging.getLogger(__name__)


def select_n_clusters(
    adata: AnnData,
    n_clusters: Sequence[int],
    model_cls: type[ClusterMixin] = CGMVAE,
    *,
    seed: int = 0,
    train_size: float = 0.9,
    model_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
    return_models: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[int, ClusterMixin]]:
    """Train one model per number of clusters and score each on the same held-out cells.

    Every model is trained with the same seed, so all of them hold out the same
    ``1 - train_size`` of the cells; each is scored by its ELBO per held-out cell. The
    chosen K is the smallest whose mean held-out ELBO is within one standard error of the
    best K's (the one-standard-error rule; the error is that of the per-cell differences
    to the best model, since all models see the same cells).

    The models are trained with one Gaussian per cluster (``components_per_cluster=1``)
    unless ``model_kwargs`` says otherwise: with M components per cluster the prior is a
    mixture of K·M Gaussians whose grouping into clusters the ELBO barely sees (on four
    simulated clusters, M = 4 gave K = 2 a held-out ELBO 0.3 nats per cell above K = 4).

    Parameters
    ----------
    adata
        AnnData set up with ``model_cls.setup_anndata``; it is not changed.
    n_clusters
        The numbers of clusters to compare, at least two distinct values ≥ 2.
    model_cls
        :class:`~cgmvae.GMVAE` or :class:`~cgmvae.CGMVAE`.
    seed
        ``scvi.settings.seed`` for every model: the same split and initial weights.
    train_size
        Fraction of cells each model trains on; the rest are scored.
    model_kwargs
        Passed to every model's constructor besides ``n_clusters``; default
        ``{"components_per_cluster": 1}``.
    train_kwargs
        Passed to every ``train`` call besides ``train_size``.
    return_models
        Also return the trained models, by K.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, dict)
        Indexed by ``n_clusters``: ``heldout_elbo`` (mean per held-out cell, higher is
        better), ``standard_error`` (of the difference to the best K), ``clusters_used``
        (clusters holding ≥ 1 % of the held-out cells) and ``chosen`` (one ``True``).
        ``attrs["n_clusters"]`` holds the chosen K. With ``return_models``, also a dict
        from K to its trained model.

    Examples
    --------
    >>> CGMVAE.setup_anndata(adata, layer="counts")
    >>> table = select_n_clusters(adata, [4, 6, 8, 10, 12])
    >>> model = CGMVAE(adata, n_clusters=table.attrs["n_clusters"])
    """
    candidates = _check_candidates(n_clusters, model_cls)
    for name, kwargs, owned in [("model_kwargs", model_kwargs, "n_clusters"),
                                ("train_kwargs", train_kwargs, "train_size")]:  # fmt: skip
        if owned in (kwargs or {}):
            raise ValueError(f"Pass {owned} to select_n_clusters itself, not in {name}.")
    if not 0 < train_size < 1:
        raise ValueError(
            f"train_size={train_size} leaves no held-out cells to score; pass a value in (0, 1)."
        )
    model_kwargs = {"components_per_cluster": 1, **(model_kwargs or {})}
    heldout, per_cell, used, models = None, {}, {}, {}
    for step, k in enumerate(candidates, start=1):
        logger.info(
            "Selecting K: training with n_clusters=%d (%d of %d).", k, step, len(candidates)
        )
        scvi.settings.seed = seed
        model = model_cls(adata, n_clusters=k, **model_kwargs)
        model.train(train_size=train_size, **(train_kwargs or {}))
        models[k] = model
        if heldout is None:
            heldout = np.sort(np.asarray(model.validation_indices))
        elif not np.array_equal(heldout, np.sort(np.asarray(model.validation_indices))):
            raise RuntimeError("The models held out different cells despite the same seed.")
        per_cell[k] = model.get_elbo(indices=heldout, return_mean=False).cpu().numpy()
        shares = np.bincount(model.get_cluster_assignments(indices=heldout), minlength=k)
        used[k] = int((shares >= 0.01 * len(heldout)).sum())
        logger.info("n_clusters=%d: held-out ELBO %.2f per cell.", k, per_cell[k].mean())
    table = _one_standard_error_table(per_cell, used)
    return (table, models) if return_models else table


def _check_candidates(n_clusters: Sequence[int], model_cls: type) -> list[int]:
    if not (isinstance(model_cls, type) and issubclass(model_cls, ClusterMixin)):
        raise TypeError(f"model_cls must be GMVAE or CGMVAE (a mixture model), not {model_cls!r}.")
    candidates = sorted({int(k) for k in n_clusters})
    if len(candidates) < 2 or candidates[0] < 2:
        raise ValueError(
            f"n_clusters={list(n_clusters)} must hold at least two distinct values >= 2 to "
            "compare, e.g. range(4, 15, 2)."
        )
    return candidates


def _one_standard_error_table(
    per_cell: dict[int, np.ndarray], used: dict[int, int]
) -> pd.DataFrame:
    means = pd.Series({k: values.mean() for k, values in per_cell.items()})
    best = per_cell[int(means.idxmax())]
    errors = pd.Series(
        {k: (values - best).std(ddof=1) / np.sqrt(len(best)) for k, values in per_cell.items()}
    )
    close = means >= means.max() - errors
    table = pd.DataFrame(
        {"heldout_elbo": means, "standard_error": errors, "clusters_used": pd.Series(used)}
    )
    table.index.name = "n_clusters"
    chosen = int(close[close].index.min())
    table["chosen"] = table.index == chosen
    table.attrs["n_clusters"] = chosen
    return table
