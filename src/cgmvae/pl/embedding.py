"""UMAP pictures of a model's latent space."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import scanpy as sc
from anndata import AnnData


def latent_umap(
    adata: AnnData,
    use_rep: str,
    color: list[str],
    path: str | Path | None = None,
    n_neighbors: int = 15,
    random_state: int = 0,
) -> plt.Figure:
    """Draw a scanpy UMAP of ``adata.obsm[use_rep]``, one panel per ``color`` key.

    The neighbour graph and UMAP are computed on a copy, so ``adata`` is not modified.

    Parameters
    ----------
    adata
        Data holding the latent in ``.obsm[use_rep]``.
    use_rep
        Key of the latent in ``.obsm`` (e.g. ``"X_cgmvae"``).
    color
        ``.obs`` columns to colour by.
    path
        Where to save the picture (PNG, PDF, ...); ``None`` only returns the figure.
    n_neighbors, random_state
        Passed to :func:`scanpy.pp.neighbors` and :func:`scanpy.tl.umap`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    view = AnnData(obs=adata.obs[color].copy(), obsm={use_rep: adata.obsm[use_rep]})
    sc.pp.neighbors(view, use_rep=use_rep, n_neighbors=n_neighbors, random_state=random_state)
    sc.tl.umap(view, random_state=random_state)
    fig, axes = plt.subplots(1, len(color), figsize=(5.5 * len(color), 4.5), squeeze=False)
    for ax, key in zip(axes[0], color, strict=True):
        sc.pl.umap(view, color=key, ax=ax, show=False, title=key, frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
