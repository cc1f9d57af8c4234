"""The held-out ELBO against the number of clusters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes

from cgmvae.pl._axes import finish, panels


def n_clusters_selection(
    table: pd.DataFrame,
    *,
    ax: Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
) -> list[Axes] | None:
    """Plot :func:`~cgmvae.select_n_clusters`'s table: held-out ELBO and clusters in use.

    Parameters
    ----------
    table
        The DataFrame :func:`~cgmvae.select_n_clusters` returns.
    ax
        Two axes to draw on; ``None`` makes a figure.
    show
        Show the figure; ``None``: on an interactive backend, not when drawing to files.
    save
        File to save the picture to.

    Returns
    -------
    list of matplotlib.axes.Axes, or None
        Unless the figure was shown, left: mean held-out ELBO per cell ± one standard
        error, the best value dashed, the chosen K marked. Right: clusters holding ≥ 1 % of
        the held-out cells.
    """
    missing = {"heldout_elbo", "standard_error", "clusters_used", "chosen"} - set(table.columns)
    if missing:
        raise ValueError(
            f"table lacks the columns {sorted(missing)}; pass the DataFrame that "
            "cgmvae.select_n_clusters returns."
        )
    ks, chosen = table.index.to_numpy(), table.index[table["chosen"]]
    axes, new_figure = panels(ax, 2, (4.0, 3.2), "n_clusters_selection")
    elbo_ax, used_ax = axes
    elbo_ax.errorbar(
        ks, table["heldout_elbo"], yerr=table["standard_error"], marker="o", capsize=3
    )
    elbo_ax.axhline(table["heldout_elbo"].max(), color="grey", linestyle="--", linewidth=1)
    elbo_ax.plot(chosen, table.loc[chosen, "heldout_elbo"], "r*", markersize=14,
                 label=f"chosen K = {chosen[0]}")  # fmt: skip
    elbo_ax.set(xlabel="n_clusters", ylabel="held-out ELBO per cell", title="held-out ELBO")
    elbo_ax.legend()
    used_ax.plot(ks, table["clusters_used"], marker="o")
    used_ax.plot(ks, ks, color="grey", linestyle="--", linewidth=1, label="all clusters")
    used_ax.set(xlabel="n_clusters", ylabel="clusters with ≥ 1 % of cells", title="clusters used")
    used_ax.legend()
    return finish(axes, new_figure, show, save)
