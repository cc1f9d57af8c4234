"""Where a training step's time goes, for CGMVAE and scVI on the same data.

Data: ``simulate(20_000 cells, 2_000 genes, 8 clusters, 2 conditions)``, NB likelihood,
the sizes of ``benchmarks/speed.py`` (one hidden layer of 128, latent 10). For each model
and batch size, one pass over the cells is timed phase by phase outside Lightning
(loading and densifying the minibatch, forward pass with loss, backward pass, optimizer
step), then one Lightning epoch on the same model (the difference is Lightning's and the
training plan's own overhead: logging, metric aggregation, callbacks). The mixture is
placed before timing, so CGMVAE is profiled in its mixture phase. Writes
``benchmarks/results/profile_step.md`` and ``.json``. About 4 minutes on a 2-core CPU.

Usage: ``python benchmarks/profile_step.py [--n-obs 20000] [--batch-sizes 128 512]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from harness import build_throughput_model, write_json

RESULTS = Path(__file__).parent / "results"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
PHASES = ("load", "forward", "backward", "optimizer")


def time_phases(model, batch_size: int) -> dict[str, float]:
    """Seconds per phase over one pass of the training cells, outside Lightning."""
    module = model.module
    module.train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loader = model._make_data_loader(model.adata, batch_size=batch_size, shuffle=True)
    seconds = dict.fromkeys(PHASES, 0.0)
    batches = iter(loader)
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            break
        loaded = time.perf_counter()
        _, _, losses = module(batch, loss_kwargs={"kl_weight": 1.0})
        forwarded = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        losses.loss.backward()
        backwarded = time.perf_counter()
        optimizer.step()
        stepped = time.perf_counter()
        for phase, (begin, end) in zip(
            PHASES,
            ((start, loaded), (loaded, forwarded), (forwarded, backwarded), (backwarded, stepped)),
            strict=True,
        ):
            seconds[phase] += end - begin
    return seconds


def profile(name: str, adata, batch_size: int) -> dict:
    model = build_throughput_model(name, adata.copy())
    # one epoch places the mixture (CGMVAE) and warms up both models
    model.train(max_epochs=1, batch_size=batch_size, train_size=1.0, **QUIET)
    phases = time_phases(model, batch_size)
    start = time.perf_counter()
    model.train(max_epochs=1, batch_size=batch_size, train_size=1.0, **QUIET)
    lightning = time.perf_counter() - start
    manual = sum(phases.values())
    row = {"model": name, "batch_size": batch_size, **phases, "manual_total": manual}
    row |= {"lightning_epoch": lightning, "overhead": lightning - manual}
    row["cells_per_second"] = adata.n_obs / lightning
    print({key: round(value, 2) if isinstance(value, float) else value
           for key, value in row.items()}, flush=True)  # fmt: skip
    return row


def write(rows: list[dict], args: argparse.Namespace, minutes: float) -> None:
    header = ["model", "batch", *PHASES, "outside Lightning", "Lightning epoch",
              "overhead", "cells/s"]  # fmt: skip
    lines = ["# Where a training step's time goes (seconds per epoch)", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    for row in rows:
        values = [row[phase] for phase in PHASES]
        values += [row["manual_total"], row["lightning_epoch"], row["overhead"]]
        cells = [row["model"], str(row["batch_size"]), *(f"{v:.2f}" for v in values)]
        lines.append("| " + " | ".join([*cells, f"{row['cells_per_second']:.0f}"]) + " |")
    command = "python benchmarks/profile_step.py " + " ".join(
        ["--n-obs", str(args.n_obs), "--batch-sizes", *map(str, args.batch_sizes)]
    )
    lines += ["", f"{args.n_obs} cells x 2000 genes; command: `{command}`; "
              f"{minutes:.0f} min on a 2-core CPU."]  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_step.md").write_text("\n".join(lines) + "\n")
    payload = {"command": command, "runtime_minutes": round(minutes, 1), "rows": rows}
    write_json("profile_step", payload)


def main() -> None:
    import scvi

    from cgmvae.data import simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-obs", type=int, default=20_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    args = parser.parse_args()
    scvi.settings.seed = 0
    start = time.perf_counter()
    adata = simulate(n_obs=args.n_obs, n_vars=2000, n_clusters=8, n_conditions=2, seed=0)
    rows = [
        profile(name, adata, batch_size)
        for batch_size in args.batch_sizes
        for name in ("scVI", "CGMVAE")
    ]
    write(rows, args, (time.perf_counter() - start) / 60)


if __name__ == "__main__":
    main()
