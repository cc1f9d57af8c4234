r"""Semi-synthetic conditional data: real counts with a known condition effect added.

No stimulated-vs-control single-cell dataset installs offline, so counterfactual prediction
(scGen-style: predict how the cells of a type would look under stimulation) is benchmarked
on real counts, e.g. :func:`~cgmvae.data.pbmc68k_reduced`, to which a condition effect of
known size is added. Every cell is assigned to *control* or *stimulated*; in stimulated cells
of the affected cell types, the counts of each responding gene :math:`g` are changed so that,
given the original count :math:`x`, the new count :math:`y` has

.. math::

    \operatorname{E}[y \mid x] = e^{\ell_{tg}} \, x,

where :math:`\ell_{tg}` is the true log fold change (natural log) of gene :math:`g` in cell
type :math:`t`:

- up-regulation (:math:`\ell > 0`): :math:`y = x + \operatorname{Poisson}\big((e^{\ell} - 1)
  x\big)`, the original count plus Poisson extra counts;
- down-regulation (:math:`\ell < 0`): :math:`y = \operatorname{Binomial}(x, e^{\ell})`,
  binomial thinning (each original molecule kept with probability :math:`e^{\ell}`).

Both are exact in expectation cell by cell, so the *true effect* :math:`\ell_{tg}` is the
expected log fold change of the per-gene mean count over any set of stimulated cells of type
:math:`t` (stimulated versus the same cells' original counts, and, in expectation over the
random assignment, stimulated versus control cells of the type). Zero counts stay zero.

The ground truth is stored in the scheme of :mod:`cgmvae.data.synthetic.ground_truth`, with
cell types as its groups and ``[control, stimulated]`` as its conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from cgmvae import validation
from cgmvae.data.synthetic.ground_truth import GROUND_TRUTH_KEY, make_ground_truth

#: Layer of the output that holds the counts every cell would have without the effect.
ORIGINAL_LAYER = "original_counts"
#: Name of this generator in the ground truth.
GENERATOR = "add_condition_effect"


@dataclass(frozen=True)
class EffectParams:
    """The scalar settings of :func:`add_condition_effect` (see its parameters), checked once.

    Raises
    ------
    ValueError
        ``n_genes`` not a whole number >= 0, ``log_fold_change`` not positive, a fraction
        outside [0, 1] (``stimulated_fraction`` strictly inside), or a negative ``min_mean``.
    """

    cell_type_key: str
    n_genes: int
    log_fold_change: float
    shared_fraction: float
    up_fraction: float
    stimulated_fraction: float
    condition_key: str
    min_mean: float
    seed: int
    layer: str | None

    def __post_init__(self) -> None:
        validation.check_count("n_genes", self.n_genes)
        validation.check_positive(
            "log_fold_change",
            self.log_fold_change,
            hint="its sign is drawn per gene (set up_fraction=0 for down-regulation only)",
        )
        validation.check_fraction("shared_fraction", self.shared_fraction)
        validation.check_fraction("up_fraction", self.up_fraction)
        validation.check_fraction("stimulated_fraction", self.stimulated_fraction, strict=True)
        validation.check_non_negative("min_mean", self.min_mean)

    @classmethod
    def from_arguments(cls, arguments: dict) -> EffectParams:
        """Build from a call's arguments (``locals()`` of :func:`add_condition_effect`)."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})

    def recorded(self) -> dict:
        """Return the settings stored with the ground truth (``layer`` only when set)."""
        settings = asdict(self)
        if self.layer is None:
            del settings["layer"]
        return settings


@dataclass(frozen=True)
class _Effects:
    """Responding genes and true log fold changes, per cell type."""

    log_fold_changes: np.ndarray  # (n_types, n_vars), zero outside responding genes
    shared_genes: np.ndarray  # (n_shared,) gene indices
    responding_genes: np.ndarray  # (n_affected, n_genes) gene indices, shared first


