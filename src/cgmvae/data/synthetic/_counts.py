"""Negative binomial counts drawn chunk by chunk and stacked into one CSR matrix.

Used by :func:`~cgmvae.data.simulate`: each chunk of cells is drawn from its own random
stream, so the counts do not depend on the number of threads, and chunks are merged into
large blocks before the final stacking, so memory peaks near the size of the output.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

#: Non-zeros per intermediate block of counts (64 MiB of values + 64 MiB of indices).
_BLOCK_NNZ = 1 << 24


def draw_counts(
    seed: np.random.SeedSequence,
    true_means: np.ndarray,
    dispersion: np.ndarray,
    *,
    group: np.ndarray,
    condition: np.ndarray,
    library_size: np.ndarray,
    chunk_size: int,
    n_jobs: int,
) -> sp.csr_matrix:
    """Draw gamma-Poisson (negative binomial) counts for every cell.

    Parameters
    ----------
    seed
        Seed of the counts; each chunk of ``chunk_size`` cells gets its own child stream.
    true_means
        (n_groups, n_conditions, n_vars) expected expression fractions.
    dispersion
        (n_vars,) dispersions φ (variance μ + φμ²); 0 gives Poisson counts.
    group, condition
        (n_obs,) codes of each cell's group and condition.
    library_size
        (n_obs,) expected total count of each cell.
    chunk_size
        Cells drawn at a time.
    n_jobs
        Threads drawing chunks (NumPy's samplers release the GIL); the result does not
        depend on it.

    Returns
    -------
    scipy.sparse.csr_matrix
        (n_obs, n_vars) float32 counts.
    """
    starts = range(0, len(library_size), chunk_size)
    seeds = seed.spawn(len(starts))

    def chunk(i: int) -> sp.csr_matrix:
        rows = slice(starts[i], starts[i] + chunk_size)
        mean = true_means[group[rows], condition[rows]]
        mean *= library_size[rows, None]
        return _sample_nb(np.random.default_rng(seeds[i]), mean, dispersion)

    n_vars = true_means.shape[-1]
    if n_jobs == 1:
        return _stack_in_blocks(map(chunk, range(len(starts))), n_vars)
    with ThreadPoolExecutor(n_jobs) as pool:
        return _stack_in_blocks(pool.map(chunk, range(len(starts))), n_vars)


def _stack_in_blocks(pieces: Iterable[sp.csr_matrix], n_vars: int) -> sp.csr_matrix:
    """Stack CSR chunks, merging them into blocks of about ``_BLOCK_NNZ`` entries first.

    Blocks are large enough for the C allocator to return their memory to the system when
    they are freed, so the final stacking peaks near the size of the output, not twice it.
    """
    blocks: list[sp.csr_matrix] = []
    pending: list[sp.csr_matrix] = []
    pending_nnz = 0
    for piece in pieces:
        pending.append(piece)
        pending_nnz += piece.nnz
        if pending_nnz >= _BLOCK_NNZ:
            blocks.append(_vstack_csr(pending, n_vars))
            pending_nnz = 0
    if pending or not blocks:
        blocks.append(_vstack_csr(pending, n_vars))
    return blocks[0] if len(blocks) == 1 else _vstack_csr(blocks, n_vars)


def _sample_nb(
    rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray
) -> sp.csr_matrix:
    """Draw gamma-Poisson counts with the given means (overwritten) and dispersions."""
    _apply_gamma_noise(rng, mean, dispersion)
    counts = sp.csr_matrix(rng.poisson(mean))
    return sp.csr_matrix(
        (counts.data.astype(np.float32), counts.indices.astype(np.int32), counts.indptr),
        shape=counts.shape,
    )


def _apply_gamma_noise(rng: np.random.Generator, mean: np.ndarray, phi: np.ndarray) -> None:
    """Multiply ``mean`` in place by Gamma(1/φ, φ) noise (mean 1), column-wise φ; φ=0: none."""
    if np.all(phi > 0):
        noise = rng.standard_gamma(np.broadcast_to(1.0 / phi, mean.shape))
        noise *= phi
        mean *= noise
    elif np.any(phi > 0):
        columns = np.flatnonzero(phi > 0)
        sub = mean[:, columns]
        _apply_gamma_noise(rng, sub, phi[columns])
        mean[:, columns] = sub


def _vstack_csr(pieces: list[sp.csr_matrix], n_vars: int) -> sp.csr_matrix:
    """Stack CSR row blocks, emptying ``pieces`` as it goes so memory peaks near the output."""
    nnz = sum(piece.nnz for piece in pieces)
    n_obs = sum(piece.shape[0] for piece in pieces)
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=index_dtype)
    indptr = np.zeros(n_obs + 1, dtype=index_dtype)
    row = offset = 0
    pieces.reverse()
    while pieces:
        piece = pieces.pop()
        n_rows, end = piece.shape[0], offset + piece.nnz
        data[offset:end] = piece.data
        indices[offset:end] = piece.indices
        indptr[row + 1 : row + n_rows + 1] = piece.indptr[1:].astype(index_dtype) + offset
        row, offset = row + n_rows, end
    return sp.csr_matrix((data, indices, indptr), shape=(n_obs, n_vars), copy=False)
