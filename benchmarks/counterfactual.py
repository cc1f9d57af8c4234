"""Counterfactual prediction of held-out (cell type, condition) groups.

Protocol (scGen's, with the effect known): one (group, condition) pair is removed from
training; each method encodes that group's control cells and predicts them under the
held-out condition. Scores, against the true effect:

- ``response_r``: Pearson r between predicted and true log fold change over expressed genes
  (the primary score; a "no change" predictor has none);
- ``r2_all`` / ``r2_top100``: squared Pearson r of per-gene log-normalised means against the
  held-out cells, all genes and the 100 genes with the largest true |LFC|;
- ``de_top100``: fraction of the truly changed genes (|LFC| >= 0.5) among the 100 largest
  predicted changes.
- ``observed_r``: ``response_r`` of the groups observed under both conditions in training
  (10 cells or more under each), their control cells predicted under the target, averaged
  over the groups: what a method does where the data show the group's own response.

Methods, in one run on the same data: CGMVAE with the additive condition effect and the MMD
penalty on z (the default), the same model with its cluster-specific changes applied in
full rather than weighted by their support (the default before 2026-12-06), the same without
the penalty (the default before issue 26), and
with the condition injected into every decoder layer (the default before that),
CVAE (default), scVI (``get_normalized_expression(transform_batch=...)``, NB, same sizes),
scGen-style latent arithmetic (an unconditional VAE, z + mean z(target) - mean z(reference)
over the training cell types, balanced per type, decoded at each cell's library size),
"no change" (the control cells as they are), an oracle that applies only the part of the
effect shared with the training groups, and the measured held-out cells (the ceiling set by
sampling noise). scGen itself (2.1.0, the latest release) installs beside scvi-tools 1.4.2 but
fails on import (it needs ``scvi._compat``, since removed), hence its recipe on our ``VAE``.

Data:
- ``sim-shared`` / ``sim-half`` / ``sim-specific``: 1500 cells x 300 genes, 4 clusters,
  2 conditions, 40 responding genes per cluster, of which all / half / none are shared by
  every cluster; held out: cluster_3 under condition_1.
- ``pbmc``: PBMC 68k-reduced counts (700 cells x 765 genes) with a known effect added to 50
  genes per cell type (half shared), half the cells stimulated; held out in turn: stimulated
  CD14+ monocytes, CD19+ B cells and CD4+/CD25 T Reg cells.

Every model trains for ``--max-epochs`` (default 200) on the CPU. Results go to
``benchmarks/results/counterfactual_<data>.{csv,json,md,png}`` (``counterfactual.*`` when
every data set runs; mean +- std over held-out groups and seeds; each run writes its own
files, replacing those of an earlier run of the same data) and
``counterfactual_groups_<data>.png`` (per
held-out group of the first seed: predicted vs
true log fold change, and scGen's mean-vs-mean scatter, for the default CGMVAE).

Usage: ``python benchmarks/counterfactual.py [--seeds 3] [--max-epochs 200] [--data pbmc]``
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scvi
import torch

from cgmvae import CGMVAE, CVAE, VAE
from cgmvae.data import add_condition_effect, pbmc68k_reduced, simulate, true_log_fold_change
from cgmvae.metrics import de_recovery, r2_mean_expression, response_correlation

from harness import write_results

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
PBMC_HELD_OUT = ("CD14+ Monocyte", "CD19+ B", "CD4+/CD25 T Reg")
SIMULATIONS = {"sim-shared": 1.0, "sim-half": 0.5, "sim-specific": 0.0}
METRICS = ["response_r", "r2_all", "r2_top100", "de_top100", "observed_r"]
#: Cells a group needs under each condition to be scored as observed.
MIN_OBSERVED = 10

Predictor = Callable[["Group"], np.ndarray]
Builders = dict[str, Callable[[], Predictor]]


@dataclass
class Group:
    """Control cells to predict under the target condition, and the truth to score them by."""

    name: str
    control: np.ndarray  # rows of the task's training AnnData
    truth: object  # counts measured under the target condition
    true_lfc: np.ndarray


@dataclass
class Task:
    """A held-out group, the groups observed under both conditions, and what is known."""

    train: object  # AnnData without the held-out group
    held_out: Group
    observed: list[Group]
    oracle_lfc: np.ndarray
    target: str
    reference: str
    group_key: str
    n_clusters: int

    @property
    def name(self) -> str:
        return self.held_out.name


def group_rows(adata, group_key: str, group: str, condition: str) -> np.ndarray:
    return np.flatnonzero((adata.obs[group_key] == group) & (adata.obs["condition"] == condition))


def split(adata, group_key, group, target, reference, n_clusters, oracle_lfc) -> Task:
    held = ((adata.obs[group_key] == group) & (adata.obs["condition"] == target)).to_numpy()
    train = adata[~held].copy()
    held_out = Group(
        group,
        group_rows(train, group_key, group, reference),
        adata.layers["counts"][held],
        true_log_fold_change(adata, group, target, reference),
    )
    observed = []
    for other in train.obs[group_key].unique():
        control = group_rows(train, group_key, other, reference)
        measured = group_rows(train, group_key, other, target)
        if other != group and min(len(control), len(measured)) >= MIN_OBSERVED:
            true_lfc = true_log_fold_change(adata, other, target, reference)
            observed.append(Group(other, control, train.layers["counts"][measured], true_lfc))
    return Task(
        train, held_out, observed, oracle_lfc, target, reference, group_key, n_clusters
    )  # fmt: skip


def simulator_tasks(seed: int, shared_fraction: float) -> list[Task]:
    adata = simulate(
        counts_layer="counts",
        n_obs=1500, n_vars=300, n_clusters=4, n_conditions=2, seed=seed,
        n_condition_genes=40, shared_effect_fraction=shared_fraction,
    )  # fmt: skip
    effects = np.asarray(adata.uns["ground_truth"]["simulate"]["condition_log_fold_changes"])
    effects = effects[:, 1, :]
    shared = np.all(effects[:-1] == effects[0], axis=0)
    oracle = np.where(shared, effects[0], 0.0)
    return [split(adata, "cluster", "cluster_3", "condition_1", "condition_0", 4, oracle)]


def pbmc_tasks(seed: int) -> list[Task]:
    adata = add_condition_effect(pbmc68k_reduced(), "bulk_labels", seed=seed)
    truth = adata.uns["ground_truth"]
    tasks = []
    for cell_type in PBMC_HELD_OUT:
        others = [t for t in truth["group_names"] if t != cell_type]
        lfcs = np.stack([true_log_fold_change(adata, t, "stimulated", "control") for t in others])
        oracle = np.where(np.all(lfcs == lfcs[0], axis=0), lfcs[0], 0.0)
        tasks.append(split(adata, "bulk_labels", cell_type, "stimulated", "control", 10, oracle))
    return tasks


def train_ours(model_cls, task: Task, seed: int, max_epochs: int, **kwargs):
    adata = task.train.copy()
    scvi.settings.seed = seed
    model_cls.setup_anndata(adata, layer="counts", condition_key="condition")
    if model_cls is CGMVAE:
        kwargs["n_clusters"] = task.n_clusters
    model = model_cls(adata, **kwargs)
    model.train(max_epochs=max_epochs, **QUIET)
    return model


def counterfactual_of(model, task: Task, **kwargs) -> Predictor:
    def predict(group: Group) -> np.ndarray:
        return model.predict_counterfactual(task.target, indices=group.control, **kwargs).X

    return predict


def predict_ours(model_cls, task: Task, seed: int, max_epochs: int, **kwargs) -> Predictor:
    return counterfactual_of(train_ours(model_cls, task, seed, max_epochs, **kwargs), task)


def predict_scvi(task: Task, seed: int, max_epochs: int) -> Predictor:
    adata = task.train.copy()
    scvi.settings.seed = seed
    scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key="condition")
    model = scvi.model.SCVI(adata, n_hidden=128, n_latent=10, gene_likelihood="nb")
    model.train(max_epochs=max_epochs, **QUIET)

    def predict(group: Group) -> np.ndarray:
        expression = model.get_normalized_expression(
            indices=group.control, transform_batch=task.target, return_numpy=True
        )
        return np.asarray(expression)

    return predict


def predict_latent_arithmetic(task: Task, seed: int, max_epochs: int) -> Predictor:
    """scGen's recipe on an unconditional VAE: shift z by the balanced mean difference."""
    adata = task.train.copy()
    scvi.settings.seed = seed
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata)
    model.train(max_epochs=max_epochs, **QUIET)
    latent = model.get_latent_representation()
    obs = adata.obs
    deltas = []
    for group in obs[task.group_key].unique():
        in_group = (obs[task.group_key] == group).to_numpy()
        target = in_group & (obs["condition"] == task.target).to_numpy()
        reference = in_group & (obs["condition"] == task.reference).to_numpy()
        if target.any() and reference.any():
            deltas.append(latent[target].mean(0) - latent[reference].mean(0))
    shift = np.mean(deltas, axis=0)

    def predict(group: Group) -> np.ndarray:
        px = model.module.decode(torch.as_tensor(latent[group.control] + shift), library=1.0)
        library = np.asarray(adata.layers["counts"][group.control].sum(1)).reshape(-1, 1)
        return px.scale.numpy() * library

    return predict


