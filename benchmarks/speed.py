"""Training throughput of CGMVAE vs scVI, side by side on the same data and settings.

Data: ``simulate(20_000 cells, 2_000 genes, 8 clusters, 2 conditions)`` (counts stored once,
in ``.X``). Both models: one hidden layer of 128, latent 10, NB likelihood, condition as
batch, CPU. Each model trains in its own subprocess (its peak resident memory is its own):
first one epoch, timed as ``first_epoch_seconds`` (for CGMVAE it includes the one-off
mixture placement on the latent), then ``--epochs`` more epochs of the same model, timed for
the steady-state throughput (without the count models' second placement,
``cluster_refine``). Each batch size runs for both models. Reports cells per second and the
CGMVAE / scVI ratio per batch size to ``benchmarks/results/speed.json``. About 4 minutes on
a 2-core CPU.

Usage: ``python benchmarks/speed.py [--n-obs 20000] [--n-vars 2000] [--epochs 4]
[--batch-sizes 128 512]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from harness import build_throughput_model, write_json

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def measure(name: str, n_obs: int, n_vars: int, epochs: int, batch_size: int) -> dict:
    import scvi

    from cgmvae.data import simulate

    scvi.settings.seed = 0
    adata = simulate(n_obs=n_obs, n_vars=n_vars, n_clusters=8, n_conditions=2, seed=0)
    model = build_throughput_model(name, adata)
    start = time.perf_counter()
    model.train(max_epochs=1, batch_size=batch_size, train_size=1.0, **QUIET)
    first = time.perf_counter() - start
    steady = {} if name == "scVI" else {"cluster_refine": None}  # no second placement
    start = time.perf_counter()
    model.train(max_epochs=epochs, batch_size=batch_size, train_size=1.0, **steady, **QUIET)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": name, "batch_size": batch_size, "first_epoch_seconds": first,
            "seconds": seconds, "cells_per_second": n_obs * epochs / seconds,
            "peak_rss_mib": peak_mib}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-obs", type=int, default=20_000)
    parser.add_argument("--n-vars", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row = measure(args.child, args.n_obs, args.n_vars, args.epochs, args.batch_sizes[0])
        print(json.dumps(row))
        return
    rows, ratios = [], {}
    for batch_size in args.batch_sizes:
        for name in ("scVI", "CGMVAE"):
            command = [sys.executable, __file__, "--child", name, "--n-obs", str(args.n_obs),
                       "--n-vars", str(args.n_vars), "--epochs", str(args.epochs),
                       "--batch-sizes", str(batch_size)]  # fmt: skip
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
        ratios[str(batch_size)] = rows[-1]["cells_per_second"] / rows[-2]["cells_per_second"]
    payload = {"arguments": vars(args) | {"child": None}, "runs": rows,
               "cgmvae_over_scvi_throughput": ratios}  # fmt: skip
    print(json.dumps(payload, indent=2))
    write_json("speed", payload)


if __name__ == "__main__":
    main()
