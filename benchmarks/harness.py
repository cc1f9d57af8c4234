"""What every benchmark shares: where results go and how a summary becomes a markdown table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"

#: Libraries whose versions change the numbers a benchmark measures.
LIBRARIES = (
    "torch", "lightning", "scvi-tools", "numpy", "scipy", "scikit-learn", "umap-learn",
    "numba", "pynndescent", "scanpy", "anndata", "igraph", "leidenalg",
)  # fmt: skip

#: Instruction-set flags that decide which kernels PyTorch, BLAS and numba run.
CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni")


def cpu_flags() -> list[str]:
    """The :data:`CPU_FLAGS` this machine's processor reports (Linux ``/proc/cpuinfo``)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    present = set(line.split(":", 1)[-1].split())
    return [flag for flag in CPU_FLAGS if flag in present]


def environment() -> dict:
    """What a result depends on besides the code: CPU, kernel setting, threads, versions."""
    import torch

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "git_dirty": None if dirty is None else bool(dirty),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    line = next((row for row in text.splitlines() if row.startswith("model name")), "")
    return line.split(":", 1)[-1].strip() or platform.machine()


def write_results(
    name: str, table: pd.DataFrame, title: str, rows: list[list[str]], header: list[str],
    command: str, minutes: float, summary: dict | None = None,
) -> None:  # fmt: skip
    """Write ``<name>.csv`` (all runs), ``<name>.md`` (the table) and, given ``summary``,
    ``<name>.json`` into ``benchmarks/results/``, replacing earlier files of that name.
    """
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / f"{name}.csv", index=False)
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"Command: `{command}`; {minutes:.0f} min on a 2-core CPU."]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    if summary is not None:
        payload = {"command": command, "runtime_minutes": round(minutes, 1), "summary": summary}
        write_json(name, payload)


def write_json(name: str, payload: dict) -> None:
    """Write ``payload`` with the :func:`environment` to ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    payload = {**payload, "environment": environment()}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))


def build_throughput_model(name: str, adata):
    """scVI or CGMVAE with the sizes the speed benchmarks compare (NB, 128 hidden, latent 10).

    ``adata`` is simulated counts in ``.X``; its condition is scVI's batch.
    """
    import scvi

    from cgmvae import CGMVAE

    if name == "scVI":
        scvi.model.SCVI.setup_anndata(adata, batch_key="condition")
        return scvi.model.SCVI(adata, n_hidden=128, n_latent=10, gene_likelihood="nb")
    CGMVAE.setup_anndata(adata, condition_key="condition")
    return CGMVAE(adata, n_clusters=8, n_hidden=128, n_latent=10, likelihood="nb")
