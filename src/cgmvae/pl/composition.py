"""Cluster composition: how the learned clusters divide known groups."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from cgmvae.pl._axes import finish, panels


def cluster_composition(
    adata: AnnData,
    cluster_key: str,
    label_key: str,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes | None:
    """Draw a heat map of the fraction of each known group's cells in each cluster.

    Parameters
    ----------
    adata
        Data with both columns in ``.obs``.
    cluster_key
        Column of learned clusters (e.g. ``"gmvae_cluster"``), the heat map's columns.
    label_key
        Column of known groups (cell types, digits, a condition), its rows; each row sums
        to 1.
    ax
        Axes to draw on; ``None`` makes a figure sized to the table.
    show
        Show the figure; ``None``: on an interactive backend, not when drawing to files.
    save
        File to save the picture to.

    Returns
    -------
    matplotlib.axes.Axes or None
        The heat map, each cell annotated with its fraction, unless it was shown.

    Raises
    ------
    KeyError
        If a column is not in ``adata.obs``.
    """
    missing = [key for key in (cluster_key, label_key) if key not in adata.obs]
    if missing:
        raise KeyError(f"No column {', '.join(map(repr, missing))} in adata.obs.")
    table = pd.crosstab(adata.obs[label_key], adata.obs[cluster_key], normalize="index")
    n_rows, n_cols = table.shape
    size = (1.0 + 0.55 * n_cols, 1.0 + 0.45 * n_rows)
    axes, new_figure = panels(ax, 1, size, "cluster_composition")
    ax = axes[0]
    image = ax.imshow(table.to_numpy(), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), value in pd.DataFrame(table.to_numpy()).stack().items():
        if value >= 0.01:
            color = "white" if value > 0.6 else "black"
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n_cols), [str(name) for name in table.columns], rotation=90)
    ax.set_yticks(range(n_rows), [str(name) for name in table.index])
    ax.set_xlabel(cluster_key)
    ax.set_ylabel(label_key)
    ax.figure.colorbar(image, ax=ax, label=f"fraction of the {label_key} group")
    return finish(axes, new_figure, show, save)
