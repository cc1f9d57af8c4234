"""What every benchmark shares: where results go and how a summary becomes a markdown table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"


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