def score(name: str, predict: Predictor, task: Task) -> tuple[dict, np.ndarray]:
    """Scores of the held-out group, and ``observed_r`` over the observed groups."""
    held_out = task.held_out
    predicted = predict(held_out)
    control = task.train.layers["counts"][held_out.control]
    top = np.argsort(-np.abs(held_out.true_lfc))[:100]
    observed = [
        response_correlation(
            predict(group), task.train.layers["counts"][group.control], group.true_lfc,
            truth_is_lfc=True,
        )
        for group in task.observed
    ]  # fmt: skip
    row = {
        "method": name,
        "response_r": response_correlation(
            predicted, control, held_out.true_lfc, truth_is_lfc=True
        ),
        "r2_all": r2_mean_expression(predicted, held_out.truth),
        "r2_top100": r2_mean_expression(predicted, held_out.truth, top_genes=top),
        "de_top100": de_recovery(predicted, control, held_out.true_lfc),
        "observed_r": float(np.mean(observed)) if observed else np.nan,
    }
    return row, predicted


def reference_predictions(task: Task) -> Builders:
    def control(group: Group) -> np.ndarray:
        return task.train.layers["counts"][group.control].toarray()

    return {
        "no change": lambda: control,
        "oracle (shared effect)": lambda: lambda group: control(group) * np.exp(task.oracle_lfc),
        "measured held-out cells": lambda: lambda group: group.truth,
    }


