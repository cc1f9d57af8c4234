"""Do the clusters follow content or condition? MNIST with a global appearance change.

Protocol (issue 13): the 10 000 MNIST test images; a random half (fixed by the seed) carry a
strong global change, ``x ↦ 0.5·x + 0.3`` (half the contrast on a grey background), and that
flag is the condition. Models, at their defaults with ``n_clusters=10, likelihood="bernoulli"``
and ``--max-epochs`` (default 100), one per seed:

- ``GMVAE, unchanged images``: the reference, no change applied;
- ``GMVAE, changed images``: the changed set, condition not given;
- ``CGMVAE, changed images``: the changed set, condition given (``condition_key``).

Reported: Hungarian ACC against the digits, ARI against the condition (0: the clusters
ignore it), and the leakage of the condition into the latent: 5-fold cross-validated
accuracy of a logistic regression predicting the condition from the latent means (0.5:
nothing leaks). Targets: CGMVAE within 0.05 of the unchanged reference and ≥ GMVAE + 0.10.
Results (overwritten) to ``benchmarks/results/condition_invariance.{csv,md}``.

``--data pbmc``: the same question on counts. PBMC 68k-reduced (700 cells) with
``add_condition_effect(..., "bulk_labels", seed=seed)`` (half the cells of each type
stimulated, 50 responding genes per type, half of them shared); ``K = 10``, each model at its
defaults (epochs included, ``--max-epochs`` ignored):

- ``CGMVAE, no effect``: the original counts, no condition given (the reference);
- ``GMVAE, with effect``: the condition not given;
- ``CGMVAE, with effect``: the condition given.

Reported: ARI with ``bulk_labels`` and with the condition, and the leak classifier. Targets:
ARI with the types within 0.05 of the reference, ARI with the condition < 0.05. Results to
``benchmarks/results/condition_invariance_pbmc.{csv,md}``.

Usage: ``python benchmarks/condition_invariance.py [--data mnist] [--seeds 2] [--max-epochs 100]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import scvi
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import cross_val_score

from cgmvae import CGMVAE, GMVAE
from cgmvae.data import add_condition_effect, mnist, pbmc68k_reduced
from cgmvae.metrics import clustering_accuracy

from harness import write_results

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def with_condition(images, seed: int, change: bool):
    adata = images.copy()
    flagged = np.random.default_rng(seed).random(adata.n_obs) < 0.5
    if change:
        adata.X = np.where(flagged[:, None], 0.5 * adata.X + 0.3, adata.X).astype(np.float32)
    adata.obs["condition"] = pd.Categorical(np.where(flagged, "changed", "original"))
    return adata


def fit(adata, model_cls, seed: int, max_epochs: int, condition: bool):
    scvi.settings.seed = seed
    model_cls.setup_anndata(adata, condition_key="condition" if condition else None)
    model = model_cls(adata, n_clusters=10, likelihood="bernoulli")
    model.train(max_epochs=max_epochs, **QUIET)
    return model


def scores(model, adata) -> dict:
    clusters = model.get_cluster_assignments()
    latent = model.get_latent_representation()
    condition = adata.obs["condition"].cat.codes.to_numpy()
    leakage = cross_val_score(LogisticRegression(max_iter=2000), latent, condition, cv=5)
    return {
        "acc": clustering_accuracy(adata.obs["label"], clusters),
        "ari_condition": adjusted_rand_score(condition, clusters),
        "condition_from_latent": float(leakage.mean()),
    }


SETTINGS = {
    "GMVAE, unchanged images": (GMVAE, False, False),
    "GMVAE, changed images": (GMVAE, True, False),
    "CGMVAE, changed images": (CGMVAE, True, True),
}

COUNT_SETTINGS = {
    "CGMVAE, no effect": (CGMVAE, False, False),
    "GMVAE, with effect": (GMVAE, True, False),
    "CGMVAE, with effect": (CGMVAE, True, True),
}


def fit_counts(adata, model_cls, seed: int, condition: bool):
    scvi.settings.seed = seed
    model_cls.setup_anndata(
        adata, layer="counts", condition_key="condition" if condition else None
    )
    model = model_cls(adata, n_clusters=10)
    model.train(**QUIET)
    return model


def count_scores(model, adata) -> dict:
    clusters = model.get_cluster_assignments()
    condition = adata.obs["condition"].cat.codes.to_numpy()
    latent = model.get_latent_representation()
    leakage = cross_val_score(LogisticRegression(max_iter=2000), latent, condition, cv=5)
    return {
        "ari_types": adjusted_rand_score(adata.obs["bulk_labels"], clusters),
        "ari_condition": adjusted_rand_score(condition, clusters),
        "condition_from_latent": float(leakage.mean()),
    }


def run_counts(seeds: int) -> list[dict]:
    rows = []
    for seed in range(seeds):
        changed = add_condition_effect(pbmc68k_reduced(), "bulk_labels", seed=seed)
        original = changed.copy()
        original.layers["counts"] = pbmc68k_reduced().layers["counts"]
        for name, (model_cls, effect, condition) in COUNT_SETTINGS.items():
            adata = (changed if effect else original).copy()
            began = time.perf_counter()
            model = fit_counts(adata, model_cls, seed, condition)
            seconds = round(time.perf_counter() - began)
            row = count_scores(model, adata) | {"setting": name, "seed": seed}
            rows.append(row | {"seconds": seconds})
            print(rows[-1], flush=True)
    return rows


def report_counts(table: pd.DataFrame, seeds: int, minutes: float) -> None:
    summary = table.groupby("setting", sort=False).agg(["mean", "std", "min"])
    print(summary.round(3).to_string())
    rows = [
        [name,
         f"{row[('ari_types', 'mean')]:.3f} ± {row[('ari_types', 'std')]:.3f} "
         f"({row[('ari_types', 'min')]:.3f})",
         f"{row[('ari_condition', 'mean')]:.3f}", f"{row[('condition_from_latent', 'mean')]:.3f}"]
        for name, row in summary.iterrows()
    ]  # fmt: skip
    write_results(
        "condition_invariance_pbmc", table,
        f"Condition invariance on PBMC 68k-reduced counts with an added effect ({seeds} seeds)",
        rows,
        ["setting", "ARI with bulk_labels mean ± std (min)", "ARI with the condition",
         "condition predicted from the latent (0.5 = no leak)"],
        f"python benchmarks/condition_invariance.py --data pbmc --seeds {seeds}", minutes,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", choices=["mnist", "pbmc"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=100)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.data == "pbmc":
        table = pd.DataFrame(run_counts(args.seeds))
        report_counts(table, args.seeds, (time.perf_counter() - start) / 60)
        return
    images = mnist("test")
    rows = []
    for seed in range(args.seeds):
        for name, (model_cls, change, condition) in SETTINGS.items():
            adata = with_condition(images, seed, change)
            began = time.perf_counter()
            model = fit(adata, model_cls, seed, args.max_epochs, condition)
            seconds = round(time.perf_counter() - began)
            rows.append(scores(model, adata) | {"setting": name, "seed": seed, "seconds": seconds})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("setting", sort=False).agg(["mean", "std", "min"])
    minutes = (time.perf_counter() - start) / 60
    print(summary.round(3).to_string())
    rows = [
        [name,
         f"{row[('acc', 'mean')]:.3f} ± {row[('acc', 'std')]:.3f} ({row[('acc', 'min')]:.3f})",
         f"{row[('ari_condition', 'mean')]:.3f}", f"{row[('condition_from_latent', 'mean')]:.3f}"]
        for name, row in summary.iterrows()
    ]  # fmt: skip
    write_results(
        "condition_invariance", table,
        f"Condition invariance on MNIST test ({args.seeds} seeds, {args.max_epochs} epochs)",
        rows,
        ["setting", "digit ACC mean ± std (min)", "ARI with the condition",
         "condition predicted from the latent (0.5 = no leak)"],
        f"python benchmarks/condition_invariance.py --seeds {args.seeds} "
        f"--max-epochs {args.max_epochs}", minutes,
    )  # fmt: skip


if __name__ == "__main__":
    main()
