"""Semi-supervised CGMVAE: cluster accuracy with 5 % of cells labelled vs none.

Simulator: 150 cells per cluster × 200 genes, 6 clusters with weak markers (log fold
change 0.75), 2 conditions. For each seed a new data set and a new label draw; CGMVAE trained for
200 epochs on CPU (about 15 s per model on one core). Reports Hungarian ACC / NMI / ARI,
mean ± std over the seeds, to ``benchmarks/results/semi_supervised.{json,csv}``.

Usage: ``python benchmarks/semi_supervised.py [--seeds 5] [--label-fraction 0.05]
[--lr-scale 0.1] [--lr-scale-at 0.4|none] [--name NAME]`` (the learning-rate step of
``train``, its defaults unless given; ``--name`` writes ``semi_supervised_NAME.*`` instead).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import scvi

from cgmvae import CGMVAE
from cgmvae.data import simulate
from cgmvae.metrics import cluster_scores

from harness import write_json

RESULTS = Path(__file__).parent / "results"
TRAIN = {"max_epochs": 200, "enable_progress_bar": False, "enable_model_summary": False}


def labelled_data(seed: int, fraction: float, n_clusters: int, marker_lfc: float):
    adata = simulate(
        counts_layer="counts",
        n_obs=150 * n_clusters, n_vars=200, n_clusters=n_clusters, n_conditions=2, seed=seed,
        marker_log_fold_change=marker_lfc,
    )  # fmt: skip
    labels = adata.obs["cluster"].astype(str).to_numpy().copy()
    labels[np.random.default_rng(seed).random(adata.n_obs) >= fraction] = "unknown"
    adata.obs["known"] = labels
    return adata


def run(seed: int, args: argparse.Namespace) -> list[dict]:
    rows, fraction = [], args.label_fraction
    for supervised in (False, True):
        adata = labelled_data(seed, fraction, args.n_clusters, args.marker_lfc)
        scvi.settings.seed = seed
        setup = {"labels_key": "known"} if supervised else {}
        CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition", **setup)
        model = CGMVAE(
            adata, n_clusters=args.n_clusters, classification_weight=args.classification_weight
        )
        model.train(**TRAIN, **step_arguments(args))
        scores = cluster_scores(adata.obs["cluster"], model.get_cluster_assignments())
        rows.append({"seed": seed, "labelled": fraction if supervised else 0.0, **scores})
        print(rows[-1], flush=True)
    return rows


def step_arguments(args: argparse.Namespace) -> dict:
    """The learning-rate step given on the command line (``train``'s defaults otherwise)."""
    given = {}
    if args.lr_scale is not None:
        given["lr_scale"] = args.lr_scale
    if args.lr_scale_at is not None:
        given["lr_scale_at"] = None if args.lr_scale_at == "none" else float(args.lr_scale_at)
    return given


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--label-fraction", type=float, default=0.05)
    parser.add_argument("--classification-weight", type=float, default=100.0)
    parser.add_argument("--n-clusters", type=int, default=6)
    parser.add_argument("--marker-lfc", type=float, default=0.75)
    parser.add_argument("--lr-scale", type=float, default=None)
    parser.add_argument("--lr-scale-at", default=None, help="a fraction, or none")
    parser.add_argument("--name", default=None, help="suffix of the result files")
    args = parser.parse_args()
    rows = [row for seed in range(args.seeds) for row in run(seed, args)]
    table = pd.DataFrame(rows)
    summary = table.groupby("labelled")[["acc", "nmi", "ari"]].agg(["mean", "std"])
    print(summary.round(3))
    RESULTS.mkdir(exist_ok=True)
    stem = "semi_supervised" + (f"_{args.name}" if args.name else "")
    table.to_csv(RESULTS / f"{stem}.csv", index=False)
    write_json(
        stem,
        {
            "protocol": __doc__.strip().splitlines()[2:5],
            "arguments": vars(args),
            "summary": {
                str(level): {
                    f"{metric}_{stat}": float(summary.loc[level, (metric, stat)])
                    for metric in ("acc", "nmi", "ari")
                    for stat in ("mean", "std")
                }
                for level in summary.index
            },
        },
    )


if __name__ == "__main__":
    main()
