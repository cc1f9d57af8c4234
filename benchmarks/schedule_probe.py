"""When should the learning rate shrink? A screen of ``train(lr_scale=..., lr_scale_at=...)``.

A probe for issue 25, beside ``stability.py``: it runs that harness's cases (each run a fresh
process under ``ATEN_CPU_CAPABILITY`` and 1 or 2 torch threads) with the mixture models'
learning-rate schedule set by the variant:

- ``settle``: every learning rate ×``--scale`` after ``--at`` of the epochs
  (``lr_scale=--scale, lr_scale_at=--at``; the package's default is 0.1 at 0.4, shortly before
  the placement at ``cluster_init=0.5``);
- ``at_placement``: ×``--scale`` when the mixture is placed (``lr_scale_at=None``), the
  package's default before ``lr_scale_at`` existed.

Runs recorded before ``lr_scale_at`` existed carry the variant ``default``, which then meant
``at_placement`` with scale 0.1 (their ``settle`` runs were made by a callback with the same
effect as ``lr_scale_at``). Runs are appended to
``benchmarks/results/schedule_probe_runs.jsonl``; ``--report`` prints the table per variant.

Usage: ``python benchmarks/schedule_probe.py --cases pbmc68k --seeds 1 --at 0.3``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import pandas as pd
from stability import CASES, available_capabilities, run_case

from harness import RESULTS, environment

RUNS = RESULTS / "schedule_probe_runs.jsonl"


def use_variant(variant: str, at: float, scale: float) -> None:
    """Make every mixture model's ``train`` in this process follow ``variant``."""
    from cgmvae.models.cluster import ClusterMixin

    train = ClusterMixin.train
    schedule = {"lr_scale": scale, "lr_scale_at": at if variant == "settle" else None}

    def scheduled_train(self, *args, **kwargs):
        return train(self, *args, **{**kwargs, **schedule})

    ClusterMixin.train = scheduled_train


def child(case: str, seed: int, threads: int, variant: str, at: float, scale: float) -> None:
    import torch

    torch.set_num_threads(threads)
    use_variant(variant, at, scale)
    began = time.perf_counter()
    scores = run_case(case, seed)
    record = {"case": case, "seed": seed, "threads": threads, "variant": variant,
              "at": at, "scale": scale,
              "capability": os.environ.get("ATEN_CPU_CAPABILITY", "native"),
              "seconds": round(time.perf_counter() - began, 1),
              **{name: round(float(value), 4) for name, value in scores.items()},
              "environment": environment()}  # fmt: skip
    print("RESULT " + json.dumps(record), flush=True)


def spawn(case, seed, capability, threads, variant, at, scale) -> dict:
    env = os.environ | {"ATEN_CPU_CAPABILITY": capability}
    command = [sys.executable, __file__, "--child", case, str(seed), str(threads), variant,
               str(at), str(scale)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{case} seed {seed} {capability} x{threads} failed:\n{done.stderr}")
    return json.loads(lines[-1][len("RESULT ") :])


def report() -> None:
    runs = pd.DataFrame([json.loads(line) for line in RUNS.read_text().splitlines()])
    for (case, variant, at, scale), group in runs.groupby(["case", "variant", "at", "scale"]):
        score = CASES[case][0]
        group = group.assign(setting=group["capability"] + "/" + group["threads"].astype(str))
        table = group.pivot_table(index="seed", columns="setting", values=score)
        table["spread"] = table.max(axis=1) - table.min(axis=1)
        values = group[score]
        print(
            f"\n{case}, {variant} (at {at}, scale {scale}): {len(values)} runs, mean "
            f"{values.mean():.3f} ± {values.std(ddof=0):.3f}, min {values.min():.3f}"
        )
        print(table.round(3).to_markdown())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=["pbmc68k"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--capabilities", nargs="+", default=None)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    variants = ["settle", "at_placement"]
    parser.add_argument("--variants", nargs="+", choices=variants, default=["settle"])
    parser.add_argument("--at", type=float, default=0.4, help="fraction of the epochs")
    parser.add_argument("--scale", type=float, default=0.1, help="learning-rate factor")
    parser.add_argument("--report", action="store_true", help="print the recorded runs")
    parser.add_argument("--child", nargs=6)
    args = parser.parse_args()
    if args.child:
        case, seed, threads, variant, at, scale = args.child
        child(case, int(seed), int(threads), variant, float(at), float(scale))
        return
    if not args.report:
        for case in args.cases:
            for seed in args.seeds:
                for capability in args.capabilities or available_capabilities():
                    for threads in args.threads:
                        for variant in args.variants:
                            record = spawn(case, seed, capability, threads, variant, args.at,
                                           args.scale)  # fmt: skip
                            with RUNS.open("a") as stream:
                                stream.write(json.dumps(record) + "\n")
                            score = record[CASES[case][0]]
                            print(
                                f"{case} seed {seed} {capability} x{threads} {variant}: "
                                f"{score:.3f} ({record['seconds']:.0f} s)",
                                flush=True,
                            )
    report()


if __name__ == "__main__":
    main()
