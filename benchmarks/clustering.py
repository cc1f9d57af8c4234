"""Single-cell clustering: the default CGMVAE against scVI + Leiden and PCA + Leiden.

Protocol (issue 13): PBMC 68k-reduced (700 cells × 765 genes, counts recovered exactly),
scored against its ``bulk_labels`` (10 sorted cell types) with Hungarian ACC, NMI and ARI,
``--seeds`` seeds (default 5), all methods in the same run on the same cells:

- ``CGMVAE``: ``CGMVAE(adata, n_clusters=10)`` at its defaults, clusters = argmax q(y | x);
  (no condition here: the data have none, so this is the GMVAE path of the same class);
- ``scVI + Leiden``: ``scvi.model.SCVI`` at its defaults (same default epochs), then
  ``sc.pp.neighbors(use_rep="X_scVI")`` and Leiden;
- ``PCA + Leiden``: scanpy's standard path (normalise to 10⁴, log1p, 50 PCs, neighbours, Leiden).

Leiden's resolution is bisected until it returns exactly 10 clusters (the number of cell
types), so every method is scored at the same K. Needs ``pip install -e ".[benchmarks]"``
(igraph, leidenalg). Results (overwritten, never merged) to
``benchmarks/results/clustering.{csv,json,md}``.

Usage: ``python benchmarks/clustering.py [--seeds 5]``
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import scanpy as sc
import scvi

from cgmvae import CGMVAE
from cgmvae.data import pbmc68k_reduced
from cgmvae.metrics import cluster_scores
from cgmvae.train.placement import leiden_with_k

from harness import write_results

N_TYPES = 10
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def leiden_clusters(adata, n_clusters: int, seed: int) -> pd.Series:
    """Leiden clusters on ``adata``'s neighbour graph, resolution bisected to give K."""
    communities = leiden_with_k(adata, n_clusters, seed)
    if communities is None:
        raise RuntimeError(f"No Leiden resolution gave {n_clusters} clusters (seed {seed}).")
    return communities


def cgmvae_clusters(adata, seed: int) -> pd.Series:
    scvi.settings.seed = seed
    CGMVAE.setup_anndata(adata, layer="counts")
    model = CGMVAE(adata, n_clusters=N_TYPES)
    model.train(**QUIET)
    return pd.Series(model.get_cluster_assignments(), index=adata.obs_names)


def scvi_leiden_clusters(adata, seed: int) -> pd.Series:
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata, layer="counts")
    model = scvi.model.SCVI(adata, n_latent=10)
    model.train(**QUIET)
    adata.obsm["X_scVI"] = model.get_latent_representation()
    sc.pp.neighbors(adata, use_rep="X_scVI", random_state=seed)
    return leiden_clusters(adata, N_TYPES, seed)


def pca_leiden_clusters(adata, seed: int) -> pd.Series:
    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=50, random_state=seed)
    sc.pp.neighbors(adata, random_state=seed)
    return leiden_clusters(adata, N_TYPES, seed)


METHODS = {
    "CGMVAE (defaults)": cgmvae_clusters,
    "scVI + Leiden": scvi_leiden_clusters,
    "PCA + Leiden": pca_leiden_clusters,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    data = pbmc68k_reduced()
    start, rows = time.perf_counter(), []
    for seed in range(args.seeds):
        for method, cluster in METHODS.items():
            began = time.perf_counter()
            clusters = cluster(data.copy(), seed)
            scores = cluster_scores(data.obs["bulk_labels"], clusters)
            rows.append(scores | {"method": method, "seed": seed,
                                  "n_clusters": int(pd.Series(clusters).nunique()),
                                  "seconds": round(time.perf_counter() - began, 1)})  # fmt: skip
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    grouped = table.groupby("method", sort=False)
    summary = grouped[["acc", "nmi", "ari"]].agg(["mean", "std", "min"])
    minutes = (time.perf_counter() - start) / 60
    print(summary.round(3).to_string())
    rows = [
        [method, f"{row[('acc', 'mean')]:.3f}", f"{row[('nmi', 'mean')]:.3f}",
         f"{row[('ari', 'mean')]:.3f} ± {row[('ari', 'std')]:.3f}", f"{row[('ari', 'min')]:.3f}"]
        for method, row in summary.iterrows()
    ]  # fmt: skip
    records = {
        method: {f"{m}_{s}": round(float(v), 4) for (m, s), v in row.items()}
        for method, row in summary.iterrows()
    }
    write_results(
        "clustering", table,
        f"PBMC 68k-reduced vs bulk_labels (700 cells, K = {N_TYPES}, {args.seeds} seeds)",
        rows, ["method", "ACC", "NMI", "ARI mean ± std", "ARI min"],
        f"python benchmarks/clustering.py --seeds {args.seeds}", minutes, records,
    )  # fmt: skip


if __name__ == "__main__":
    main()