def model_predictions(
    task: Task, seed: int, max_epochs: int
) -> dict[str, Callable[[], Predictor]]:
    default = functools.cache(lambda: train_ours(CGMVAE, task, seed, max_epochs))
    return {
        "CGMVAE (additive, default)": lambda: counterfactual_of(default(), task),
        "CGMVAE (default, specific changes in full)": lambda: counterfactual_of(
            default(), task, weight_by_support=False
        ),
        "CGMVAE (additive, no penalty)": lambda: predict_ours(
            CGMVAE, task, seed, max_epochs, condition_invariance=None
        ),
        "CGMVAE (injected)": lambda: predict_ours(
            CGMVAE, task, seed, max_epochs, condition_effect="injected"
        ),
        "CVAE (additive, default)": lambda: predict_ours(CVAE, task, seed, max_epochs),
        "scVI transform_batch": lambda: predict_scvi(task, seed, max_epochs),
        "scGen-style latent arithmetic": lambda: predict_latent_arithmetic(task, seed, max_epochs),
    }


def run(data: str, seed: int, max_epochs: int, kept: dict) -> list[dict]:
    if data == "pbmc":
        tasks = pbmc_tasks(seed)
    else:
        tasks = simulator_tasks(seed, SIMULATIONS[data])
    rows = []
    for task in tasks:
        predictions = reference_predictions(task) | model_predictions(task, seed, max_epochs)
        for name, build in predictions.items():
            start = time.perf_counter()
            row, predicted = score(name, build(), task)
            row.update(data=data, held_out=task.name, seed=seed, max_epochs=max_epochs)
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
            print(row, flush=True)
            if seed == 0 and name.endswith("default)") and name.startswith("CGMVAE"):
                kept[(data, task.name)] = (predicted, task)
    return rows


def plot_summary(summary: pd.DataFrame, path: Path) -> None:
    datasets = summary.index.get_level_values("data").unique()
    width = 2.5 + 5.5 * len(datasets)
    fig, axes = plt.subplots(1, len(datasets), figsize=(width, 4.2), squeeze=False)
    scores = {"response_r": "held-out group", "observed_r": "groups observed in training"}
    for ax, data in zip(axes[0], datasets, strict=True):
        part = summary.loc[data]
        rows = np.arange(len(part))
        lowest = 0.0
        for shift, (metric, label) in zip((-0.2, 0.2), scores.items(), strict=True):
            means = part[(metric, "mean")].fillna(0.0)
            errors = part[(metric, "std")].fillna(0.0)
            ax.barh(rows + shift, means, height=0.4, xerr=errors, label=label)
            lowest = min(lowest, means.min())
        ax.set_yticks(rows, part.index)
        ax.invert_yaxis()
        ax.set_xlabel("Pearson r, predicted vs true log fold change")
        ax.set_title(data)
        ax.set_xlim(lowest, 1)
    axes[0][0].legend(loc="upper right", fontsize=8)
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def log_means(matrix) -> np.ndarray:
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return np.log1p(dense / dense.sum(1, keepdims=True) * 1e4).mean(0)


