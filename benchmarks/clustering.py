"""Single-cell clustering: the default CGMVAE against scVI + Leiden and PCA + Leiden.

Protocol (issue 13), two data sets, ``--seeds`` seeds each (default 5), all methods in the
same run on the same cells, scored with Hungarian ACC, NMI and ARI:

- ``pbmc68k``: PBMC 68k-reduced (700 cells × 765 genes, counts recovered exactly) against
  its ``bulk_labels`` (10 sorted cell types), K = 10;
- ``pbmc3k``: PBMC 3k after the usual quality control (200–2,500 genes, < 5 % mitochondrial
  counts, genes in ≥ 3 cells: 2,638 cells) and 2,000 highly variable genes (``seurat_v3`` on
  the counts), K = 8, against reference labels from marker genes (:func:`marker_labels`):
  every cell takes the cell type whose markers it expresses most, and only the cells whose
  best type leads the second by ≥ ``MARKER_MARGIN`` are scored (all cells are clustered).
  No clustering enters the reference, so it favours none of the methods.

Methods:

- ``CGMVAE``: ``CGMVAE(adata, n_clusters=10)`` at its defaults, clusters = argmax q(y | x);
  (no condition here: the data have none, so this is the GMVAE path of the same class);
- ``scVI + Leiden``: ``scvi.model.SCVI`` at its defaults (same default epochs), then
  ``sc.pp.neighbors(use_rep="X_scVI")`` and Leiden;
- ``PCA + Leiden``: scanpy's standard path (normalise to 10⁴, log1p, 50 PCs, neighbours, Leiden).

Leiden's resolution is bisected until it returns exactly K clusters (the number of cell
types), so every method is scored at the same K. Needs ``pip install -e ".[benchmarks]"``
(igraph, leidenalg). Results (overwritten, never merged) to
``benchmarks/results/clustering.{csv,json,md}``.

Usage: ``python benchmarks/clustering.py [--seeds 5] [--data pbmc68k pbmc3k]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scanpy as sc
import scvi
from anndata import AnnData

from cgmvae import CGMVAE
from cgmvae.data import pbmc3k, pbmc68k_reduced
from cgmvae.metrics import cluster_scores
from cgmvae.train.placement import leiden_with_k

from harness import write_results

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
MARKERS = {
    "CD4 T": ["IL7R", "CCR7", "LDHB", "CD3D"],
    "CD8 T": ["CD8A", "CD8B", "CD3D"],
    "NK": ["GNLY", "NKG7", "GZMB"],
    "B": ["MS4A1", "CD79A", "CD79B"],
    "CD14 monocyte": ["CD14", "LYZ", "S100A8"],
    "FCGR3A monocyte": ["FCGR3A", "MS4A7"],
    "dendritic": ["FCER1A", "CST3"],
    "megakaryocyte": ["PPBP", "PF4"],
}
MARKER_MARGIN = 0.5


@dataclass
class ClusteringTask:
    """Cells to cluster, K, and the reference labels (NaN: not scored)."""

    title: str
    adata: AnnData
    labels: pd.Series
    n_clusters: int


def marker_labels(adata: AnnData, margin: float = MARKER_MARGIN) -> pd.Series:
    """Each cell's cell type by known PBMC markers; NaN where no type clearly leads.

    A type's score is the mean of its markers' z-scored log-normalised expression (all genes,
    before any selection); a cell is labelled when its best score leads the second best by
    at least ``margin`` standard deviations.
    """
    normalised = sc.pp.normalize_total(adata, target_sum=1e4, inplace=False)["X"]
    genes = sorted({gene for markers in MARKERS.values() for gene in markers})
    columns = adata.var_names.get_indexer(genes)
    if (columns < 0).any():
        raise KeyError(f"Marker genes missing: {np.asarray(genes)[columns < 0].tolist()}")
    expression = pd.DataFrame(np.log1p(normalised[:, columns].toarray()), columns=genes)
    zscores = (expression - expression.mean()) / expression.std()
    scores = pd.DataFrame({name: zscores[genes].mean(1) for name, genes in MARKERS.items()})
    best_two = np.sort(scores.to_numpy(), axis=1)[:, -2:]
    labels = scores.idxmax(axis=1).where(best_two[:, 1] - best_two[:, 0] >= margin)
    return pd.Series(labels.to_numpy(), index=adata.obs_names, name="marker_type")


def pbmc68k_task() -> ClusteringTask:
    adata = pbmc68k_reduced()
    title = "PBMC 68k-reduced vs bulk_labels (700 cells)"
    return ClusteringTask(title, adata, adata.obs["bulk_labels"].astype(str), 10)


def pbmc3k_task() -> ClusteringTask:
    adata = pbmc3k()
    adata.var["mt"] = adata.var_names.str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    sc.pp.filter_cells(adata, min_genes=200)
    sc.pp.filter_genes(adata, min_cells=3)
    keep = (adata.obs["n_genes_by_counts"] < 2500) & (adata.obs["pct_counts_mt"] < 5)
    adata = adata[keep].copy()
    labels = marker_labels(adata)
    sc.pp.highly_variable_genes(
        adata, n_top_genes=2000, flavor="seurat_v3", layer="counts", subset=True
    )
    n_scored = int(labels.notna().sum())
    title = (
        f"PBMC 3k vs marker-gene labels ({adata.n_obs} cells clustered, {n_scored} scored: "
        f"margin {MARKER_MARGIN})"
    )
    return ClusteringTask(title, adata, labels, len(MARKERS))


TASKS = {"pbmc68k": pbmc68k_task, "pbmc3k": pbmc3k_task}


def leiden_clusters(adata, n_clusters: int, seed: int) -> pd.Series:
    """Leiden clusters on ``adata``'s neighbour graph, resolution bisected to give K."""
    communities = leiden_with_k(adata, n_clusters, seed)
    if communities is None:
        raise RuntimeError(f"No Leiden resolution gave {n_clusters} clusters (seed {seed}).")
    return communities


