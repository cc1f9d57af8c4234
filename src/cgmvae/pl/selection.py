"""The held-out ELBO against the number of clusters."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def n_clusters_selection(table: pd.DataFrame, path: str | Path | None = None) -> plt.Figure:
    """Plot :func:`~cgmvae.select_n_clusters`'s table: held-out ELBO and clusters in use.

    Parameters
    ----------
    table
        The DataFrame :func:`~cgmvae.select_n_clusters` returns.
    path
        Where to save the picture; ``None`` only returns the figure.

    Returns
    -------
    matplotlib.figure.Figure
        Left: mean held-out ELBO per cell ± one standard error, the best value dashed, the
        chosen K marked. Right: clusters holding ≥ 1 % of the held-out cells.
    """
    missing = {"heldout_elbo", "standard_error", "clusters_used", "chosen"} - set(table.columns)
    if missing:
        raise ValueError(
            f"table lacks the columns {sorted(missing)}; pass the DataFrame that "
            "cgmvae.select_n_clusters returns."
        )
    ks, chosen = table.index.to_numpy(), table.index[table["chosen"]]
    fig, (elbo_ax, used_ax) = plt.subplots(1, 2, figsize=(8, 3.2))
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
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
