"""Tests of cgmvae.data.add_condition_effect: real PBMC counts with a known condition effect."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cgmvae import data

KEY = "bulk_labels"
LFC = 1.5


def stimulated_of(adata: ad.AnnData, cell_type: str) -> np.ndarray:
    return ((adata.obs[KEY] == cell_type) & (adata.obs["condition"] == "stimulated")).to_numpy()


def column_sums(x: sp.spmatrix, rows: np.ndarray) -> np.ndarray:
    return np.asarray(x[rows].sum(axis=0), dtype=np.float64).ravel()


def effects(adata: ad.AnnData) -> np.ndarray:
    """(n_types, n_vars) true log fold changes of stimulated versus control."""
    return adata.uns["ground_truth"]["log_fold_changes"][:, 1]


def test_shapes_layers_and_conditions(pbmc, semi):
    assert semi.shape == pbmc.shape
    assert list(semi.layers) == ["counts", "original_counts"]
    for x in (semi.X, semi.layers["counts"], semi.layers["original_counts"]):
        assert sp.issparse(x) and x.format == "csr" and x.dtype == np.float32
        assert np.all(x.data == np.rint(x.data)) and np.all(x.data > 0)
    assert (semi.layers["counts"] != semi.X).nnz == 0
    assert semi.layers["counts"] is not semi.X
    condition = semi.obs["condition"]
    assert isinstance(condition.dtype, pd.CategoricalDtype)
    assert list(condition.cat.categories) == ["control", "stimulated"]
    per_type = pd.crosstab(semi.obs[KEY], condition)
    np.testing.assert_array_equal(
        per_type["stimulated"], np.floor(per_type.sum(axis=1) * 0.5 + 0.5)
    )
    pd.testing.assert_frame_equal(semi.obs.drop(columns="condition"), pbmc.obs)


def test_counts_are_pinned_per_seed(pbmc, csr_digest):
    """The counts of a seed never change (update the pin only if NumPy's streams change)."""
    adata = data.add_condition_effect(pbmc, KEY, n_genes=20, seed=4)
    assert adata.X.nnz == 172368 and adata.X.sum() == 492974
    np.testing.assert_array_equal(adata.obs["condition"].cat.codes[:6], [1, 1, 0, 0, 1, 0])
    assert csr_digest(adata.X) == "e9e754a379332601"


def test_ground_truth_structure(pbmc, semi):
    truth = semi.uns["ground_truth"]
    types = list(pbmc.obs[KEY].cat.categories)
    assert truth["generator"] == "add_condition_effect"
    assert (truth["group_key"], truth["condition_key"]) == (KEY, "condition")
    assert list(truth["group_names"]) == types
    assert list(truth["condition_names"]) == ["control", "stimulated"]
    assert truth["reference_condition"] == "control"
    assert truth["log_fold_changes"].shape == (len(types), 2, pbmc.n_vars)
    assert not truth["log_fold_changes"][:, 0].any()
    lfc = effects(semi)
    assert set(np.unique(lfc)) == {-LFC, 0.0, LFC}
    extras = truth["add_condition_effect"]
    assert list(extras["affected_cell_types"]) == types
    assert extras["responding_genes"].shape == (len(types), 50)
    assert extras["shared_genes"].shape == (25,)
    shared = pbmc.var_names.get_indexer(extras["shared_genes"])
    assert np.all(lfc[:, shared] == lfc[0, shared])  # same effect in every type
    for k, genes in enumerate(extras["responding_genes"]):
        assert list(genes[:25]) == list(extras["shared_genes"])
        assert len(set(genes)) == 50
        np.testing.assert_array_equal(
            np.sort(pbmc.var_names.get_indexer(genes)), np.flatnonzero(lfc[k])
        )
    specific = [set(genes[25:]) for genes in extras["responding_genes"]]
    assert len({frozenset(s) for s in specific}) == len(types)  # different per type
    assert truth["params"]["seed"] == 1 and truth["params"]["log_fold_change"] == LFC


def test_responding_genes_are_expressed_in_their_type(pbmc, semi):
    extras = semi.uns["ground_truth"]["add_condition_effect"]
    for cell_type, genes in zip(
        extras["affected_cell_types"], extras["responding_genes"], strict=True
    ):
        cells = (pbmc.obs[KEY] == cell_type).to_numpy()
        means = column_sums(pbmc.X, cells)[pbmc.var_names.get_indexer(genes)] / cells.sum()
        assert means.min() >= 0.5


def test_input_unchanged(pbmc):
    before = pbmc.copy()
    data.add_condition_effect(pbmc, KEY, seed=3)
    assert (pbmc.X != before.X).nnz == 0
    assert (pbmc.layers["counts"] != before.layers["counts"]).nnz == 0
    assert list(pbmc.layers) == ["counts"] and not pbmc.uns
    pd.testing.assert_frame_equal(pbmc.obs, before.obs)


def test_deterministic_per_seed(pbmc, semi):
    again = data.add_condition_effect(pbmc, KEY, log_fold_change=LFC, seed=1)
    other = data.add_condition_effect(pbmc, KEY, log_fold_change=LFC, seed=2)
    assert (again.X != semi.X).nnz == 0
    assert again.obs["condition"].equals(semi.obs["condition"])
    np.testing.assert_array_equal(effects(semi), effects(again))
    assert not other.obs["condition"].equals(semi.obs["condition"])
    assert not np.array_equal(effects(semi), effects(other))


def test_only_stimulated_responding_counts_change(pbmc, semi):
    original, x = semi.layers["original_counts"], semi.X
    assert (original != pbmc.layers["counts"]).nnz == 0
    lfc = effects(semi)
    codes = semi.obs[KEY].cat.codes.to_numpy()
    stimulated = (semi.obs["condition"] == "stimulated").to_numpy()
    changed = sp.coo_matrix(x != original)
    assert changed.nnz > 0
    assert np.all(stimulated[changed.row])
    assert np.all(lfc[codes[changed.row], changed.col] != 0)
    responding_anywhere = np.any(lfc != 0, axis=0)
    assert (x[:, ~responding_anywhere] != original[:, ~responding_anywhere]).nnz == 0
    assert (x[~stimulated] != original[~stimulated]).nnz == 0


def log_ratio_sd(total: float, lfc: float) -> float:
    """Standard deviation of log(after / before) for a total of ``total`` original counts.

    Up: after = total + Poisson((e^lfc - 1) total); down: after = Binomial(total, e^lfc).
    """
    fc = np.exp(lfc)
    if lfc > 0:
        return np.sqrt(total * (fc - 1)) / (total * fc)
    return np.sqrt((1 - fc) / (total * fc))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_mean_ratio_matches_true_log_fold_change(semi, sign):
    original, x = semi.layers["original_counts"], semi.X
    # the best-measured gene of the largest type (120 stimulated cells), within 4 sd
    cells = stimulated_of(semi, "Dendritic")
    lfc = data.true_log_fold_change(semi, "Dendritic")
    before, after = column_sums(original, cells), column_sums(x, cells)
    genes = np.flatnonzero(lfc == sign * LFC)
    gene = genes[np.argmax(before[genes])]
    assert before[gene] > 200
    tolerance = 4 * log_ratio_sd(before[gene], sign * LFC)
    assert np.log(after[gene] / before[gene]) == pytest.approx(sign * LFC, abs=tolerance)
    # pooled over all responding genes of this sign in every type
    pooled_before = pooled_after = 0.0
    for cell_type in semi.uns["ground_truth"]["group_names"]:
        cells = stimulated_of(semi, cell_type)
        genes = data.true_log_fold_change(semi, cell_type) == sign * LFC
        pooled_before += column_sums(original, cells)[genes].sum()
        pooled_after += column_sums(x, cells)[genes].sum()
    tolerance = 4 * log_ratio_sd(pooled_before, sign * LFC)
    assert tolerance < 0.05
    assert np.log(pooled_after / pooled_before) == pytest.approx(sign * LFC, abs=tolerance)


def test_affected_subset_signs_and_shared_fraction(pbmc):
    affected = ["CD14+ Monocyte", "CD19+ B"]
    semi = data.add_condition_effect(
        pbmc, KEY, affected_cell_types=affected, n_genes=20, shared_fraction=1.0, up_fraction=1.0
    )
    truth = semi.uns["ground_truth"]
    extras = truth["add_condition_effect"]
    assert list(extras["affected_cell_types"]) == affected
    assert extras["responding_genes"].shape == (2, 20)
    assert np.array_equal(extras["responding_genes"][0], extras["responding_genes"][1])
    for cell_type in truth["group_names"]:
        lfc = data.true_log_fold_change(semi, cell_type)
        assert np.count_nonzero(lfc) == (20 if cell_type in affected else 0)
        assert np.all(lfc >= 0)
    unaffected = ~semi.obs[KEY].isin(affected).to_numpy()
    assert (semi.X[unaffected] != semi.layers["original_counts"][unaffected]).nnz == 0
    down = data.add_condition_effect(pbmc, KEY, affected_cell_types="CD19+ B", up_fraction=0)
    assert np.all(effects(down) <= 0) and np.any(effects(down) < 0)
    assert down.uns["ground_truth"]["add_condition_effect"]["shared_genes"].shape == (25,)


def test_dense_x_without_layer_and_custom_names(pbmc):
    dense = ad.AnnData(X=pbmc.X.toarray().astype(np.int64), obs=pbmc.obs[[KEY]].copy())
    semi = data.add_condition_effect(
        dense, KEY, layer=None, condition_key="stim", control_name="ctrl", stimulated_name="ifn"
    )
    assert isinstance(semi.X, np.ndarray) and semi.X.dtype == np.int64
    assert list(semi.layers) == ["original_counts"]
    np.testing.assert_array_equal(semi.layers["original_counts"], dense.X)
    assert list(semi.obs["stim"].cat.categories) == ["ctrl", "ifn"]
    truth = semi.uns["ground_truth"]
    assert "layer" not in truth["params"]
    assert truth["condition_key"] == "stim" and truth["reference_condition"] == "ctrl"
    assert list(truth["condition_names"]) == ["ctrl", "ifn"]


def test_h5ad_round_trip(semi, tmp_path):
    path = tmp_path / "semi.h5ad"
    semi.write_h5ad(path)
    back = ad.read_h5ad(path)
    truth, back_truth = semi.uns["ground_truth"], back.uns["ground_truth"]
    for key in ("log_fold_changes", "group_names", "condition_names"):
        np.testing.assert_array_equal(back_truth[key], truth[key])
    for key in ("affected_cell_types", "responding_genes", "shared_genes"):
        np.testing.assert_array_equal(
            back_truth["add_condition_effect"][key], truth["add_condition_effect"][key]
        )
    np.testing.assert_array_equal(
        data.true_log_fold_change(back, "CD34+"), data.true_log_fold_change(semi, "CD34+")
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cell_type_key": "cell_type"}, KeyError, "cell_type_key 'cell_type' is not a column"),
        ({"layer": "raw"}, KeyError, "layer='raw' is not in adata.layers"),
        ({"layer": "original_counts"}, KeyError, "layer='original_counts' is not in"),
        ({"affected_cell_types": ["T cell"]}, ValueError, r"\['T cell'\] are not cell types"),
        ({"affected_cell_types": ["CD34+", "CD34+"]}, ValueError, "duplicates"),
        ({"shared_fraction": 1.5}, ValueError, r"shared_fraction must lie in \[0, 1\]"),
        ({"up_fraction": -0.1}, ValueError, r"up_fraction must lie in \[0, 1\]"),
        ({"stimulated_fraction": 1.0}, ValueError, "stimulated_fraction must lie strictly"),
        ({"stimulated_fraction": 0.0}, ValueError, "stimulated_fraction must lie strictly"),
        ({"log_fold_change": -1.0}, ValueError, "log_fold_change must be positive.*sign"),
        ({"n_genes": -1}, ValueError, "n_genes must be an integer >= 0, not -1"),
        ({"n_genes": 500}, ValueError, "lower n_genes or min_mean"),
        ({"min_mean": 100.0}, ValueError, "lower n_genes or min_mean"),
        ({"min_mean": -1.0}, ValueError, "min_mean must be finite and >= 0"),
        ({"condition_key": "louvain"}, ValueError, "already has a column 'louvain'"),
        ({"stimulated_name": "control"}, ValueError, "must be 2 distinct names"),
    ],
)
def test_bad_arguments(pbmc, kwargs, error, match):
    kwargs = {"cell_type_key": KEY, **kwargs}
    with pytest.raises(error, match=match):
        data.add_condition_effect(pbmc, **kwargs)


def test_layer_must_not_be_the_output_layer(pbmc):
    with_layer = pbmc.copy()
    with_layer.layers["original_counts"] = with_layer.layers["counts"]
    with pytest.raises(ValueError, match="must not be 'original_counts'"):
        data.add_condition_effect(with_layer, KEY, layer="original_counts")


@pytest.mark.parametrize(("value", "shown"), [(0.5, "0.5"), (-1.0, "-1.0"), (np.nan, "nan")])
def test_rejects_non_integer_or_negative_counts(pbmc, value, shown):
    bad = pbmc.copy()
    counts = bad.layers["counts"].tolil()
    counts[0, 0] = value
    bad.layers["counts"] = counts.tocsr()
    with pytest.raises(ValueError, match=rf"layers\['counts'\] must hold non-negative .*{shown}"):
        data.add_condition_effect(bad, KEY)


def test_rejects_missing_cell_types(pbmc):
    bad = pbmc.copy()
    bad.obs[KEY] = bad.obs[KEY].astype(object)
    bad.obs.iloc[0, bad.obs.columns.get_loc(KEY)] = None
    with pytest.raises(ValueError, match="has missing values"):
        data.add_condition_effect(bad, KEY)
