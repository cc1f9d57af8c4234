"""Grids of images (MNIST digits, generated samples per cluster)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData


def image_grid(
    images: AnnData | np.ndarray,
    image_shape: tuple[int, int] | None = None,
    rows: str | np.ndarray | None = None,
    n_per_row: int = 10,
    path: str | Path | None = None,
) -> plt.Figure:
    """Draw flattened images as a grid, optionally one row per group.

    Parameters
    ----------
    images
        Observations × pixels, or an AnnData holding them in ``.X`` (its
        ``.uns["image_shape"]`` is used when ``image_shape`` is not given).
    image_shape
        Height and width of one image; default: square.
    rows
        Group of each observation (or an ``.obs`` column name): one row per group, its first
        ``n_per_row`` observations. ``None`` fills rows in order.
    n_per_row
        Images per row.
    path
        Where to save the picture; ``None`` only returns the figure.

    Returns
    -------
    matplotlib.figure.Figure
        The grid, each row labelled with its group.
    """
    pixels, groups = _pixels_and_groups(images, rows)
    shape = image_shape or _image_shape(images, pixels.shape[1])
    names = list(dict.fromkeys(groups)) if groups is not None else None
    n_rows = len(names) if names else int(np.ceil(len(pixels) / n_per_row))
    fig, axes = plt.subplots(
        n_rows, n_per_row, figsize=(n_per_row * 0.8, n_rows * 0.8), squeeze=False
    )
    for row, row_axes in enumerate(axes):
        members = (
            np.flatnonzero(groups == names[row])[:n_per_row]
            if names
            else np.arange(row * n_per_row, min((row + 1) * n_per_row, len(pixels)))
        )
        for col, ax in enumerate(row_axes):
            ax.axis("off")
            if col < len(members):
                ax.imshow(pixels[members[col]].reshape(shape), cmap="gray_r", vmin=0, vmax=1)
        if names:
            row_axes[0].set_title(str(names[row]), fontsize=7, loc="left")
    fig.tight_layout(pad=0.2)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _pixels_and_groups(images, rows) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(images, AnnData):
        pixels = images.X.toarray() if hasattr(images.X, "toarray") else np.asarray(images.X)
        if isinstance(rows, str):
            rows = images.obs[rows].astype(str).to_numpy()
    else:
        pixels = np.asarray(images)
    if pixels.ndim != 2:
        raise ValueError(f"Expected observations × pixels, got shape {pixels.shape}.")
    return pixels, None if rows is None else np.asarray(rows)


def _image_shape(images, n_pixels: int) -> tuple[int, int]:
    if isinstance(images, AnnData) and "image_shape" in images.uns:
        return tuple(int(v) for v in images.uns["image_shape"])
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ValueError(f"{n_pixels} pixels are not a square image; pass image_shape=(h, w).")
    return side, side
