"""Grids of images (MNIST digits, generated samples per cluster)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes

from cgmvae.pl._axes import finish, panels


def image_grid(
    images: AnnData | np.ndarray,
    image_shape: tuple[int, int] | None = None,
    rows: str | np.ndarray | None = None,
    n_per_row: int = 10,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes | None:
    """Draw flattened images as one mosaic, optionally one row per group.

    Parameters
    ----------
    images
        Observations × pixels, or an AnnData holding them in ``.X`` (its
        ``.uns["image_shape"]`` is used when ``image_shape`` is not given).
    image_shape
        Height and width of one image; default: square.
    rows
        Group of each observation (or an ``.obs`` column name): one row per group, its first
        ``n_per_row`` observations, labelled with the group. ``None`` fills rows in order.
    n_per_row
        Images per row.
    ax
        Axes to draw the mosaic on; ``None`` makes a figure.
    show
        Show the figure; ``None``: on an interactive backend, not when drawing to files.
    save
        File to save the picture to.

    Returns
    -------
    matplotlib.axes.Axes or None
        The mosaic (one image, one pixel of background between images), unless shown.
    """
    pixels, groups = _pixels_and_groups(images, rows)
    height, width = image_shape or _image_shape(images, pixels.shape[1])
    if groups is not None:
        names = list(dict.fromkeys(groups))
        members = [np.flatnonzero(groups == name)[:n_per_row] for name in names]
    else:
        names = None
        starts = range(0, len(pixels), n_per_row)
        members = [np.arange(start, min(start + n_per_row, len(pixels))) for start in starts]
    step_y, step_x = height + 1, width + 1
    mosaic = np.full((len(members) * step_y - 1, n_per_row * step_x - 1), np.nan)
    for row, indices in enumerate(members):
        for col, index in enumerate(indices):
            top, left = row * step_y, col * step_x
            mosaic[top : top + height, left : left + width] = pixels[index].reshape(height, width)
    size = (n_per_row * 0.8, len(members) * 0.8)
    axes, new_figure = panels(ax, 1, size, "image_grid")
    axes[0].imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_xticks([])
    centres = [row * step_y + height / 2 for row in range(len(members))]
    axes[0].set_yticks(centres if names else [], [str(name) for name in names or []])
    axes[0].tick_params(length=0, labelsize=7)
    for spine in axes[0].spines.values():
        spine.set_visible(False)
    return finish(axes, new_figure, show, save)


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
