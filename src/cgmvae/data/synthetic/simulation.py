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

The ground truth (:math:`p_{kc}` and the log fold changes
:math:`\log p_{kc} - \log p_{k0}`) is stored in the scheme of
:mod:`cgmvae.data.synthetic.ground_truth`, with clusters as its groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from numpy.typing import ArrayLike

from cgmvae import validation
from cgmvae.data.synthetic._counts import draw_counts
from cgmvae.data.synthetic.ground_truth import GROUND_TRUTH_KEY, make_ground_truth

#: Name of this generator in the ground truth.
GENERATOR = "simulate"
#: ``.obs`` columns of the output.
GROUP_KEY, CONDITION_KEY = "cluster", "condition"


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


@dataclass(frozen=True)
class SimulationParams:
    """The scalar settings of :func:`simulate` (see its parameters), checked once when built.

    Raises
    ------
    ValueError
        A size below its minimum or not an integer, a fraction outside [0, 1], a negative
        scale, or too few genes for the markers and condition genes.
    """

    n_obs: int
    n_vars: int
    n_clusters: int
    n_conditions: int
    seed: int
    n_markers_per_cluster: int
    marker_log_fold_change: float
    n_condition_genes: int
    condition_log_fold_change: float
    shared_effect_fraction: float
    base_log_expression_sd: float
    library_size_mean: float
    library_size_log_sd: float
    chunk_size: int
    n_jobs: int
    cluster_concentration: float | None

    def __post_init__(self) -> None:
        for name in ("n_obs", "n_vars", "n_clusters", "n_conditions", "chunk_size", "n_jobs"):
            validation.check_count(name, getattr(self, name), minimum=1)
        validation.check_count("n_markers_per_cluster", self.n_markers_per_cluster)
        validation.check_count("n_condition_genes", self.n_condition_genes)
        condition_genes = self.n_condition_genes if self.n_conditions > 1 else 0
        validation.check_enough_genes(
            self.n_clusters * self.n_markers_per_cluster + condition_genes,
            self.n_vars,
            needed_for="n_clusters * n_markers_per_cluster + n_condition_genes",
            available_as="n_vars",
            hint="lower n_markers_per_cluster or n_condition_genes, or raise n_vars",
        )
        validation.check_fraction("shared_effect_fraction", self.shared_effect_fraction)
        validation.check_non_negative("base_log_expression_sd", self.base_log_expression_sd)
        validation.check_positive("library_size_mean", self.library_size_mean)
        validation.check_non_negative("library_size_log_sd", self.library_size_log_sd)
        if self.cluster_concentration is not None:
            validation.check_positive("cluster_concentration", self.cluster_concentration)

    @classmethod
    def from_arguments(cls, arguments: dict) -> SimulationParams:
        """Build from a call's arguments (``locals()`` of :func:`simulate`), ignoring others."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})

    def recorded(self) -> dict:
        """Return the settings stored with the ground truth.

        All but ``n_jobs`` (which changes no draw) and an unset ``cluster_concentration``.
        """
        settings = asdict(self)
        del settings["n_jobs"]
        if self.cluster_concentration is None:
            del settings["cluster_concentration"]
        return settings


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
    counts_layer: str | None = None,
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
        Layer that also holds the counts, a copy, so that normalising ``.X`` in place keeps
        them (e.g. ``"counts"``, the scanpy habit). ``None`` (the default) stores the counts
        once, in ``.X``: half the memory, which matters from about 10⁵ cells on.

    Returns
    -------
    AnnData
        ``n_obs × n_vars``; ``.X`` holds the counts (CSR, float32 integers), as does
        ``.layers[counts_layer]`` if asked for. ``.obs`` has ``cluster`` and ``condition``
        (categoricals of names) and ``true_library_size`` (the cell's expected total count).
        ``.uns["ground_truth"]`` holds the ground truth in the scheme shared with
        :func:`~cgmvae.data.add_condition_effect` (see :mod:`cgmvae.data.synthetic.ground_truth`;
        all h5ad-serialisable): ``generator="simulate"``, ``group_key="cluster"``,
        ``condition_key="condition"``, ``group_names`` (the clusters), ``condition_names``,
        ``reference_condition`` (condition 0), ``log_fold_changes`` (n_clusters,
        n_conditions, n_vars), see :func:`~cgmvae.data.true_log_fold_change`, ``true_means``
        (n_clusters, n_conditions, n_vars) expected expression fractions (rows sum to 1),
        see :func:`~cgmvae.data.true_mean`, ``params`` (the scalar arguments above) and
        ``simulate``, a dict of:

        - ``base_log_expression``: (n_vars,) gene baselines.
        - ``marker_log_fold_changes``: (n_clusters, n_vars), non-zero at markers.
        - ``condition_log_fold_changes``: (n_clusters, n_conditions, n_vars), the drawn
          effects before renormalisation, zero for condition 0 and non-responding genes.
        - ``dispersion``: (n_vars,) NB dispersions.
        - ``cluster_proportions``, ``condition_proportions``: sampling probabilities.

    Raises
    ------
    ValueError
        If an argument is out of range or there are too few genes for the effects.
    """
    params = SimulationParams.from_arguments(locals())
    cluster_names = _names(cluster_names, n_clusters, "cluster")
    condition_names = _names(condition_names, n_conditions, "condition")
    phi = validation.check_dispersion(dispersion, n_vars)
    gene_seed, cell_seed, count_seed = np.random.SeedSequence(seed).spawn(3)

    genes = _draw_genes(np.random.default_rng(gene_seed), params, phi)
    cell_rng = np.random.default_rng(cell_seed)
    if cluster_proportions is None and cluster_concentration is not None:
        cluster_proportions = cell_rng.dirichlet(np.full(n_clusters, cluster_concentration))
    cluster_p = validation.check_proportions(
        cluster_proportions, n_clusters, "cluster_proportions"
    )
    condition_p = validation.check_proportions(
        condition_proportions, n_conditions, "condition_proportions"
    )
    cells = _draw_cells(cell_rng, params, cluster_p, condition_p)
    true_means = genes.true_means()
    counts = draw_counts(
        count_seed,
        true_means,
        genes.dispersion,
        group=cells.cluster,
        condition=cells.condition,
        library_size=cells.library_size,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
    )
    truth = _ground_truth(
        genes, true_means, cluster_names, condition_names, cluster_p, condition_p,
        params.recorded(),
    )  # fmt: skip
    return _to_anndata(counts, cells, cluster_names, condition_names, truth, counts_layer)


