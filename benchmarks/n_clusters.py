"""Choosing K: the held-out ELBO of the default CGMVAE over a range of K, on PBMC data.

Protocol (issue 13): on the data sets of ``clustering.py`` (PBMC 68k-reduced with its 10
``bulk_labels``, PBMC 3k with 8 marker-gene types), :func:`cgmvae.select_n_clusters` trains
one default CGMVAE per K in ``--ks`` on the same 90 % of the cells and scores the other 10 %
by their ELBO; it picks the smallest K within one standard error of the best. Each model's
clusters on all cells are also scored (ARI) against the reference labels, to show whether
the held-out likelihood and the reference agree. One seed per data set (``--seed``).

Writes ``benchmarks/results/n_clusters.{csv,md}`` and ``n_clusters_<data>.png`` (the
package's :func:`cgmvae.pl.n_clusters_selection` picture).

Usage: ``python benchmarks/n_clusters.py [--ks 4 6 8 10 12 14] [--data pbmc68k pbmc3k]``
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from cgmvae import CGMVAE, select_n_clusters
from cgmvae.metrics import cluster_scores
from cgmvae.pl import n_clusters_selection

from clustering import QUIET, TASKS
from harness import RESULTS, write_results


def score_task(name: str, ks: list[int], seed: int) -> pd.DataFrame:
    """The selection table of one data set, with each K's ARI against the reference."""
    task = TASKS[name]()
    adata = task.adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts")
    table, models = select_n_clusters(adata, ks, seed=seed, train_kwargs=QUIET, return_models=True)
    scored = task.labels.notna().to_numpy()
    table["ari"] = [
        cluster_scores(task.labels[scored], models[k].get_cluster_assignments()[scored])["ari"]
        for k in table.index
    ]
    n_clusters_selection(table, show=False, save=RESULTS / f"n_clusters_{name}.png")
    return table.reset_index().assign(data=name, reference_k=task.n_clusters, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14])
    parser.add_argument("--data", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    tables = [score_task(name, args.ks, args.seed) for name in args.data]
    table = pd.concat(tables, ignore_index=True)
    minutes = (time.perf_counter() - start) / 60
    print(table.round(3).to_string())
    rows = [
        [row.data, str(row.n_clusters), f"{row.heldout_elbo:.2f} ± {row.standard_error:.2f}",
         str(row.clusters_used), f"{row.ari:.3f}",
         "**chosen**" if row.chosen else "",
         "reference K" if row.n_clusters == row.reference_k else ""]
        for row in table.itertuples()
    ]  # fmt: skip
    best_ari = table.loc[table.groupby("data")["ari"].idxmax().to_numpy()]
    best_k = dict(zip(best_ari.data, best_ari.n_clusters, strict=True))
    print("K of the best ARI per data set:", best_k)
    write_results(
        "n_clusters", table,
        f"Choosing K by the held-out ELBO (default CGMVAE, 10 % held out, seed {args.seed})",
        rows, ["data", "K", "held-out ELBO ± SE", "clusters used", "ARI", "chosen", ""],
        f"python benchmarks/n_clusters.py --ks {' '.join(map(str, args.ks))} "
        f"--data {' '.join(args.data)}", minutes,
    )  # fmt: skip
    np.testing.assert_equal(int(table["chosen"].sum()), len(args.data))


if __name__ == "__main__":
    main()
