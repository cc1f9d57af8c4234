"""Does training from disk in runs of neighbouring rows cost cluster quality?

A backed AnnData trains on minibatches of runs of neighbouring rows by default
(``train(block_size=None)``: at least 16 runs a minibatch, 8 rows at the default batch size
of 128), where cells drawn one by one (``block_size=1``) read scattered rows. A minibatch of
runs holds fewer independent stretches of the file, which matters most where the file is
sorted. For PBMC 68k-reduced (K = 10) and PBMC 3k after quality control (K = 8), the tasks and
protocol of ``benchmarks/clustering.py`` (CGMVAE defaults, batch size 128), the counts are
written to an ``.h5ad`` as stored and sorted by cell type, opened ``backed="r"`` and trained
with each ``--block-sizes`` (``0`` stands for the default); ARI of the clusters with the cell
types. Writes ``benchmarks/results/block_loading.{json,md}``; ``--keep`` adds to the rows
there. About 6 minutes per block size on a 2-core CPU with 2 seeds.

Usage: ``python benchmarks/block_loading.py [--tasks pbmc68k pbmc3k] [--seeds 2]
[--block-sizes 1 0 32] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from cgmvae.train.blocks import resolve_block_size

from harness import write_json

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
ORDERS = ("as stored", "sorted by cell type")


def stored(task, order: str, folder: Path):
    """The task's counts in ``X`` of an ``.h5ad`` in ``order``, opened backed; its labels."""
    import anndata

    adata = anndata.AnnData(X=task.adata.layers["counts"].copy(), obs=task.adata.obs[[]].copy())
    labels = task.labels.astype(str).to_numpy()
    if order == "sorted by cell type":
        rows = np.argsort(labels, kind="stable")
        adata, labels = adata[rows].copy(), labels[rows]
    path = folder / f"{order.replace(' ', '_')}.h5ad"
    adata.write_h5ad(path)
    return anndata.read_h5ad(path, backed="r"), labels


def ari(task, order: str, block_size: int | None, seed: int, folder: Path) -> float:
    import scvi

    from cgmvae import CGMVAE
    from cgmvae.metrics import cluster_scores

    backed, labels = stored(task, order, folder)
    scvi.settings.seed = seed
    CGMVAE.setup_anndata(backed)
    model = CGMVAE(backed, n_clusters=task.n_clusters)
    model.train(block_size=block_size, **QUIET)
    clusters = model.get_cluster_assignments()
    backed.file.close()
    scored = labels != "nan"
    return cluster_scores(labels[scored], clusters[scored])["ari"]


def column(block_size: int) -> str:
    if block_size == 1:
        return "cells drawn one by one (`block_size=1`)"
    default = resolve_block_size(None, True, 128)
    return f"runs of {block_size} rows" + (" (the default)" if block_size == default else "")


def table(rows: list[dict], command: str, minutes: float) -> str:
    block_sizes = sorted({row["block_size"] for row in rows})
    header = ["data", "rows in the file", *map(column, block_sizes)]
    lines = ["# Cluster quality when training from disk in runs of rows", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    for task in dict.fromkeys(row["task"] for row in rows):
        for order in ORDERS:
            cells = []
            for block_size in block_sizes:
                scores = [row["ari"] for row in rows if (row["task"], row["order"],
                          row["block_size"]) == (task, order, block_size)]  # fmt: skip
                per_seed = " / ".join(f"{score:.3f}" for score in scores)
                cells.append(f"{np.mean(scores):.3f} ({per_seed})" if scores else "–")
            lines.append(f"| {task} | {order} | " + " | ".join(cells) + " |")
    lines += ["", "ARI of the CGMVAE's clusters (defaults, the task's K, batch size 128) with "
              "the cell types; mean (per seed). One process, 2-core CPU, the machine's own CPU "
              f"kernels. Last command: `{command}`; {minutes:.0f} min."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    from clustering import TASKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[1, 0, 32])
    parser.add_argument("--keep", action="store_true", help="add to the recorded rows")
    args = parser.parse_args()
    start, rows = time.perf_counter(), []
    if args.keep and (RESULTS / "block_loading.json").exists():
        rows = json.loads((RESULTS / "block_loading.json").read_text())["rows"]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.tasks:
            task = TASKS[name]()
            for order in ORDERS:
                for block_size in args.block_sizes:
                    for seed in range(args.seeds):
                        score = ari(task, order, block_size or None, seed, Path(folder))
                        resolved = resolve_block_size(block_size or None, True, 128)
                        rows.append({"task": name, "order": order, "block_size": resolved,
                                     "seed": seed, "ari": score})  # fmt: skip
                        print(rows[-1], flush=True)
    minutes = (time.perf_counter() - start) / 60
    command = (f"python benchmarks/block_loading.py --tasks {' '.join(args.tasks)} --seeds "
               f"{args.seeds} --block-sizes {' '.join(map(str, args.block_sizes))}"
               + (" --keep" if args.keep else ""))  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "block_loading.md").write_text(table(rows, command, minutes))
    write_json("block_loading", {"command": command, "runtime_minutes": round(minutes, 1),
                                 "rows": rows})  # fmt: skip
    print((RESULTS / "block_loading.md").read_text())


if __name__ == "__main__":
    main()