def add_condition_effect(
    adata: AnnData,
    cell_type_key: str,
    *,
    affected_cell_types: Sequence[str] | str | None = None,
    n_genes: int = 50,
    log_fold_change: float = 1.5,
    shared_fraction: float = 0.5,
    up_fraction: float = 0.5,
    stimulated_fraction: float = 0.5,
    layer: str | None = "counts",
    condition_key: str = "condition",
    control_name: str = "control",
    stimulated_name: str = "stimulated",
    min_mean: float = 0.5,
    seed: int = 0,
) -> AnnData:
    r"""Add a known condition effect to real counts, for counterfactual benchmarks.

    Cells are split at random into control and stimulated, within each cell type, so that
    ``round(stimulated_fraction * n)`` of the ``n`` cells of every type are stimulated. In
    each affected cell type, ``n_genes`` genes respond: ``round(shared_fraction * n_genes)``
    *shared* genes respond in every affected type with the same log fold change, the others
    are drawn for each type separately (independently, so two types' specific sets overlap
    only by chance, and never with the shared genes). Responding genes are drawn among genes
    whose mean original count in the type is at least ``min_mean`` (in every affected type,
    for shared genes). Each responding gene is up-regulated by ``log_fold_change`` with
    probability ``up_fraction`` and otherwise down-regulated by the same amount (signs drawn
    once per shared gene and per (type, gene) otherwise).

    Stimulated cells of affected types get counts with
    :math:`\operatorname{E}[y \mid x] = e^{\ell} x` for a responding gene with log fold
    change :math:`\ell`: :math:`y = x + \operatorname{Poisson}((e^{\ell} - 1) x)` if
    :math:`\ell > 0`, :math:`y = \operatorname{Binomial}(x, e^{\ell})` if :math:`\ell < 0`
    (see the module docstring). All other counts are unchanged. Library sizes change with
    the effect, so log fold changes of library-size-normalised expression differ from
    :math:`\ell` by the log ratio of the library sizes.

    Parameters
    ----------
    adata
        Cells × genes raw integer counts, e.g. :func:`~cgmvae.data.pbmc68k_reduced`. Not
        modified.
    cell_type_key
        Column of ``adata.obs`` with the cell types.
    affected_cell_types
        Cell types that respond to the condition; default all types.
    n_genes
        Responding genes per affected cell type.
    log_fold_change
        Size of the effect, natural log (positive; the sign is drawn per gene).
    shared_fraction
        Fraction of the responding genes that are shared by all affected types, in [0, 1].
    up_fraction
        Probability that a responding gene is up- rather than down-regulated, in [0, 1].
    stimulated_fraction
        Fraction of the cells of each type that are stimulated, in (0, 1).
    layer
        Layer with the counts; ``None`` reads ``.X``.
    condition_key
        Column of the output's ``.obs`` that gets the condition; must not exist yet.
    control_name, stimulated_name
        Names of the two conditions.
    min_mean
        Smallest mean original count, within a type, of a gene that may respond there.
    seed
        Seed of all random draws. Responding genes and their signs depend neither on the
        condition assignment nor on ``stimulated_fraction``.

    Returns
    -------
    AnnData
        Same cells and genes, ``.obs`` and ``.var`` copied (``.obs`` columns computed from
        counts, such as ``n_counts``, still describe the original counts), nothing else of
        the input kept. ``.X`` and ``.layers[layer]`` hold the counts with the effect
        (CSR if the input was sparse, else dense; the input's dtype),
        ``.layers["original_counts"]`` the counts without it, so for stimulated cells the
        unstimulated truth. ``.obs[condition_key]`` is categorical
        ``[control_name, stimulated_name]``. ``.uns["ground_truth"]`` holds the ground
        truth in the scheme shared with :func:`~cgmvae.data.simulate` (see
        :mod:`cgmvae.data.synthetic.ground_truth`; all h5ad-serialisable):
        ``generator="add_condition_effect"``, ``group_key=cell_type_key``,
        ``condition_key``, ``group_names`` (all cell types with cells, in category order),
        ``condition_names`` (``[control_name, stimulated_name]``), ``reference_condition``
        (``control_name``), ``log_fold_changes`` (n_types, 2, n_vars) float64 true log fold
        changes, zero for the control, non-responding genes and unaffected types (see
        :func:`~cgmvae.data.true_log_fold_change`), ``params`` (the other arguments,
        ``layer`` left out when ``None``) and ``add_condition_effect``, a dict of:

        - ``affected_cell_types``: (n_affected,) the responding types.
        - ``responding_genes``: (n_affected, n_genes) gene names, rows follow
          ``affected_cell_types``, shared genes first.
        - ``shared_genes``: (n_shared,) gene names.

    Raises
    ------
    KeyError
        If ``cell_type_key`` is not in ``adata.obs`` or ``layer`` not in ``adata.layers``.
    ValueError
        If the counts are not non-negative integers, an affected type is unknown, a
        fraction or size is out of range, ``condition_key`` already exists, or too few genes
        are expressed at ``min_mean`` for ``n_genes``.
    """
    params = EffectParams.from_arguments(locals())
    validation.check_layer(adata, layer, reserved=ORIGINAL_LAYER)
    validation.check_new_obs_column(adata, condition_key, "condition_key")
    condition_names = validation.check_distinct_names(
        [control_name, stimulated_name], 2, "control_name and stimulated_name"
    )
    labels, affected = _cell_types(adata, cell_type_key, affected_cell_types)
    source = adata.X if layer is None else adata.layers[layer]
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    counts = validation.check_integer_counts(source, where)
    gene_seed, cell_seed, count_seed = np.random.SeedSequence(seed).spawn(3)

    means = _type_means(counts, labels.codes, len(labels.categories))
    effects = _draw_effects(np.random.default_rng(gene_seed), means, affected, params)
    stimulated = _assign_conditions(
        np.random.default_rng(cell_seed), labels.codes, stimulated_fraction
    )
    effective = _apply_effect(
        np.random.default_rng(count_seed), counts, effects.log_fold_changes, labels, stimulated
    )
    conditions = pd.Categorical.from_codes(stimulated.astype(np.int8), categories=condition_names)
    truth = _ground_truth(
        effects, labels, affected, adata.var_names, conditions, params.recorded()
    )
    return _to_anndata(adata, source, counts, effective, layer, condition_key, conditions, truth)