def cgmvae_clusters(adata, n_clusters: int, seed: int) -> pd.Series:
    scvi.settings.seed = seed
    CGMVAE.setup_anndata(adata, layer="counts")
    model = CGMVAE(adata, n_clusters=n_clusters)
    model.train(**QUIET)
    return pd.Series(model.get_cluster_assignments(), index=adata.obs_names)


def scvi_leiden_clusters(adata, n_clusters: int, seed: int) -> pd.Series:
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata, layer="counts")
    model = scvi.model.SCVI(adata, n_latent=10)
    model.train(**QUIET)
    adata.obsm["X_scVI"] = model.get_latent_representation()
    sc.pp.neighbors(adata, use_rep="X_scVI", random_state=seed)
    return leiden_clusters(adata, n_clusters, seed)


def pca_leiden_clusters(adata, n_clusters: int, seed: int) -> pd.Series:
    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=50, random_state=seed)
    sc.pp.neighbors(adata, random_state=seed)
    return leiden_clusters(adata, n_clusters, seed)


METHODS = {
    "CGMVAE (defaults)": cgmvae_clusters,
    "scVI + Leiden": scvi_leiden_clusters,
    "PCA + Leiden": pca_leiden_clusters,
}


def run_task(task: ClusteringTask, n_seeds: int) -> list[dict]:
    """Every method on ``task`` for ``n_seeds`` seeds, scored on the labelled cells."""
    scored = task.labels.notna().to_numpy()
    rows = []
    for seed in range(n_seeds):
        for method, cluster in METHODS.items():
            began = time.perf_counter()
            clusters = np.asarray(cluster(task.adata.copy(), task.n_clusters, seed))
            scores = cluster_scores(task.labels[scored], clusters[scored])
            rows.append(scores | {"data": task.title, "method": method, "seed": seed,
                                  "n_clusters": int(pd.Series(clusters).nunique()),
                                  "seconds": round(time.perf_counter() - began, 1)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", nargs="+", choices=list(TASKS), default=list(TASKS))
    args = parser.parse_args()
    start, tasks, rows = time.perf_counter(), {}, []
    for name in args.data:
        task = TASKS[name]()
        tasks[task.title] = task
        rows += run_task(task, args.seeds)
    table = pd.DataFrame(rows)
    grouped = table.groupby(["data", "method"], sort=False)
    summary = grouped[["acc", "nmi", "ari"]].agg(["mean", "std", "min"])
    minutes = (time.perf_counter() - start) / 60
    print(summary.round(3).to_string())
    rows = [
        [f"{data} K = {tasks[data].n_clusters}", method, f"{row[('acc', 'mean')]:.3f}",
         f"{row[('nmi', 'mean')]:.3f}", f"{row[('ari', 'mean')]:.3f} ± {row[('ari', 'std')]:.3f}",
         f"{row[('ari', 'min')]:.3f}"]
        for (data, method), row in summary.iterrows()
    ]  # fmt: skip
    records = {
        f"{data} | {method}": {f"{m}_{s}": round(float(v), 4) for (m, s), v in row.items()}
        for (data, method), row in summary.iterrows()
    }
    write_results(
        "clustering", table, f"Single-cell clusters against reference labels ({args.seeds} seeds)",
        rows, ["data", "method", "ACC", "NMI", "ARI mean ± std", "ARI min"],
        f"python benchmarks/clustering.py --seeds {args.seeds} --data {' '.join(args.data)}",
        minutes, records,
    )  # fmt: skip


if __name__ == "__main__":
    main()