def _names(names: Sequence[str] | None, n: int, prefix: str) -> list[str]:
    """Return the given names, checked, or ``prefix_0``, ``prefix_1``, …."""
    if names is None:
        return [f"{prefix}_{i}" for i in range(n)]
    return validation.check_distinct_names(names, n, f"{prefix}_names")


def _draw_genes(
    rng: np.random.Generator, params: SimulationParams, dispersion: np.ndarray
) -> _Genes:
    """Draw gene baselines, disjoint cluster markers and per-condition responding genes."""
    p = params
    base = rng.normal(0.0, p.base_log_expression_sd, p.n_vars)
    order = rng.permutation(p.n_vars)
    n_marker_genes = p.n_clusters * p.n_markers_per_cluster
    markers = np.zeros((p.n_clusters, p.n_vars))
    for k, genes in enumerate(order[:n_marker_genes].reshape(p.n_clusters, -1)):
        markers[k, genes] = p.marker_log_fold_change
    pool = order[n_marker_genes:]
    n_shared = round(float(p.shared_effect_fraction) * p.n_condition_genes)
    effects = np.zeros((p.n_clusters, p.n_conditions, p.n_vars))
    for c in range(1, p.n_conditions):
        picked = rng.permutation(pool)
        effects[:, c, picked[:n_shared]] = p.condition_log_fold_change
        for k in range(p.n_clusters):
            own = rng.choice(picked[n_shared:], p.n_condition_genes - n_shared, replace=False)
            effects[k, c, own] = p.condition_log_fold_change
    return _Genes(base, markers, effects, dispersion)


def _draw_cells(
    rng: np.random.Generator,
    params: SimulationParams,
    cluster_p: np.ndarray,
    condition_p: np.ndarray,
) -> _Cells:
    """Draw each cell's cluster, condition (independently) and log-normal library size."""
    n_obs, spread = params.n_obs, params.library_size_log_sd
    cluster = rng.choice(len(cluster_p), size=n_obs, p=cluster_p)
    condition = rng.choice(len(condition_p), size=n_obs, p=condition_p)
    log_mean = np.log(params.library_size_mean) - spread**2 / 2
    library_size = rng.lognormal(log_mean, spread, n_obs)
    return _Cells(cluster, condition, library_size)


def _log_fold_changes(true_means: np.ndarray) -> np.ndarray:
    """Return log(true_means / true_means of condition 0), per cluster and condition."""
    log_means = np.log(true_means)
    return log_means - log_means[:, :1]


def _ground_truth(
    genes: _Genes,
    true_means: np.ndarray,
    cluster_names: list[str],
    condition_names: list[str],
    cluster_p: np.ndarray,
    condition_p: np.ndarray,
    params: dict[str, float],
) -> dict:
    extras = {
        "base_log_expression": genes.base_log_expression,
        "marker_log_fold_changes": genes.marker_log_fold_changes,
        "condition_log_fold_changes": genes.condition_log_fold_changes,
        "dispersion": genes.dispersion,
        "cluster_proportions": cluster_p,
        "condition_proportions": condition_p,
    }
    return make_ground_truth(
        GENERATOR,
        params,
        group_key=GROUP_KEY,
        condition_key=CONDITION_KEY,
        group_names=cluster_names,
        condition_names=condition_names,
        log_fold_changes=_log_fold_changes(true_means),
        extras=extras,
        true_means=true_means,
    )


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
            GROUP_KEY: pd.Categorical.from_codes(cells.cluster, categories=cluster_names),
            CONDITION_KEY: pd.Categorical.from_codes(cells.condition, categories=condition_names),
            "true_library_size": cells.library_size.astype(np.float32),
        },
        index=pd.Index([f"cell_{i}" for i in range(n_obs)]),
    )
    var = pd.DataFrame(index=pd.Index([f"gene_{j}" for j in range(n_vars)]))
    adata = AnnData(X=counts, obs=obs, var=var, uns={GROUND_TRUTH_KEY: truth})
    if counts_layer is not None:
        adata.layers[counts_layer] = counts.copy()
    return adata