def plot_groups(kept: dict, path: Path) -> None:
    fig, axes = plt.subplots(len(kept), 2, figsize=(8, 3.6 * len(kept)), squeeze=False)
    for (lfc_ax, mean_ax), ((data, group), (predicted, task)) in zip(
        axes, kept.items(), strict=True
    ):
        control = log_means(task.train.layers["counts"][task.held_out.control])
        predicted_means = log_means(predicted)
        expressed = control >= 0.05
        true_lfc = task.held_out.true_lfc
        lfc_ax.scatter(true_lfc[expressed], (predicted_means - control)[expressed], s=6)
        lfc_ax.axline((0, 0), slope=1, color="grey", lw=0.8)
        lfc_ax.set_xlabel("true log fold change")
        lfc_ax.set_ylabel("predicted log fold change")
        lfc_ax.set_title(f"{data}: {group}", fontsize=9)
        truth_means = log_means(task.held_out.truth)
        mean_ax.scatter(truth_means, predicted_means, s=6)
        mean_ax.axline((0, 0), slope=1, color="grey", lw=0.8)
        r2 = np.corrcoef(truth_means, predicted_means)[0, 1] ** 2
        mean_ax.set_title(f"mean expression, R² = {r2:.3f}", fontsize=9)
        mean_ax.set_xlabel("held-out cells (log-normalised mean)")
        mean_ax.set_ylabel("CGMVAE prediction")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def results_name(data: list[str]) -> str:
    """``counterfactual`` for every data set, else ``counterfactual_<data>``: one run, one file."""
    return "counterfactual" if set(data) == {*SIMULATIONS, "pbmc"} else (
        "counterfactual_" + "_".join(data)
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=200)
    choices = [*SIMULATIONS, "pbmc"]
    parser.add_argument("--data", nargs="+", default=choices, choices=choices)
    args = parser.parse_args()
    start, kept = time.perf_counter(), {}
    rows = [
        row
        for data in args.data
        for seed in range(args.seeds)
        for row in run(data, seed, args.max_epochs, kept)
    ]
    command = (
        f"python benchmarks/counterfactual.py --seeds {args.seeds} "
        f"--max-epochs {args.max_epochs} --data {' '.join(args.data)}"
    )
    name = results_name(args.data)
    report(pd.DataFrame(rows), name, command, (time.perf_counter() - start) / 60)
    if kept:
        plot_groups(kept, RESULTS / f"counterfactual_groups_{'_'.join(args.data)}.png")


def report(table: pd.DataFrame, name: str, command: str, minutes: float) -> None:
    """Write ``<name>.{csv,json,md,png}`` for the rows of one run."""
    summary = table.groupby(["data", "method"], sort=False)[METRICS].agg(["mean", "std"])
    print(summary.round(3).to_string())
    records = {
        f"{data} | {method}": {
            f"{metric}_{stat}": round(float(summary.loc[(data, method), (metric, stat)]), 4)
            for metric in METRICS
            for stat in ("mean", "std")
        }
        for data, method in summary.index
    }
    oracle = summary.xs("oracle (shared effect)", level="method")[("response_r", "mean")]
    of_oracle = {
        key: round(float(summary.loc[key, ("response_r", "mean")] / oracle[key[0]]), 3)
        for key in summary.index
    }
    for key, fraction in of_oracle.items():
        records[" | ".join(key)]["response_r_of_oracle"] = fraction
    title = "Counterfactuals of held-out groups (mean ± std over held-out groups and seeds)"
    runs = table.groupby("data").agg(seeds=("seed", "nunique"), epochs=("max_epochs", "max"))
    rows = [
        [
            data,
            method,
            str(runs.loc[data, "seeds"]),
            str(runs.loc[data, "epochs"]),
            *(f"{row[(m, 'mean')]:.3f} ± {row[(m, 'std')]:.3f}" for m in METRICS),
            f"{of_oracle[(data, method)]:.2f}",
        ]
        for (data, method), row in summary.iterrows()
    ]
    header = ["data", "method", "seeds", "epochs", *METRICS, "response_r / oracle's"]
    write_results(name, table, title, rows, header, command, minutes, records)
    plot_summary(summary, RESULTS / f"{name}.png")


if __name__ == "__main__":
    main()
