"""Unsupervised clustering of MNIST / Fashion-MNIST test images with a GMVAE at its defaults.

Protocol (issue 13): the 10 000 test images of each data set, pixels in [0, 1];
``GMVAE(adata, n_clusters=10, likelihood="bernoulli").train(max_epochs=100)`` with every other
setting at its default, CPU; clusters = argmax q(y | x). Hungarian accuracy (1-to-1,
K = 10), NMI and ARI against the classes, mean ± std and min over ``--seeds`` (default 5);
k-means on the pixels (10 restarts) as the baseline of the same run. ``--ablation`` adds the
previous design (one Gaussian per cluster placed by k-means) at the same budget. About 3.5
minutes per model on a 2-core CPU. Results to ``benchmarks/results/image_clustering.{csv,json,md}``
(overwritten, never merged).

Usage: ``python benchmarks/image_clustering.py [--seeds 5] [--data mnist fashion_mnist]
[--max-epochs 100] [--ablation]``
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import scvi
from sklearn.cluster import KMeans

from cgmvae import GMVAE
from cgmvae.data import fashion_mnist, mnist
from cgmvae.metrics import cluster_scores

from harness import write_results

LOADERS = {"mnist": mnist, "fashion_mnist": fashion_mnist}
DESIGNS = {
    "GMVAE (defaults)": ({}, {}),
    "GMVAE, 1 Gaussian per cluster, k-means placement (previous default)": (
        {"components_per_cluster": 1},
        {"cluster_placement": "kmeans"},
    ),
}


def gmvae_scores(images, seed: int, max_epochs: int, design: str) -> dict:
    model_kwargs, train_kwargs = DESIGNS[design]
    adata = images.copy()
    scvi.settings.seed = seed
    GMVAE.setup_anndata(adata)
    model = GMVAE(adata, n_clusters=10, likelihood="bernoulli", **model_kwargs)
    start = time.perf_counter()
    model.train(
        max_epochs=max_epochs,
        **train_kwargs,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    seconds = time.perf_counter() - start
    scores = cluster_scores(adata.obs["label"], model.get_cluster_assignments())
    return scores | {"method": design, "seed": seed, "seconds": round(seconds, 1)}


def kmeans_scores(images, seed: int) -> dict:
    clusters = KMeans(10, n_init=10, random_state=seed).fit_predict(images.X)
    return cluster_scores(images.obs["label"], clusters) | {
        "method": "k-means on pixels",
        "seed": seed,
    }


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    grouped = table.groupby(["data", "method"], sort=False)
    summary = grouped[["acc", "nmi", "ari"]].agg(["mean", "std"])
    summary[("acc", "min")] = grouped["acc"].min()
    summary[("seeds", "n")] = grouped["acc"].size()
    summary[("seconds", "mean")] = grouped["seconds"].mean()
    return summary


def table_rows(summary: pd.DataFrame) -> list[list[str]]:
    rows = []
    for (data, method), row in summary.iterrows():
        std, seconds = row[("acc", "std")], row[("seconds", "mean")]
        rows.append([
            data, method, str(int(row[("seeds", "n")])),
            f"{row[('acc', 'mean')]:.3f}" + ("" if pd.isna(std) else f" ± {std:.3f}"),
            f"{row[('acc', 'min')]:.3f}", f"{row[('nmi', 'mean')]:.3f}",
            f"{row[('ari', 'mean')]:.3f}", "" if pd.isna(seconds) else f"{seconds:.0f}",
        ])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--data", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--ablation", action="store_true")
    args = parser.parse_args()
    designs = list(DESIGNS) if args.ablation else list(DESIGNS)[:1]
    start, rows = time.perf_counter(), []
    for data in args.data:
        images = LOADERS[data]("test")
        rows.append(kmeans_scores(images, 0) | {"data": data})
        print(rows[-1], flush=True)
        for design in designs:
            for seed in range(args.seeds):
                rows.append(gmvae_scores(images, seed, args.max_epochs, design) | {"data": data})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = summarise(table)
    minutes = (time.perf_counter() - start) / 60
    print(summary.round(3).to_string())
    flags = f"--seeds {args.seeds} --max-epochs {args.max_epochs}"
    flags += " --ablation" if args.ablation else ""
    records = {
        f"{data} | {method}": {
            f"{metric}_{stat}": round(float(value), 4)
            for (metric, stat), value in row.items()
            if pd.notna(value)
        }
        for (data, method), row in summary.iterrows()
    }
    write_results(
        "image_clustering", table,
        f"Image clustering (10 000 test images, {args.max_epochs} epochs, CPU)",
        table_rows(summary),
        ["data", "method", "seeds", "ACC mean ± std", "ACC min", "NMI", "ARI", "s / model"],
        f"python benchmarks/image_clustering.py {flags}", minutes, records,
    )  # fmt: skip


if __name__ == "__main__":
    main()
