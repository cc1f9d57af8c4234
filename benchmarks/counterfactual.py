"""Counterfactual prediction of a held-out (cell type, condition) group.

Protocol (scGen's, with the effect known): one (cluster, condition) group is removed from
training; each model encodes that cluster's control cells and decodes them under the held-out
condition. Scores, against the true effect:

- ``response_r``: Pearson r between predicted and true log fold change over expressed genes
  (the primary score; a "no change" predictor has none);
- ``r2_all`` / ``r2_top100``: squared Pearson r of per-gene log-normalised means against the
  held-out cells, all genes and the 100 genes with the largest true |LFC|.

Methods, in one run on the same data: CGMVAE and CVAE (``predict_counterfactual``), scVI
(``get_normalized_expression(transform_batch=...)``, same hidden sizes, NB likelihood),
"no change" (the control cells as they are), an oracle that applies only the part of the
effect shared with the training clusters (the simulator only), and the measured held-out
cells themselves (the ceiling set by sampling noise and the log-normalised score).

Data:
- ``simulator``: 2500 cells × 500 genes, 5 clusters, 3 conditions, half of each condition
  effect shared by all clusters and half cluster-specific; held out: cluster_4 under
  condition_2.
- ``simulator-shared``: the same with the whole effect shared by all clusters, so that it
  is learnable from the training clusters (the oracle is then exact).
- ``pbmc``: PBMC 68k-reduced counts (700 cells × 765 genes) with a known effect added to 50
  genes per cell type (half shared), half the cells stimulated; held out: stimulated CD14+
  monocytes.

Every model trains for ``--max-epochs`` (default 200) on the CPU. Results go to
``benchmarks/results/counterfactual.{csv,json,png}``, mean ± std over ``--seeds``.

Usage: ``python benchmarks/counterfactual.py [--seeds 3] [--max-epochs 200]``
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scvi

from cgmvae import CGMVAE, CVAE
from cgmvae.data import (
    add_condition_effect,
    pbmc68k_reduced,
    simulate,
    true_log_fold_change,
)
from cgmvae.metrics import r2_mean_expression, response_correlation

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


@dataclass
class Task:
    """A held-out group and what is known about it."""

    train: object  # AnnData without the held-out group
    control: np.ndarray  # rows of ``train``: the held-out cluster's control cells
    truth: object  # AnnData of the held-out cells
    true_lfc: np.ndarray
    target: str
    cell_type_key: str
    n_clusters: int
    oracle_lfc: np.ndarray | None = None


def split(adata, cell_type_key, cell_type, target, reference, true_lfc, n_clusters, oracle=None):
    held = (adata.obs[cell_type_key] == cell_type) & (adata.obs["condition"] == target)
    train = adata[~held.to_numpy()].copy()
    control = np.flatnonzero(
        (train.obs[cell_type_key] == cell_type) & (train.obs["condition"] == reference)
    )
    truth = adata[held.to_numpy()].copy()
    return Task(train, control, truth, true_lfc, target, cell_type_key, n_clusters, oracle)


def simulator_task(seed: int, shared_effect_fraction: float = 0.5) -> Task:
    adata = simulate(
        n_obs=2500, n_vars=500, n_clusters=5, n_conditions=3, seed=seed,
        n_condition_genes=40, shared_effect_fraction=shared_effect_fraction,
    )  # fmt: skip
    effects = np.asarray(adata.uns["ground_truth"]["simulate"]["condition_log_fold_changes"])
    effects = effects[:, 2, :]
    shared = np.all(effects[:-1] == effects[0], axis=0)
    oracle = np.where(shared, effects[0], 0.0)
    lfc = true_log_fold_change(adata, "cluster_4", "condition_2")
    return split(adata, "cluster", "cluster_4", "condition_2", "condition_0", lfc, 5, oracle)


def pbmc_task(seed: int) -> Task:
    adata = add_condition_effect(pbmc68k_reduced(), "bulk_labels", seed=seed)
    lfc = true_log_fold_change(adata, "CD14+ Monocyte", "stimulated", "control")
    return split(adata, "bulk_labels", "CD14+ Monocyte", "stimulated", "control", lfc, 10)


def predict_ours(model_cls, task: Task, seed: int, max_epochs: int) -> np.ndarray:
    adata = task.train.copy()
    scvi.settings.seed = seed
    model_cls.setup_anndata(adata, layer="counts", condition_key="condition")
    kwargs = {"n_clusters": task.n_clusters} if model_cls is CGMVAE else {}
    model = model_cls(adata, **kwargs)
    model.train(max_epochs=max_epochs, **QUIET)
    return model.predict_counterfactual(target_condition=task.target, indices=task.control).X


def predict_scvi(task: Task, seed: int, max_epochs: int) -> np.ndarray:
    adata = task.train.copy()
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key="condition")
    model = scvi.model.SCVI(adata, n_hidden=128, n_latent=10, gene_likelihood="nb")
    model.train(max_epochs=max_epochs, **QUIET)
    expression = model.get_normalized_expression(
        indices=task.control, transform_batch=task.target, return_numpy=True
    )
    return np.asarray(expression)


def score(name: str, predicted, task: Task) -> dict:
    control = task.train.layers["counts"][task.control]
    truth = task.truth.layers["counts"]
    top = np.argsort(-np.abs(task.true_lfc))[:100]
    return {
        "method": name,
        "response_r": response_correlation(predicted, control, task.true_lfc, truth_is_lfc=True),
        "r2_all": r2_mean_expression(predicted, truth),
        "r2_top100": r2_mean_expression(predicted, truth, top_genes=top),
    }


def run(data: str, seed: int, max_epochs: int, models_too: bool = True) -> list[dict]:
    tasks = {
        "simulator": lambda: simulator_task(seed),
        "simulator-shared": lambda: simulator_task(seed, shared_effect_fraction=1.0),
        "pbmc": lambda: pbmc_task(seed),
    }
    task = tasks[data]()
    control = task.train.layers["counts"][task.control].toarray()
    predictions = {"no change": lambda: control}
    predictions["measured held-out cells"] = lambda: task.truth.layers["counts"]
    if task.oracle_lfc is not None:
        predictions["oracle (shared effect)"] = lambda: control * np.exp(task.oracle_lfc)
    if models_too:
        predictions.update(model_predictions(task, seed, max_epochs))
    rows = []
    for name, predict in predictions.items():
        start = time.perf_counter()
        row = score(name, predict(), task)
        row.update(data=data, seed=seed, max_epochs=max_epochs)
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(row, flush=True)
    return rows


def model_predictions(task: Task, seed: int, max_epochs: int) -> dict:
    predictions = {}
    predictions["CGMVAE"] = lambda: predict_ours(CGMVAE, task, seed, max_epochs)
    predictions["CVAE"] = lambda: predict_ours(CVAE, task, seed, max_epochs)
    predictions["scVI transform_batch"] = lambda: predict_scvi(task, seed, max_epochs)
    return predictions


def plot(summary: pd.DataFrame, path: Path) -> None:
    datasets = summary.index.get_level_values("data").unique()
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 3.6), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        part = summary.loc[data]
        ax.barh(part.index, part[("response_r", "mean")], xerr=part[("response_r", "std")])
        ax.set_xlabel("Pearson r, predicted vs true log fold change")
        ax.set_title(f"held-out group, {data}")
        ax.set_xlim(min(0, part[("response_r", "mean")].min()), 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument(
        "--data", nargs="+", default=["simulator", "simulator-shared", "pbmc"],
        choices=["simulator", "simulator-shared", "pbmc"],
    )  # fmt: skip
    parser.add_argument(
        "--references-only", action="store_true",
        help="score only the predictors that need no training; results to *_references.*",
    )  # fmt: skip
    args = parser.parse_args()
    rows = [
        row
        for data in args.data
        for seed in range(args.seeds)
        for row in run(data, seed, args.max_epochs, models_too=not args.references_only)
    ]
    if args.references_only:
        RESULTS.mkdir(exist_ok=True)
        pd.DataFrame(rows).to_csv(RESULTS / "counterfactual_references.csv", index=False)
        return
    table = pd.DataFrame(rows)
    previous = RESULTS / "counterfactual.csv"
    if previous.exists():  # keep the results of data sets not rerun
        kept = pd.read_csv(previous)
        table = pd.concat([kept[~kept["data"].isin(args.data)], table], ignore_index=True)
    metrics = ["response_r", "r2_all", "r2_top100"]
    summary = table.groupby(["data", "method"], sort=False)[metrics].agg(["mean", "std"])
    print(summary.round(3).to_string())
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "counterfactual.csv", index=False)
    epochs = table.groupby("data")["max_epochs"].first() if "max_epochs" in table else {}
    records = {
        f"{data} | {method}": {
            f"{metric}_{stat}": round(float(summary.loc[(data, method), (metric, stat)]), 4)
            for metric in metrics
            for stat in ("mean", "std")
        }
        | {"max_epochs": int(epochs.get(data, 200)) if len(epochs) else 200}
        for data, method in summary.index
    }
    payload = {"protocol": "see the module docstring", "summary": records}
    (RESULTS / "counterfactual.json").write_text(json.dumps(payload, indent=2))
    plot(summary, RESULTS / "counterfactual.png")


if __name__ == "__main__":
    main()
