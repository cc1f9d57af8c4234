"""Fixtures of the data tests: shared datasets, generated data and count assertions."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from cgmvae import data

#: Cell-type column of pbmc68k_reduced, the groups of the semi-synthetic data.
CELL_TYPE_KEY = "bulk_labels"


@pytest.fixture(scope="session")
def cell_type_key() -> str:
    """Cell-type column of :func:`cgmvae.data.pbmc68k_reduced`."""
    return CELL_TYPE_KEY


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_mirror(tmp_path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on localhost: ``(folder, base URL ending in /)``.

    Downloads are tested against it, so no test needs the network.
    """
    folder = tmp_path / "mirror"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def pbmc() -> ad.AnnData:
    """PBMC 68k reduced counts; tests must not modify it (copy first)."""
    return data.pbmc68k_reduced()


@pytest.fixture(scope="session")
def sim() -> ad.AnnData:
    """Simulated counts: 4 clusters × 2 conditions, 4,000 cells, 200 genes."""
    return data.simulate(counts_layer="counts", n_obs=4000, n_vars=200, seed=3)


@pytest.fixture(scope="session")
def semi(pbmc: ad.AnnData) -> ad.AnnData:
    """PBMC 68k reduced with a condition effect of log fold change ±1.5 in every type."""
    return data.add_condition_effect(pbmc, CELL_TYPE_KEY, log_fold_change=1.5, seed=1)


@pytest.fixture(scope="session")
def assert_integer_csr() -> Callable[[sp.spmatrix], None]:
    """Return a check that a matrix is CSR float32 with non-negative integer values."""

    def check(x: sp.spmatrix) -> None:
        assert sp.issparse(x) and x.format == "csr"
        assert x.dtype == np.float32
        assert np.all(x.data == np.rint(x.data))
        assert np.all(x.data >= 0)

    return check


@pytest.fixture(scope="session")
def assert_counts_layer() -> Callable[[ad.AnnData], None]:
    """Return a check that ``.layers["counts"]`` is an equal copy of ``.X``."""

    def check(adata: ad.AnnData) -> None:
        counts = adata.layers["counts"]
        assert counts is not adata.X
        assert counts.dtype == adata.X.dtype
        assert (counts != adata.X).nnz == 0

    return check


@pytest.fixture(scope="session")
def csr_digest() -> Callable[[sp.spmatrix], str]:
    """Return a function giving a short SHA-256 digest of a matrix's values and positions."""

    def digest(x: sp.spmatrix) -> str:
        x = sp.csr_matrix(x)
        sha = hashlib.sha256()
        for array in (x.data.astype("<f8"), x.indices.astype("<i8"), x.indptr.astype("<i8")):
            sha.update(array.tobytes())
        return sha.hexdigest()[:16]

    return digest
