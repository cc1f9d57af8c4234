"""Training throughput of CGMVAE vs scVI, side by side on the same data and settings.

Data: ``simulate(20_000 cells, 2_000 genes, 8 clusters, 2 conditions)``. Both models: one
hidden layer of 128, latent 10, NB likelihood, batch size 128, condition as batch, 4 epochs
(after one warm-up epoch that is not timed), CPU. Each model trains in its own subprocess so
that its peak resident memory is its own. Reports cells per second and the CGMVAE / scVI
ratio to ``benchmarks/results/speed.json``. About 3 minutes on a 2-core CPU.

Usage: ``python benchmarks/speed.py [--n-obs 20000] [--n-vars 2000] [--epochs 4]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def build(name: str, adata):
    import scvi

    from cgmvae import CGMVAE

    if name == "scVI":
        scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key="condition")
        return scvi.model.SCVI(adata, n_hidden=128, n_latent=10, gene_likelihood="nb")
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    return CGMVAE(adata, n_clusters=8, n_hidden=128, n_latent=10, likelihood="nb")


def measure(name: str, n_obs: int, n_vars: int, epochs: int) -> dict:
    from cgmvae.data import simulate

    adata = simulate(n_obs=n_obs, n_vars=n_vars, n_clusters=8, n_conditions=2, seed=0)
    build(name, adata.copy()).train(max_epochs=1, batch_size=128, train_size=1.0, **QUIET)
    model = build(name, adata)
    start = time.perf_counter()
    model.train(max_epochs=epochs, batch_size=128, train_size=1.0, **QUIET)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": name, "seconds": seconds, "cells_per_second": n_obs * epochs / seconds,
            "peak_rss_mib": peak_mib}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-obs", type=int, default=20_000)
    parser.add_argument("--n-vars", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n_obs, args.n_vars, args.epochs)))
        return
    rows = []
    for name in ("scVI", "CGMVAE"):
        command = [sys.executable, __file__, "--child", name, "--n-obs", str(args.n_obs),
                   "--n-vars", str(args.n_vars), "--epochs", str(args.epochs)]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    ratio = rows[1]["cells_per_second"] / rows[0]["cells_per_second"]
    payload = {"arguments": vars(args) | {"child": None}, "runs": rows,
               "cgmvae_over_scvi_throughput": ratio}  # fmt: skip
    print(json.dumps(payload, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
