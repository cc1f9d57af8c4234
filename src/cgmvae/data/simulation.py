r"""Simulator of conditional categorical count data: clusters × conditions, NB counts.

Each cell belongs to one cluster (cell type) and one condition (e.g. control / stimulated).
Its expected expression fractions are

.. math::

    p_{kc} = \operatorname{softmax}\big(b + m_k + e_{kc}\big),

with gene baselines :math:`b`, cluster marker log fold changes :math:`m_k` and condition log
fold changes :math:`e_{kc}` (zero for condition 0, the reference). A cell of cluster
:math:`k`, condition :math:`c` and library size :math:`L` has counts
:math:`x_g \sim \mathrm{NB}(\text{mean}=L p_{kcg}, \text{dispersion}=\phi_g)`, drawn as a
gamma-Poisson mixture, so that :math:`\mathrm{Var}(x_g) = \mu + \phi_g \mu^2`.

The condition effect of each condition > 0 acts on ``n_condition_genes`` genes per cluster;
a fraction ``shared_effect_fraction`` of them is the same in every cluster and the rest is
specific to each cluster. By default it is about as strong as the cluster markers, so that
clustering log-normalised counts splits every cluster by condition, which a model that
conditions on the condition should not do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from numpy.typing import ArrayLike

#: Non-zeros per intermediate block of counts (64 MiB of values + 64 MiB of indices).
_BLOCK_NNZ = 1 << 24


@dataclass(frozen=True)
class _Genes:
    """Gene-level parameters of a simulation."""

    base_log_expression: np.ndarray  # (n_vars,)
    marker_log_fold_changes: np.ndarray  # (n_clusters, n_vars)
    condition_log_fold_changes: np.ndarray  # (n_clusters, n_conditions, n_vars)
    dispersion: np.ndarray  # (n_vars,)

    def true_means(self) -> np.ndarray:
        """Return expected expression fractions (n_clusters, n_conditions, n_vars)."""
        logits = (
            self.base_log_expression
            + self.marker_log_fold_changes[:, None, :]
            + self.condition_log_fold_changes
        )
        logits -= logits.max(axis=-1, keepdims=True)
        means = np.exp(logits)
        return means / means.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class _Cells:
    """Cell-level draws of a simulation."""

    cluster: np.ndarray  # (n_obs,) codes
    condition: np.ndarray  # (n_obs,) codes
    library_size: np.ndarray  # (n_obs,)


def simulate(
    n_obs: int = 2000,
    n_vars: int = 200,
    n_clusters: int = 4,
    n_conditions: int = 2,
    seed: int = 0,
    *,
    cluster_names: Sequence[str] | None = None,
    condition_names: Sequence[str] | None = None,
    cluster_proportions: ArrayLike | None = None,
    cluster_concentration: float | None = None,
    condition_proportions: ArrayLike | None = None,
    n_markers_per_cluster: int = 10,
    marker_log_fold_change: float = 2.0,
    n_condition_genes: int = 20,
    condition_log_fold_change: float = 2.0,
    shared_effect_fraction: float = 0.5,
    base_log_expression_sd: float = 1.0,
    library_size_mean: float = 2000.0,
    library_size_log_sd: float = 0.3,
    dispersion: float | ArrayLike = 0.2,
    chunk_size: int = 5000,
    n_jobs: int = 1,
    counts_layer: str | None = "counts",
) -> AnnData:
    """Simulate negative binomial counts with known clusters, conditions and effects.

    See the module docstring for the model. Deterministic for given arguments; counts are
    drawn chunk by chunk (``chunk_size`` cells, each chunk from its own random stream), so
    10⁶ cells × 2,000 genes need only the sparse output plus a few hundred MB. Gene
    parameters and cell labels do not depend on ``chunk_size`` or ``n_jobs``; the counts
    depend on ``chunk_size`` but not on ``n_jobs``.

    Parameters
    ----------
    n_obs
        Number of cells.
    n_vars
        Number of genes.
    n_clusters
        Number of clusters (cell types).
    n_conditions
        Number of conditions; condition 0 is the reference (no condition effect).
    seed
        Seed of all random draws.
    cluster_names
        Cluster names; default ``cluster_0``, ``cluster_1``, ….
    condition_names
        Condition names; default ``condition_0``, ``condition_1``, ….
    cluster_proportions
        Probability of each cluster (normalised to sum to 1); default equal.
    cluster_concentration
        If given (and ``cluster_proportions`` is not), cluster proportions are drawn from a
        symmetric Dirichlet with this concentration: small values give unequal clusters.
    condition_proportions
        Probability of each condition; default equal. Conditions are drawn independently of
        clusters.
    n_markers_per_cluster
        Marker genes per cluster; the marker sets of different clusters are disjoint.
    marker_log_fold_change
        Natural-log fold change of a cluster's markers in that cluster.
    n_condition_genes
        Genes that respond to each condition > 0, per cluster; drawn from non-marker genes.
    condition_log_fold_change
        Natural-log fold change of responding genes (negative for down-regulation).
    shared_effect_fraction
        Fraction of the responding genes that respond in every cluster; the others are
        drawn for each cluster separately.
    base_log_expression_sd
        Standard deviation of the genes' baseline log expression (normal, mean 0).
    library_size_mean
        Mean library size (expected total counts) of a cell.
    library_size_log_sd
        Standard deviation of log library size (log-normal).
    dispersion
        NB dispersion φ (variance μ + φμ²), a number or one per gene; 0 gives Poisson.
    chunk_size
        Cells generated at a time.
    n_jobs
        Threads drawing chunks in parallel (NumPy's samplers release the GIL).
    counts_layer
        Layer that also holds the counts (a copy, so normalising ``.X`` in place keeps it);
        ``None`` skips it, halving memory.

    Returns
    -------
    AnnData
        ``n_obs × n_vars``; ``.X`` holds the counts (CSR, float32 integers), as does
        ``.layers[counts_layer]``. ``.obs`` has ``cluster`` and ``condition``
        (categoricals of names) and ``true_library_size`` (the cell's expected total count).
        ``.uns["simulation"]`` holds the ground truth (all h5ad-serialisable):

        - ``true_means``: (n_clusters, n_conditions, n_vars) expected expression fractions
          (rows sum to 1); see :func:`true_mean`.
        - ``base_log_expression``: (n_vars,) gene baselines.
        - ``marker_log_fold_changes``: (n_clusters, n_vars), non-zero at markers.
        - ``condition_log_fold_changes``: (n_clusters, n_conditions, n_vars), zero for
          condition 0 and non-responding genes.
        - ``dispersion``: (n_vars,) NB dispersions.
        - ``cluster_names``, ``condition_names``, ``cluster_proportions``,
          ``condition_proportions``: arrays.
        - ``params``: the scalar arguments above.

    Raises
    ------
    ValueError
        If an argument is out of range or there are too few genes for the effects.
    """
    _check_sizes(n_obs, n_vars, n_clusters, n_conditions, chunk_size, n_jobs)
    _check_effects(n_vars, n_clusters, n_conditions, n_markers_per_cluster, n_condition_genes)
    _check_positive(library_size_mean=library_size_mean)
    if not 0.0 <= shared_effect_fraction <= 1.0:
        raise ValueError("shared_effect_fraction must lie in [0, 1]")
    if not library_size_log_sd >= 0 or not base_log_expression_sd >= 0:
        raise ValueError("library_size_log_sd and base_log_expression_sd must be >= 0")
    cluster_names = _names(cluster_names, n_clusters, "cluster")
    condition_names = _names(condition_names, n_conditions, "condition")
    gene_seed, cell_seed, count_seed = np.random.SeedSequence(seed).spawn(3)

    genes = _draw_genes(
        np.random.default_rng(gene_seed),
        n_vars,
        n_clusters,
        n_conditions,
        n_markers_per_cluster=n_markers_per_cluster,
        marker_log_fold_change=marker_log_fold_change,
        n_condition_genes=n_condition_genes,
        condition_log_fold_change=condition_log_fold_change,
        shared_effect_fraction=shared_effect_fraction,
        base_log_expression_sd=base_log_expression_sd,
        dispersion=dispersion,
    )
    cell_rng = np.random.default_rng(cell_seed)
    if cluster_proportions is None and cluster_concentration is not None:
        _check_positive(cluster_concentration=cluster_concentration)
        cluster_proportions = cell_rng.dirichlet(np.full(n_clusters, cluster_concentration))
    cluster_p = _proportions(cluster_proportions, n_clusters, "cluster_proportions")
    condition_p = _proportions(condition_proportions, n_conditions, "condition_proportions")
    cells = _draw_cells(
        cell_rng, n_obs, cluster_p, condition_p, library_size_mean, library_size_log_sd
    )
    true_means = genes.true_means()
    counts = _draw_counts(count_seed, true_means, genes.dispersion, cells, chunk_size, n_jobs)

    params = {
        "n_obs": n_obs,
        "n_vars": n_vars,
        "n_clusters": n_clusters,
        "n_conditions": n_conditions,
        "seed": seed,
        "n_markers_per_cluster": n_markers_per_cluster,
        "marker_log_fold_change": marker_log_fold_change,
        "n_condition_genes": n_condition_genes,
        "condition_log_fold_change": condition_log_fold_change,
        "shared_effect_fraction": shared_effect_fraction,
        "base_log_expression_sd": base_log_expression_sd,
        "library_size_mean": library_size_mean,
        "library_size_log_sd": library_size_log_sd,
        "chunk_size": chunk_size,
    }
    if cluster_concentration is not None:
        params["cluster_concentration"] = cluster_concentration
    truth = _ground_truth(
        genes, true_means, cluster_names, condition_names, cluster_p, condition_p, params
    )
    return _to_anndata(counts, cells, cluster_names, condition_names, truth, counts_layer)


def true_mean(adata: AnnData, cluster: int | str, condition: int | str) -> np.ndarray:
    """Return the true expected expression fractions of one (cluster, condition) group.

    Parameters
    ----------
    adata
        Output of :func:`simulate` (or a subset or copy of it that kept ``.uns``).
    cluster
        Cluster name or index.
    condition
        Condition name or index.

    Returns
    -------
    numpy.ndarray
        (n_vars,) fractions summing to 1; multiply by a library size for expected counts.
    """
    truth = adata.uns["simulation"]
    k = _index(truth["cluster_names"], cluster, "cluster")
    c = _index(truth["condition_names"], condition, "condition")
    return np.array(truth["true_means"][k, c], dtype=np.float64)


def true_log_fold_change(
    adata: AnnData, cluster: int | str, condition: int | str, reference: int | str = 0
) -> np.ndarray:
    """Return the true log fold change of a condition versus a reference, within a cluster.

    This is ``log(true_mean(cluster, condition) / true_mean(cluster, reference))``; it
    differs slightly from ``condition_log_fold_changes`` because fractions are
    renormalised.

    Parameters
    ----------
    adata
        Output of :func:`simulate`.
    cluster
        Cluster name or index.
    condition
        Condition name or index.
    reference
        Reference condition name or index (default the first).

    Returns
    -------
    numpy.ndarray
        (n_vars,) natural-log fold changes.
    """
    treated = true_mean(adata, cluster, condition)
    return np.log(treated) - np.log(true_mean(adata, cluster, reference))


def true_cell_means(adata: AnnData, condition: int | str | None = None) -> np.ndarray:
    """Return every cell's true expected expression fractions, optionally counterfactual.

    Parameters
    ----------
    adata
        Output of :func:`simulate` (any subset of its cells).
    condition
        If given, the fractions every cell would have in this condition (its cluster kept);
        else in its own condition.

    Returns
    -------
    numpy.ndarray
        Dense (n_obs, n_vars) float64; mind the memory for many cells.
    """
    truth = adata.uns["simulation"]
    k = _codes(adata.obs["cluster"], truth["cluster_names"])
    if condition is None:
        c = _codes(adata.obs["condition"], truth["condition_names"])
    else:
        c = np.full(adata.n_obs, _index(truth["condition_names"], condition, "condition"))
    return np.asarray(truth["true_means"], dtype=np.float64)[k, c]


def _ground_truth(
    genes: _Genes,
    true_means: np.ndarray,
    cluster_names: list[str],
    condition_names: list[str],
    cluster_p: np.ndarray,
    condition_p: np.ndarray,
    params: dict[str, float],
) -> dict:
    return {
        "true_means": true_means,
        "base_log_expression": genes.base_log_expression,
        "marker_log_fold_changes": genes.marker_log_fold_changes,
        "condition_log_fold_changes": genes.condition_log_fold_changes,
        "dispersion": genes.dispersion,
        "cluster_names": np.array(cluster_names, dtype=object),
        "condition_names": np.array(condition_names, dtype=object),
        "cluster_proportions": cluster_p,
        "condition_proportions": condition_p,
        "params": params,
    }


def _check_sizes(*sizes: int) -> None:
    if min(sizes) < 1:
        raise ValueError(
            "n_obs, n_vars, n_clusters, n_conditions, chunk_size and n_jobs must be >= 1"
        )


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, not {value}")


def _check_effects(
    n_vars: int, n_clusters: int, n_conditions: int, n_markers: int, n_responding: int
) -> None:
    if min(n_markers, n_responding) < 0:
        raise ValueError("n_markers_per_cluster and n_condition_genes must be >= 0")
    needed = n_clusters * n_markers + (n_responding if n_conditions > 1 else 0)
    if needed > n_vars:
        raise ValueError(
            f"n_vars={n_vars} is too small: n_clusters * n_markers_per_cluster "
            f"+ n_condition_genes = {needed} genes are needed; lower those two arguments"
        )


def _names(names: Sequence[str] | None, n: int, prefix: str) -> list[str]:
    if names is None:
        return [f"{prefix}_{i}" for i in range(n)]
    names = [str(name) for name in names]
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"{prefix}_names must be {n} distinct names")
    return names


def _proportions(proportions: ArrayLike | None, n: int, name: str) -> np.ndarray:
    if proportions is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(proportions, dtype=np.float64)
    if p.shape != (n,) or np.any(p < 0) or not p.sum() > 0:
        raise ValueError(f"{name} must be {n} non-negative numbers with a positive sum")
    return p / p.sum()


def _draw_genes(
    rng: np.random.Generator,
    n_vars: int,
    n_clusters: int,
    n_conditions: int,
    *,
    n_markers_per_cluster: int,
    marker_log_fold_change: float,
    n_condition_genes: int,
    condition_log_fold_change: float,
    shared_effect_fraction: float,
    base_log_expression_sd: float,
    dispersion: float | ArrayLike,
) -> _Genes:
    base = rng.normal(0.0, base_log_expression_sd, n_vars)
    order = rng.permutation(n_vars)
    n_marker_genes = n_clusters * n_markers_per_cluster
    markers = np.zeros((n_clusters, n_vars))
    for k, genes in enumerate(order[:n_marker_genes].reshape(n_clusters, -1)):
        markers[k, genes] = marker_log_fold_change
    pool = order[n_marker_genes:]
    n_shared = round(float(shared_effect_fraction) * n_condition_genes)
    effects = np.zeros((n_clusters, n_conditions, n_vars))
    for c in range(1, n_conditions):
        picked = rng.permutation(pool)
        effects[:, c, picked[:n_shared]] = condition_log_fold_change
        for k in range(n_clusters):
            own = rng.choice(picked[n_shared:], n_condition_genes - n_shared, replace=False)
            effects[k, c, own] = condition_log_fold_change
    phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (n_vars,)).copy()
    if np.any(phi < 0) or not np.all(np.isfinite(phi)):
        raise ValueError("dispersion must be finite and >= 0")
    return _Genes(base, markers, effects, phi)


def _draw_cells(
    rng: np.random.Generator,
    n_obs: int,
    cluster_p: np.ndarray,
    condition_p: np.ndarray,
    library_size_mean: float,
    library_size_log_sd: float,
) -> _Cells:
    cluster = rng.choice(len(cluster_p), size=n_obs, p=cluster_p)
    condition = rng.choice(len(condition_p), size=n_obs, p=condition_p)
    log_mean = np.log(library_size_mean) - library_size_log_sd**2 / 2
    library_size = rng.lognormal(log_mean, library_size_log_sd, n_obs)
    return _Cells(cluster, condition, library_size)


def _draw_counts(
    seed: np.random.SeedSequence,
    true_means: np.ndarray,
    dispersion: np.ndarray,
    cells: _Cells,
    chunk_size: int,
    n_jobs: int,
) -> sp.csr_matrix:
    starts = range(0, len(cells.library_size), chunk_size)
    seeds = seed.spawn(len(starts))

    def chunk(i: int) -> sp.csr_matrix:
        rows = slice(starts[i], starts[i] + chunk_size)
        mean = true_means[cells.cluster[rows], cells.condition[rows]]
        mean *= cells.library_size[rows, None]
        return _sample_nb(np.random.default_rng(seeds[i]), mean, dispersion)

    if n_jobs == 1:
        return _stack_in_blocks(map(chunk, range(len(starts))), true_means.shape[-1])
    with ThreadPoolExecutor(n_jobs) as pool:
        return _stack_in_blocks(pool.map(chunk, range(len(starts))), true_means.shape[-1])


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


def _to_anndata(
    counts: sp.csr_matrix,
    cells: _Cells,
    cluster_names: list[str],
    condition_names: list[str],
    truth: dict,
    counts_layer: str | None,
) -> AnnData:
    n_obs, n_vars = counts.shape
    obs = pd.DataFrame(
        {
            "cluster": pd.Categorical.from_codes(cells.cluster, categories=cluster_names),
            "condition": pd.Categorical.from_codes(cells.condition, categories=condition_names),
            "true_library_size": cells.library_size.astype(np.float32),
        },
        index=pd.Index([f"cell_{i}" for i in range(n_obs)]),
    )
    var = pd.DataFrame(index=pd.Index([f"gene_{j}" for j in range(n_vars)]))
    adata = AnnData(X=counts, obs=obs, var=var, uns={"simulation": truth})
    if counts_layer is not None:
        adata.layers[counts_layer] = counts.copy()
    return adata


def _index(names: ArrayLike, key: int | str, what: str) -> int:
    names = [str(name) for name in np.asarray(names)]
    if isinstance(key, str):
        if key not in names:
            raise KeyError(f"unknown {what} {key!r}; expected one of {names}")
        return names.index(key)
    if not -len(names) <= int(key) < len(names):
        raise IndexError(f"{what} index {key} out of range for {len(names)} {what}s")
    return int(key) % len(names)


def _codes(labels: pd.Series, names: ArrayLike) -> np.ndarray:
    codes = pd.Categorical(labels.astype(str), categories=[str(n) for n in np.asarray(names)])
    if np.any(codes.codes < 0):
        raise ValueError("labels not among the simulation's names")
    return codes.codes.astype(np.int64)
