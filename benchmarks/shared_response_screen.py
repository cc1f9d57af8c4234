"""Screen the shared condition response's estimate on held-out groups, without training.

A cell type never observed under the target condition is predicted as its control counts
times ``exp(s)``, with ``s`` the shared response that
:class:`~cgmvae.train.PlaceConditionEffect` places before training (see
``benchmarks/results/counterfactual_ablation.md``). This script computes that estimate on
the training data of ``counterfactual.py``'s tasks for several numbers of k-means groups,
soft-threshold levels (in Poisson standard errors) and estimators (median, 25 % trimmed
mean), and scores "control × exp(s)" as ``counterfactual.py`` scores (response r, R² of
all-gene means). Seeds 0–1; writes ``benchmarks/results/shared_response_screen.csv`` and
prints mean response r per setting and data set. About 3 minutes on a 2-core CPU.

Usage: ``python benchmarks/shared_response_screen.py``
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from counterfactual import SIMULATIONS, pbmc_tasks, score, simulator_tasks

from cgmvae.nn.condition_effect import pseudo_bulk_changes, soft_threshold
from cgmvae.train.placement import pool_groups

from harness import RESULTS

GROUPS = (4, 6, 8, 10, 15)
THRESHOLDS = (0, 1, 2, 3)
ESTIMATORS = ("median", "trimmed mean")


def pooled_groups(task, n_groups: int, seed: int):
    """Counts, libraries and cells per (k-means group, condition), as the callback pools them."""
    counts = torch.as_tensor(task.train.layers["counts"].toarray(), dtype=torch.float32)
    codes = torch.as_tensor((task.train.obs["condition"] == task.target).to_numpy().astype(int))
    return pool_groups(counts, codes, n_groups, 2, 20, seed)


def shared_estimate(summed, n_se: float, estimator: str) -> np.ndarray:
    lfc, se = pseudo_bulk_changes(*summed)[1]
    if estimator == "median":
        center = lfc.median(0).values
    else:
        cut = lfc.shape[0] // 4
        center = lfc.sort(0).values[cut : lfc.shape[0] - cut].mean(0)
    return soft_threshold(center, n_se * se.median(0).values).numpy()


def shared_only(counts, shared: np.ndarray):
    """Predict a group as its control counts times exp(shared response)."""
    return lambda group: counts[group.control].toarray() * np.exp(shared)


def tasks_of(data: str, seed: int) -> list:
    return pbmc_tasks(seed) if data == "pbmc" else simulator_tasks(seed, SIMULATIONS[data])


def main() -> None:
    rows = []
    for data, seed in itertools.product([*SIMULATIONS, "pbmc"], (0, 1)):
        for task in tasks_of(data, seed):
            counts = task.train.layers["counts"]
            for n_groups in GROUPS:
                summed = pooled_groups(task, n_groups, seed)
                for n_se, estimator in itertools.product(THRESHOLDS, ESTIMATORS):
                    shared = shared_estimate(summed, n_se, estimator)
                    scores, _ = score("shared", shared_only(counts, shared), task)
                    rows.append({"data": data, "seed": seed, "held_out": task.name,
                                 "groups": n_groups, "threshold_se": n_se,
                                 "estimator": estimator, "response_r": scores["response_r"],
                                 "r2_all": scores["r2_all"]})  # fmt: skip
        print(data, seed, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / "shared_response_screen.csv", index=False)
    index = ["estimator", "threshold_se", "groups"]
    print(table.pivot_table(index=index, columns="data", values="response_r").round(3))


if __name__ == "__main__":
    main()
