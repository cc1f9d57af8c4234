"""How fast a minibatch of random cells reads from an .h5ad store, by the HDF5 layout of ``X``.

anndata writes a sparse ``X`` as chunked HDF5 datasets (about 36 000 values a chunk here), and
HDF5 reads whole chunks: a cell's row of ~600 stored values costs two chunk reads (``data`` and
``indices``) of 141 KiB each. This benchmark writes ``simulate(250 000 cells, 2 000 genes)``
once as anndata writes it and once with ``data`` and ``indices`` contiguous, then times what
training from disk does per step: ``adata.X[rows]`` of an AnnData opened ``backed="r"``, for
minibatches of 512 sorted random rows (the same rows for every layout), as scvi-tools' loader
reads them, and :class:`cgmvae.data.StoredRows` for minibatches of 16 random runs of 32
neighbouring rows, as cgmvae's loader reads a backed AnnData; beside the same rows of the
matrix in memory. The files sit in the page cache, so the numbers are the cost of reading
and copying, not of the disk; on a store larger than the memory, each chunk read is also a
disk read. Writes ``benchmarks/results/store_layout.{json,md}``; about 2 minutes, 2.5 GB of
disk in ``--store-dir`` (deleted afterwards).

Usage: ``python benchmarks/store_layout.py [--store-dir /tmp]``
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from harness import write_json

RESULTS = Path(__file__).parent / "results"
N_OBS, BATCH_SIZE, N_BATCHES, BLOCK_SIZE = 250_000, 512, 40, 32


def write_stores(store_dir: Path) -> dict[str, Path]:
    """The simulated cells as anndata writes them, and a copy with contiguous data."""
    import h5py

    from cgmvae.data import simulate

    adata = simulate(N_OBS, 2000, n_clusters=8, n_conditions=2, seed=0,
                     library_size_mean=1000, n_jobs=2)  # fmt: skip
    adata.uns = {}
    stores = {"chunked (as anndata writes it)": store_dir / "layout_chunked.h5ad",
              "contiguous data and indices": store_dir / "layout_contiguous.h5ad"}  # fmt: skip
    chunked, contiguous = stores.values()
    adata.write_h5ad(chunked)
    shutil.copy(chunked, contiguous)
    with h5py.File(contiguous, "r+") as file:
        for key in ("data", "indices"):
            values = file["X"][key][:]
            del file["X"][key]
            file["X"].create_dataset(key, data=values)
    return stores


def milliseconds_per_batch(matrix, batches: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for rows in batches:
        matrix[rows]
    return (time.perf_counter() - start) / len(batches) * 1000


def run_batches(rng: np.random.Generator) -> list[np.ndarray]:
    """Minibatches as the block loader draws them: runs of :data:`BLOCK_SIZE` rows."""
    n_runs = BATCH_SIZE // BLOCK_SIZE
    starts = [rng.choice(N_OBS // BLOCK_SIZE, n_runs, replace=False) * BLOCK_SIZE
              for _ in range(N_BATCHES)]  # fmt: skip
    return [np.sort((start[:, None] + np.arange(BLOCK_SIZE)).ravel()) for start in starts]


def main() -> None:
    import anndata
    import h5py

    from cgmvae.data import StoredRows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    stores = write_stores(args.store_dir)
    rng = np.random.default_rng(0)
    batches = [np.sort(rng.choice(N_OBS, BATCH_SIZE, replace=False)) for _ in range(N_BATCHES)]
    runs = run_batches(rng)
    rows = []
    try:
        in_memory = anndata.read_h5ad(next(iter(stores.values()))).X
        rows.append({"layout": "in memory (CSR)", "chunk_values": None,
                     "ms_per_batch": milliseconds_per_batch(in_memory, batches),
                     "ms_per_run_batch": milliseconds_per_batch(in_memory, runs)})  # fmt: skip
        del in_memory
        for layout, path in stores.items():
            with h5py.File(path, "r") as file:
                chunks = file["X"]["data"].chunks
            backed = anndata.read_h5ad(path, backed="r")
            stored = StoredRows(backed)
            rows.append({"layout": layout, "chunk_values": chunks and chunks[0],
                         "ms_per_batch": milliseconds_per_batch(backed.X, batches),
                         "ms_per_run_batch": milliseconds_per_batch(stored, runs)})  # fmt: skip
            backed.file.close()
    finally:
        for path in stores.values():
            path.unlink(missing_ok=True)
    title = f"# Reading {BATCH_SIZE} cells of {N_OBS:,} × 2,000 from an .h5ad, by layout"
    lines = [title, "", "| X stored | values per HDF5 chunk | random cells, anndata, ms | "
             f"runs of {BLOCK_SIZE} rows, StoredRows, ms |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {row['layout']} | {row['chunk_values'] or '–'} | {row['ms_per_batch']:.1f} | "
              f"{row['ms_per_run_batch']:.1f} |" for row in rows]  # fmt: skip
    lines += ["", f"Mean over {N_BATCHES} minibatches, files in the page cache. Random cells: "
              f"{BATCH_SIZE} sorted random rows read by `adata.X[rows]`, as scvi-tools' loader "
              f"reads them. Runs: {BATCH_SIZE // BLOCK_SIZE} random runs of {BLOCK_SIZE} "
              "neighbouring rows read by `cgmvae.data.StoredRows` (in memory: `X[rows]`), as "
              "cgmvae's loader reads a backed AnnData (`train(block_size=32)`). Command: "
              "`python benchmarks/store_layout.py`."]  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store_layout.md").write_text("\n".join(lines) + "\n")
    write_json("store_layout", {"command": "python benchmarks/store_layout.py", "rows": rows})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
