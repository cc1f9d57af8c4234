"""Time and peak memory of CGMVAE from 10⁴ to 5·10⁶ cells, in memory and from disk.

Data: ``simulate(n_obs, 2_000 genes, 8 clusters, 2 conditions, library_size_mean=1000)``,
counts stored once (sparse CSR in ``.X``). Per size, in its own process: setup_anndata with
the condition, the model (NB, defaults), one training epoch (batch size 512; it includes the
one-off mixture placement on at most 20 000 cells) and ``write_results``. Each stage's time
and the peak resident memory reached during it (Linux ``VmHWM``, reset before the stage) are
recorded, with the size of the count matrix. Writes ``benchmarks/results/scale.{json,md,png}``.
About 12 minutes on a 2-core CPU with the default sizes (the 10⁶-cell run needs about 8 GB).

``--backed-sizes`` runs the same stages on an ``.h5ad`` opened with ``backed="r"``: the store
is written first (in the ``simulate`` stage) from independent simulations of at most
:data:`STORE_CHUNK` cells (seeds 0, 1, ...: each chunk has its own 8 cell types), each written
to its own file and joined by ``anndata.experimental.concat_on_disk``, so no stage holds the
matrix; the store's size on disk is recorded and the files are deleted afterwards.

Usage: ``python benchmarks/scale.py [--sizes 10000 100000 1000000] [--backed-sizes 1000000
5000000] [--store-dir /tmp]``; ``--report`` rebuilds the table and plot from the JSON.
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
#: Cells simulated and written at a time when building an on-disk store.
STORE_CHUNK = 250_000


def reset_peak_memory() -> None:
    """Restart the kernel's record of this process's peak resident memory (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gib() -> float:
    """Peak resident memory of this process since the last reset, in GiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / GIB
    raise RuntimeError("/proc/self/status has no VmHWM line; this benchmark needs Linux.")


def simulate_counts(n_obs: int, seed: int = 0):
    from cgmvae.data import simulate

    return simulate(n_obs, 2000, n_clusters=8, n_conditions=2, seed=seed,
                    library_size_mean=1000, n_jobs=2)  # fmt: skip


def write_store(n_obs: int, store: Path, contiguous: bool = False):
    """Write ``n_obs`` simulated cells to ``store`` chunk by chunk; return it opened backed.

    With ``contiguous``, the joined file is then copied with ``X`` unchunked
    (:func:`cgmvae.data.write_contiguous_h5ad`) and deleted.
    """
    import anndata
    from anndata.experimental import concat_on_disk

    from cgmvae.data import write_contiguous_h5ad

    parts = []
    for index, start in enumerate(range(0, n_obs, STORE_CHUNK)):
        chunk = simulate_counts(min(STORE_CHUNK, n_obs - start), seed=index)
        chunk.obs_names = [f"cell_{start + i}" for i in range(chunk.n_obs)]
        chunk.uns = {}
        parts.append(store.with_name(f"{store.stem}_part{index}.h5ad"))
        chunk.write_h5ad(parts[-1])
        del chunk
    joined = store.with_name(f"{store.stem}_chunked.h5ad") if contiguous else store
    concat_on_disk(parts, joined)
    for part in parts:
        part.unlink()
    if contiguous:
        write_contiguous_h5ad(joined, store)
        joined.unlink()
    return anndata.read_h5ad(store, backed="r")


def matrix_size(matrix) -> tuple[int, float]:
    """Non-zeros and GiB of a CSR matrix, in memory or on disk."""
    if hasattr(matrix, "group"):  # on disk: read the sizes from the HDF5 datasets
        group = matrix.group
        return int(group["data"].shape[0]), sum(
            group[key].size * group[key].dtype.itemsize for key in ("data", "indices", "indptr")
        ) / GIB
    nbytes = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    return int(matrix.nnz), nbytes / GIB


def time_placement(seconds: list[float]) -> None:
    """Append the duration of every mixture placement to ``seconds``."""
    from cgmvae.train import PlaceMixture

    place = PlaceMixture.place

    def timed(self, trainer, module):
        start = time.perf_counter()
        place(self, trainer, module)
        seconds.append(time.perf_counter() - start)

    PlaceMixture.place = timed


def run_stages(
    n_obs: int, store: Path | None = None, contiguous: bool = False, block_size: int | None = None
) -> dict:
    """Run every stage for ``n_obs`` cells; seconds and peak GiB of each.

    With ``store`` the data are written there (``contiguous``: see :func:`write_store`) and
    trained from disk (``backed="r"``).
    """
    import scvi

    from cgmvae import CGMVAE
    from cgmvae.train.blocks import resolve_block_size

    scvi.settings.seed = 0
    state = {}
    placement_seconds = []
    time_placement(placement_seconds)
    steps = {
        "simulate": lambda: state.update(
            adata=simulate_counts(n_obs)
            if store is None
            else write_store(n_obs, store, contiguous)
        ),
        "setup": lambda: CGMVAE.setup_anndata(state["adata"], condition_key="condition"),
        "model": lambda: state.update(model=CGMVAE(state["adata"], n_clusters=8)),
        "train_one_epoch": lambda: state["model"].train(
            max_epochs=1, batch_size=512, block_size=block_size, **QUIET
        ),
        "write_results": lambda: state["model"].write_results(),
    }
    row = {"n_obs": n_obs, "storage": "memory" if store is None else "disk (backed h5ad)"}
    if store is not None and contiguous:
        row["storage"] = "disk (backed h5ad, contiguous X)"
    row["block_size"] = resolve_block_size(block_size, store is not None, batch_size=512)
    for stage in STAGES:
        reset_peak_memory()
        start = time.perf_counter()
        steps[stage]()
        row[f"{stage}_seconds"] = time.perf_counter() - start
        row[f"{stage}_peak_gib"] = peak_memory_gib()
        if stage == "simulate":
            row["nnz"], row["data_gib"] = matrix_size(state["adata"].X)
            if store is not None:
                row["store_disk_gib"] = store.stat().st_size / GIB
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
    """Seconds per stage and peak memory by size; from-disk runs as open markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for storage, style in (("memory", "o-"), ("disk (backed h5ad)", "s--")):
        part = [row for row in rows if row.get("storage", "memory") == storage]
        if not part:
            continue
        n = [row["n_obs"] for row in part]
        face = "none" if storage != "memory" else None
        where = "" if storage == "memory" else ", from disk"
        for colour, stage in enumerate(STAGES[1:]):
            left.plot(n, [row[f"{stage}_seconds"] for row in part], style, mfc=face,
                      color=f"C{colour}", label=stage + where)  # fmt: skip
        right.plot(n, [row["data_gib"] for row in part], style, mfc=face, color="C0",
                   label="count matrix" + where)  # fmt: skip
        right.plot(n, [row["peak_after_data_gib"] for row in part], style, mfc=face,
                   color="C1", label="peak, setup → write_results" + where)  # fmt: skip
    left.set(xscale="log", yscale="log", xlabel="cells", ylabel="seconds",
             title="time per stage")  # fmt: skip
    left.legend(fontsize=6)
    right.set(xscale="log", yscale="log", xlabel="cells", ylabel="GiB",
              title="resident memory")  # fmt: skip
    right.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=120)


