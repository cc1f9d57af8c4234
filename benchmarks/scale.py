"""Time and peak memory of CGMVAE from 10⁴ to 10⁶ cells.

Data: ``simulate(n_obs, 2_000 genes, 8 clusters, 2 conditions, library_size_mean=1000)``,
counts stored once (sparse CSR in ``.X``). Per size, in its own process: setup_anndata with
the condition, the model (NB, defaults), one training epoch (batch size 512; it includes the
one-off mixture placement on at most 20 000 cells) and ``write_results``. Each stage's time
and the peak resident memory reached during it (Linux ``VmHWM``, reset before the stage) are
recorded, with the size of the count matrix. Writes ``benchmarks/results/scale.{json,md,png}``.
About 12 minutes on a 2-core CPU with the default sizes (the 10⁶-cell run needs about 8 GB).

Usage: ``python benchmarks/scale.py [--sizes 10000 100000 1000000]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from harness import write_json

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
STAGES = ("simulate", "setup", "model", "train_one_epoch", "write_results")
GIB = 1024**3


def reset_peak_memory() -> None:
    """Restart the kernel's record of this process's peak resident memory (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gib() -> float:
    """Peak resident memory of this process since the last reset, in GiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / GIB
    raise RuntimeError("/proc/self/status has no VmHWM line; this benchmark needs Linux.")


def simulate_counts(n_obs: int):
    from cgmvae.data import simulate

    return simulate(n_obs, 2000, n_clusters=8, n_conditions=2, seed=0, library_size_mean=1000,
                    n_jobs=2)  # fmt: skip


def time_placement(seconds: list[float]) -> None:
    """Append the duration of every mixture placement to ``seconds``."""
    from cgmvae.train import PlaceMixture

    place = PlaceMixture.place

    def timed(self, trainer, module):
        start = time.perf_counter()
        place(self, trainer, module)
        seconds.append(time.perf_counter() - start)

    PlaceMixture.place = timed


def run_stages(n_obs: int) -> dict:
    """Run every stage for ``n_obs`` cells; seconds and peak GiB of each."""
    import scvi

    from cgmvae import CGMVAE

    scvi.settings.seed = 0
    state = {}
    placement_seconds = []
    time_placement(placement_seconds)
    steps = {
        "simulate": lambda: state.update(adata=simulate_counts(n_obs)),
        "setup": lambda: CGMVAE.setup_anndata(state["adata"], condition_key="condition"),
        "model": lambda: state.update(model=CGMVAE(state["adata"], n_clusters=8)),
        "train_one_epoch": lambda: state["model"].train(max_epochs=1, batch_size=512, **QUIET),
        "write_results": lambda: state["model"].write_results(),
    }
    row = {"n_obs": n_obs}
    for stage in STAGES:
        reset_peak_memory()
        start = time.perf_counter()
        steps[stage]()
        row[f"{stage}_seconds"] = time.perf_counter() - start
        row[f"{stage}_peak_gib"] = peak_memory_gib()
        if stage == "simulate":
            matrix = state["adata"].X
            row["data_gib"] = (matrix.data.nbytes + matrix.indices.nbytes
                               + matrix.indptr.nbytes) / GIB  # fmt: skip
            row["nnz"] = int(matrix.nnz)
        print(f"{n_obs} cells: {stage} {row[f'{stage}_seconds']:.1f} s, "
              f"peak {row[f'{stage}_peak_gib']:.2f} GiB", file=sys.stderr, flush=True)  # fmt: skip
    row["placement_seconds"] = sum(placement_seconds)
    row["epoch_without_placement_seconds"] = row["train_one_epoch_seconds"] - sum(
        placement_seconds
    )
    after_data = [row[f"{stage}_peak_gib"] for stage in STAGES[1:]]
    row["peak_after_data_gib"] = max(after_data)
    row["model_seconds_total"] = sum(row[f"{stage}_seconds"] for stage in STAGES[1:])
    return row


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [row["n_obs"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for stage in STAGES[1:]:
        left.plot(n, [row[f"{stage}_seconds"] for row in rows], "o-", label=stage)
    left.set(xscale="log", yscale="log", xlabel="cells", ylabel="seconds",
             title="time per stage")  # fmt: skip
    left.legend(fontsize=7)
    right.plot(n, [row["data_gib"] for row in rows], "o--", label="count matrix")
    right.plot(n, [row["peak_after_data_gib"] for row in rows], "o-",
               label="peak, setup → write_results")  # fmt: skip
    right.plot(n, [row["simulate_peak_gib"] for row in rows], "o:", label="peak, simulate")
    right.set(xscale="log", yscale="log", xlabel="cells", ylabel="GiB",
              title="resident memory")  # fmt: skip
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=120)


def write(rows: list[dict], command: str, minutes: float) -> None:
    header = ["cells", "non-zeros", "matrix GiB", "peak GiB (setup → results)",
              "peak − matrix", "setup s", "model s", "1 epoch s", "of which placement s",
              "write_results s", "cells/s (epoch without placement)"]  # fmt: skip
    lines = ["# CGMVAE from 10⁴ to 10⁶ cells: time and peak resident memory", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    for row in rows:
        cells = [f"{row['n_obs']:,}", f"{row['nnz']:.2e}", f"{row['data_gib']:.2f}",
                 f"{row['peak_after_data_gib']:.2f}",
                 f"{row['peak_after_data_gib'] - row['data_gib']:.2f}",
                 f"{row['setup_seconds']:.1f}", f"{row['model_seconds']:.1f}",
                 f"{row['train_one_epoch_seconds']:.1f}", f"{row['placement_seconds']:.1f}",
                 f"{row['write_results_seconds']:.1f}",
                 f"{row['n_obs'] / row['epoch_without_placement_seconds']:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The epoch includes the one-off mixture placement: the latent of every "
              "training cell, then UMAP and Gaussian mixtures on at most 20 000 of them (about "
              "a minute of it is numba compiling UMAP, once per process).", "",
              f"Command: `{command}`; {minutes:.0f} min on a 2-core CPU."]  # fmt: skip
    (RESULTS / "scale.md").write_text("\n".join(lines) + "\n")
    payload = {"command": command, "runtime_minutes": round(minutes, 1), "rows": rows}
    write_json("scale", payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_stages(args.child)))
        return
    start = time.perf_counter()
    rows = []
    for n_obs in args.sizes:
        command = [sys.executable, __file__, "--child", str(n_obs)]
        output = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    RESULTS.mkdir(exist_ok=True)
    command = "python benchmarks/scale.py --sizes " + " ".join(map(str, args.sizes))
    write(rows, command, (time.perf_counter() - start) / 60)
    plot(rows)
    print((RESULTS / "scale.md").read_text())


if __name__ == "__main__":
    main()
