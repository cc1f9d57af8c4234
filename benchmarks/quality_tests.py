"""Do the quality tests pass on any machine? Each seed under each CPU kernel and thread count.

Runs ``pytest -m "quality and not slow"`` (the tests that assert a quality number of a
trained model) once per setting, with ``CGMVAE_TEST_SEED`` (the seed of the tests' models),
``ATEN_CPU_CAPABILITY`` (PyTorch's kernels) and ``OMP_NUM_THREADS`` (torch threads) set, and
records each test's outcome per setting. A test that fails under any setting is a knife edge.
Results to ``benchmarks/results/quality_tests.{json,md}``: overwritten, or with ``--keep`` merged
into the settings recorded before (a setting run again replaces its old outcomes), so a grid can
be run in parts (``--select`` runs only the tests ``pytest -k`` picks, merged test by test).

Usage: ``python benchmarks/quality_tests.py [--seeds 0 1 2] [--capabilities default avx2
avx512] [--threads 1 2] [--keep] [--select EXPR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from stability import available_capabilities

from harness import RESULTS, write_json

ROOT = Path(__file__).parents[1]


def run_setting(seed: int, capability: str, threads: int, select: str | None) -> dict[str, str]:
    """Outcome (passed / failed / skipped) of every quality test under one setting."""
    env = os.environ | {
        "CGMVAE_TEST_SEED": str(seed),
        "ATEN_CPU_CAPABILITY": capability,
        "OMP_NUM_THREADS": str(threads),
    }
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-m", "quality and not slow", f"--junitxml={report}"]  # fmt: skip
        if select:
            command += ["-k", select]
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        outcomes = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname').split('.')[-1]}::{case.get('name')}"
            failed = case.find("failure") is not None or case.find("error") is not None
            skipped = case.find("skipped") is not None
            outcomes[name] = "failed" if failed else "skipped" if skipped else "passed"
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--capabilities", nargs="+", default=None)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--keep", action="store_true", help="merge into the recorded settings")
    parser.add_argument("--select", default=None, help="only the tests pytest -k selects")
    args = parser.parse_args()
    start = time.perf_counter()
    earlier = json.loads((RESULTS / "quality_tests.json").read_text()) if args.keep else {}
    settings = earlier.get("outcomes", {})
    for seed in args.seeds:
        for capability in args.capabilities or available_capabilities():
            for threads in args.threads:
                label = f"seed {seed}, {capability}, {threads} thread(s)"
                outcomes = run_setting(seed, capability, threads, args.select)
                settings[label] = {**settings.get(label, {}), **outcomes}
                failed = [name for name, out in settings[label].items() if out != "passed"]
                print(f"{label}: {len(settings[label]) - len(failed)} passed, failed {failed}")
    minutes = earlier.get("runtime_minutes", 0) + (time.perf_counter() - start) / 60
    command = "python benchmarks/quality_tests.py " + " ".join(sys.argv[1:])
    commands = earlier.get("commands", [earlier["command"]] if "command" in earlier else [])
    commands.append(command)
    write_json("quality_tests", {"commands": commands, "runtime_minutes": round(minutes, 1),
                                 "outcomes": settings})  # fmt: skip
    tests = sorted({name for outcomes in settings.values() for name in outcomes})
    run_by = "; ".join(f"`{line}`" for line in commands)
    lines = ["# Quality tests under every seed, CPU kernel and thread setting", "",
             f"Commands: {run_by}; {minutes:.0f} min on a 2-core CPU in all.", "",
             "| test | passed / settings run |", "|---|---|"]  # fmt: skip
    for name in tests:
        ran = [label for label, out in settings.items() if name in out]
        failed = [label for label in ran if settings[label][name] != "passed"]
        note = f"{len(ran) - len(failed)} / {len(ran)}"
        if failed:
            note += f" (failed: {'; '.join(failed)})"
        if len(ran) < len(settings):
            note += f"; not run in {len(settings) - len(ran)} of the {len(settings)} settings"
        lines.append(f"| `{name}` | {note} |")
    (RESULTS / "quality_tests.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
