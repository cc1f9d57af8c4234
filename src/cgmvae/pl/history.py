"""Training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes

from cgmvae.pl._axes import finish, panels

CURVES = ("elbo", "reconstruction_loss", "kl_z", "kl_y", "cluster_usage", "kl_weight")


def training_history(
    history: dict[str, pd.DataFrame],
    *,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Axes | list[Axes] | None:
    """Plot the per-epoch loss terms of ``model.history`` (train and validation).

    Parameters
    ----------
    history
        ``model.history``: a dict of one-column DataFrames indexed by epoch.
    ax
        Axes to draw on, one per logged quantity; ``None`` makes a figure.
    show
        Show the figure; ``None``: on an interactive backend, not when drawing to files.
    save
        File to save the picture to.

    Returns
    -------
    matplotlib.axes.Axes or list of them, or None
        One panel per logged quantity, unless the figure was shown.
    """
    names = [name for name in CURVES if any(key.startswith(name) for key in history)]
    axes, new_figure = panels(ax, len(names), (3.2, 3.0), "training_history")
    for ax, name in zip(axes, names, strict=True):
        for key in (name, f"{name}_train", f"{name}_validation"):
            if key in history:
                series = history[key].iloc[:, 0].dropna()
                ax.plot(series.index, series.values, label=key.removeprefix(name).strip("_"))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if len(ax.lines) > 1:
            ax.legend()
    return finish(axes, new_figure, show, save)
