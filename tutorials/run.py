"""Execute tutorial notebooks in place, at their full settings, and report each runtime.

Usage: ``python tutorials/run.py [NOTEBOOK ...]`` (default: every ``tutorials/*.ipynb``).
Set ``CGMVAE_TUTORIAL_FAST=1`` for the quick settings the test suite uses (then the
notebooks are not overwritten).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).parent


def execute(path: Path, write: bool = True, timeout: int = 3600) -> float:
    """Run every cell of the notebook at ``path`` (in its folder); returns the seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": path.parent}},
    )
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(notebook, path)
    return seconds


def main() -> None:
    paths = [Path(name) for name in sys.argv[1:]] or sorted(HERE.glob("*.ipynb"))
    fast = os.environ.get("CGMVAE_TUTORIAL_FAST") == "1"
    failed = []
    for path in paths:
        try:
            seconds = execute(path, write=not fast)
        except CellExecutionError as error:
            failed.append(path.name)
            print(f"{path.name}: FAILED\n{error}", flush=True)
            continue
        print(f"{path.name}: {seconds / 60:.1f} min", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