def _cell_types(
    adata: AnnData, cell_type_key: str, affected_cell_types: Sequence[str] | str | None
) -> tuple[pd.Categorical, np.ndarray]:
    """Return the checked cell-type labels and the indices of the affected types."""
    labels = validation.check_labels(adata, cell_type_key, "cell_type_key")
    affected = validation.check_subset(
        affected_cell_types,
        labels.categories,
        name="affected_cell_types",
        among=f"cell types of adata.obs[{cell_type_key!r}]",
    )
    return labels, affected


# --- draws ----------------------------------------------------------------------------------


def _type_means(counts: sp.csr_matrix, codes: np.ndarray, n_types: int) -> np.ndarray:
    """Return the mean count of every gene in every cell type, (n_types, n_vars)."""
    n_obs = counts.shape[0]
    membership = sp.csr_matrix((np.ones(n_obs), (codes, np.arange(n_obs))), shape=(n_types, n_obs))
    sizes = np.bincount(codes, minlength=n_types)
    return np.asarray((membership @ counts).todense()) / sizes[:, None]


def _draw_effects(
    rng: np.random.Generator, means: np.ndarray, affected: np.ndarray, params: EffectParams
) -> _Effects:
    n_types, n_vars = means.shape
    n_genes, log_fold_change = params.n_genes, params.log_fold_change
    shared_fraction, up_fraction = params.shared_fraction, params.up_fraction
    min_mean = params.min_mean
    n_shared = round(shared_fraction * n_genes) if len(affected) else 0
    eligible = means[affected] >= min_mean  # (n_affected, n_vars)
    shared = _choose(rng, np.flatnonzero(eligible.all(axis=0)), n_shared, "in every")
    shared_signs = _signs(rng, n_shared, up_fraction)
    lfc = np.zeros((n_types, n_vars))
    responding = np.empty((len(affected), n_genes), dtype=np.int64)
    for row, (k, ok) in enumerate(zip(affected, eligible, strict=True)):
        ok[shared] = False
        own = _choose(rng, np.flatnonzero(ok), n_genes - n_shared, "in one")
        lfc[k, shared] = log_fold_change * shared_signs
        lfc[k, own] = log_fold_change * _signs(rng, len(own), up_fraction)
        responding[row] = np.concatenate([shared, own])
    return _Effects(lfc, shared, responding)