def write(rows: list[dict], command: str, minutes: float, name: str = "scale") -> None:
    """Write the table (``<name>.md``) and the rows with the environment (``<name>.json``)."""
    (RESULTS / f"{name}.md").write_text(table(rows, command, minutes))
    payload = {"command": command, "runtime_minutes": round(minutes, 1), "rows": rows}
    write_json(name, payload)


def table(rows: list[dict], command: str, minutes: float) -> str:
    """The markdown table of ``rows``, with what the columns mean and the command."""
    header = ["cells", "matrix", "non-zeros", "matrix GiB", "peak GiB (setup → results)",
              "peak − matrix", "data s", "setup s", "model s", "1 epoch s",
              "of which placement s", "write_results s",
              "cells/s (epoch without placement)"]  # fmt: skip
    lines = ["# CGMVAE from 10⁴ to 5·10⁶ cells, in memory and from disk: time and peak "
             "resident memory", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    for row in rows:
        storage = row.get("storage", "memory")
        if "store_disk_gib" in row:
            storage += f", {row['store_disk_gib']:.1f} GiB file"
        if row.get("block_size", 1) > 1:
            storage += f", minibatches of runs of {row['block_size']} rows"
        cells = [f"{row['n_obs']:,}", storage, f"{row['nnz']:.2e}", f"{row['data_gib']:.2f}",
                 f"{row['peak_after_data_gib']:.2f}",
                 "–" if "store_disk_gib" in row
                 else f"{row['peak_after_data_gib'] - row['data_gib']:.2f}",
                 f"{row['simulate_seconds']:.0f}",
                 f"{row['setup_seconds']:.1f}", f"{row['model_seconds']:.1f}",
                 f"{row['train_one_epoch_seconds']:.1f}", f"{row['placement_seconds']:.1f}",
                 f"{row['write_results_seconds']:.1f}",
                 f"{row['n_obs'] / row['epoch_without_placement_seconds']:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The epoch includes the one-off mixture placement: the latent of the "
              "first 20 000 training cells of the shuffled loader, then k-means, UMAP and "
              "Gaussian mixtures on them (umap-learn's numba code loaded from numba's cache; "
              "a process that compiles it takes about 20 s more). \"data s\" is "
              "simulating the counts in memory, or simulating and writing the on-disk store "
              "chunk by chunk. From disk the matrix is never loaded, so \"peak − matrix\" "
              "does not apply.", "",
              f"Command: `{command}`; {minutes:.0f} min on a 2-core CPU."]  # fmt: skip
    return "\n".join(lines) + "\n"


def run_child(
    n_obs: int, store: Path | None, contiguous: bool = False, block_size: int | None = None
) -> dict:
    """One size in a fresh process (``store``: from disk); its row."""
    command = [sys.executable, __file__, "--child", str(n_obs)]
    if block_size is not None:
        command += ["--block-size", str(block_size)]
    if store is not None:
        command += ["--store", str(store)] + (["--contiguous-store"] if contiguous else [])
    try:
        output = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout
    finally:
        if store is not None:
            store.unlink(missing_ok=True)
            store.with_name(f"{store.stem}_chunked.h5ad").unlink(missing_ok=True)
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backed-sizes", type=int, nargs="*", default=[])
    parser.add_argument("--store-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--contiguous-store", action="store_true",
                        help="rewrite the store's X unchunked; results go to "
                        "scale_contiguous.{json,md}")  # fmt: skip
    parser.add_argument("--block-size", type=int, default=None,
                        help="train(block_size=...); default: the package's (32 from disk, "
                        "1 in memory)")  # fmt: skip
    parser.add_argument(
        "--name", default=None, help="results file stem (default: scale, or scale_contiguous)"
    )
    parser.add_argument("--report", action="store_true",
                        help="rebuild the table and plot from the JSON; no training")  # fmt: skip
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row = run_stages(args.child, args.store, args.contiguous_store, args.block_size)
        print(json.dumps(row))
        return
    if args.report:
        recorded = json.loads((RESULTS / "scale.json").read_text())
        text = table(recorded["rows"], recorded["command"], recorded["runtime_minutes"])
        (RESULTS / "scale.md").write_text(text)
        plot(recorded["rows"])
        return
    start = time.perf_counter()
    rows = [run_child(n_obs, None, block_size=args.block_size) for n_obs in args.sizes]
    rows += [
        run_child(n_obs, args.store_dir / f"cgmvae_scale_{n_obs}.h5ad", args.contiguous_store,
                  args.block_size)
        for n_obs in args.backed_sizes
    ]  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    command = "python benchmarks/scale.py --sizes " + " ".join(map(str, args.sizes))
    if args.backed_sizes:
        command += " --backed-sizes " + " ".join(map(str, args.backed_sizes))
    name = "scale"
    if args.contiguous_store:
        command, name = command + " --contiguous-store", "scale_contiguous"
    if args.block_size is not None:
        command += f" --block-size {args.block_size}"
    if args.name is not None:
        command, name = command + f" --name {args.name}", args.name
    write(rows, command, (time.perf_counter() - start) / 60, name)
    if name == "scale":
        plot(rows)
    print((RESULTS / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
