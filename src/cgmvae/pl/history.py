"""Training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

CURVES = ("elbo", "reconstruction_loss", "kl_z", "kl_y", "cluster_usage", "kl_weight")


def training_history(
    history: dict[str, pd.DataFrame], path: str | Path | None = None
) -> plt.Figure:
    """Plot the per-epoch loss terms of ``model.history`` (train and validation).

    Parameters
    ----------
    history
        ``model.history``: a dict of one-column DataFrames indexed by epoch.
    path
        Where to save the picture; ``None`` only returns the figure.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per logged quantity.
    """
    names = [name for name in CURVES if any(key.startswith(name) for key in history)]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for key in (name, f"{name}_train", f"{name}_validation"):
            if key in history:
                series = history[key].iloc[:, 0].dropna()
                ax.plot(series.index, series.values, label=key.removeprefix(name).strip("_"))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if len(ax.lines) > 1:
            ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