def _choose(rng: np.random.Generator, pool: np.ndarray, n: int, where: str) -> np.ndarray:
    """Draw ``n`` of the genes in ``pool``, sorted; ``where`` says which genes need them."""
    validation.check_enough_genes(
        n,
        len(pool),
        needed_for=f"responding genes {where} affected cell type",
        available_as=f"mean count >= min_mean {where} affected cell type",
        hint="lower n_genes or min_mean, or affect fewer cell types",
    )
    return np.sort(rng.choice(pool, n, replace=False))


def _signs(rng: np.random.Generator, n: int, up_fraction: float) -> np.ndarray:
    return np.where(rng.random(n) < up_fraction, 1.0, -1.0)


def _assign_conditions(
    rng: np.random.Generator, codes: np.ndarray, stimulated_fraction: float
) -> np.ndarray:
    """Return a boolean mask of stimulated cells, an exact fraction within each type."""
    stimulated = np.zeros(len(codes), dtype=bool)
    for k in range(codes.max() + 1):
        cells = np.flatnonzero(codes == k)
        n_stimulated = int(np.floor(stimulated_fraction * len(cells) + 0.5))
        stimulated[rng.permutation(cells)[:n_stimulated]] = True
    return stimulated


def _apply_effect(
    rng: np.random.Generator,
    counts: sp.csr_matrix,
    log_fold_changes: np.ndarray,
    labels: pd.Categorical,
    stimulated: np.ndarray,
) -> sp.csr_matrix:
    """Return a copy of the counts with the effect applied to stimulated cells."""
    effective = counts.copy()
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    lfc = log_fold_changes[labels.codes[rows], counts.indices] * stimulated[rows]
    up, down = np.flatnonzero(lfc > 0), np.flatnonzero(lfc < 0)
    data = effective.data
    data[up] += rng.poisson(data[up] * np.expm1(lfc[up]))
    data[down] = rng.binomial(data[down].astype(np.int64), np.exp(lfc[down]))
    effective.eliminate_zeros()
    return effective


# --- output ---------------------------------------------------------------------------------


def _ground_truth(
    effects: _Effects,
    labels: pd.Categorical,
    affected: np.ndarray,
    var_names: pd.Index,
    conditions: pd.Categorical,
    params: dict,
) -> dict:
    genes = np.asarray(var_names.astype(str), dtype=object)
    types = np.asarray(labels.categories, dtype=object)
    control = np.zeros_like(effects.log_fold_changes)
    extras = {
        "affected_cell_types": types[affected],
        "responding_genes": genes[effects.responding_genes],
        "shared_genes": genes[effects.shared_genes],
    }
    return make_ground_truth(
        GENERATOR,
        params,
        group_key=params["cell_type_key"],
        condition_key=params["condition_key"],
        group_names=types,
        condition_names=conditions.categories,
        log_fold_changes=np.stack([control, effects.log_fold_changes], axis=1),
        extras=extras,
    )


def _to_anndata(
    adata: AnnData,
    source: sp.spmatrix | np.ndarray,
    original: sp.csr_matrix,
    effective: sp.csr_matrix,
    layer: str | None,
    condition_key: str,
    conditions: pd.Categorical,
    truth: dict,
) -> AnnData:
    obs = adata.obs.copy()
    obs[condition_key] = pd.Series(conditions, index=obs.index)
    out = AnnData(
        X=_like(effective, source), obs=obs, var=adata.var.copy(), uns={GROUND_TRUTH_KEY: truth}
    )
    if layer is not None:
        out.layers[layer] = _like(effective, source)
    out.layers[ORIGINAL_LAYER] = _like(original, source)
    return out


def _like(counts: sp.csr_matrix, source: sp.spmatrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    """Return the counts as CSR if ``source`` is sparse, else dense, in its dtype."""
    if sp.issparse(source):
        return sp.csr_matrix(counts, dtype=source.dtype, copy=True)
    return counts.toarray().astype(np.asarray(source).dtype)
