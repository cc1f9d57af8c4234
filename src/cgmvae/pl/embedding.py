"""UMAP pictures of a model's latent space."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import scanpy as sc
from anndata import AnnData
from matplotlib.axes import Axes

from cgmvae.cached_umap import quiet_numba_cache, umap_class
from cgmvae.pl._axes import finish, panels

#: Up to this many cells the neighbour graph is exact (scikit-learn by brute force, 3 s at
#: 50,000 cells of a 10-dimensional latent); above, scanpy's default search, pynndescent,
#: whose ``nn_descent`` numba compiles again in every process (about 10 s).
EXACT_NEIGHBOURS_UP_TO = 50_000


def latent_umap(
    adata: AnnData,
    use_rep: str,
    color: list[str],
    *,
    key_added: str | None = None,
    n_neighbors: int = 15,
    random_state: int = 0,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes | list[Axes] | None:
    """Compute a scanpy UMAP of ``adata.obsm[use_rep]`` and draw it, one panel per ``color``.

    The neighbour graph and the UMAP are written into ``adata`` under their own keys, so
    that they do not replace scanpy's defaults (``.uns["neighbors"]``, ``.obsm["X_umap"]``)
    and can be reused: ``.uns["<key>_neighbors"]`` with ``.obsp["<key>_neighbors_distances"]``
    and ``.obsp["<key>_neighbors_connectivities"]``, and ``.obsm["X_<key>_umap"]``, where
    ``<key>`` is ``key_added`` or ``use_rep`` without its ``X_``. scanpy may also store the
    colours of categorical columns in ``.uns["<column>_colors"]``. Up to
    :data:`EXACT_NEIGHBOURS_UP_TO` cells the neighbours are found exactly (no compiling).

    Parameters
    ----------
    adata
        Data holding the latent in ``.obsm[use_rep]``.
    use_rep
        Key of the latent in ``.obsm`` (e.g. ``"X_cgmvae"``).
    color
        ``.obs`` columns to colour by.
    key_added
        Name of the neighbours and UMAP written; default ``use_rep`` without ``"X_"``.
    n_neighbors, random_state
        Passed to :func:`scanpy.pp.neighbors` and :func:`scanpy.tl.umap`.
    ax
        Axes to draw on, one per ``color`` key; ``None`` makes a figure.
    show
        Show the figure; ``None``: on an interactive backend (a notebook), not when drawing to
        files only.
    save
        File to save the picture to (PNG, PDF, ...).

    Returns
    -------
    matplotlib.axes.Axes or list of them, or None
        The panel(s), unless the figure was shown.
    """
    key = key_added or use_rep.removeprefix("X_")
    neighbors_key, basis = f"{key}_neighbors", f"X_{key}_umap"
    umap_class()  # import umap-learn with numba's cache before scanpy does
    with quiet_numba_cache():
        sc.pp.neighbors(
            adata, use_rep=use_rep, n_neighbors=n_neighbors, random_state=random_state,
            key_added=neighbors_key, transformer=neighbour_search(adata.n_obs),
        )  # fmt: skip
        sc.tl.umap(adata, random_state=random_state, neighbors_key=neighbors_key, key_added=basis)
    axes, new_figure = panels(ax, len(color), (5.5, 4.5), "latent_umap")
    for panel, column in zip(axes, color, strict=True):
        sc.pl.embedding(
            adata, basis=basis, color=column, ax=panel, show=False, title=column, frameon=False
        )
    return finish(axes, new_figure, show, save)


def neighbour_search(n_obs: int) -> str | None:
    """Return scanpy's ``transformer`` for ``n_obs`` cells: exact up to 50,000 cells.

    Below 8,192 cells scanpy searches exactly anyway, so the graph is the one it would build.
    """
    return "sklearn" if n_obs <= EXACT_NEIGHBOURS_UP_TO else None
