"""Cluster composition: how the learned clusters divide known groups."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from anndata import AnnData


def cluster_composition(
    adata: AnnData, cluster_key: str, label_key: str, path: str | Path | None = None
) -> plt.Figure:
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
    path
        Where to save the picture; ``None`` only returns the figure.

    Returns
    -------
    matplotlib.figure.Figure
        The heat map, each cell annotated with its fraction.

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
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n_cols, 1.0 + 0.45 * n_rows))
    image = ax.imshow(table.to_numpy(), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), value in pd.DataFrame(table.to_numpy()).stack().items():
        if value >= 0.01:
            color = "white" if value > 0.6 else "black"
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n_cols), [str(name) for name in table.columns], rotation=90)
    ax.set_yticks(range(n_rows), [str(name) for name in table.index])
    ax.set_xlabel(cluster_key)
    ax.set_ylabel(label_key)
    fig.colorbar(image, ax=ax, label=f"fraction of the {label_key} group")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
