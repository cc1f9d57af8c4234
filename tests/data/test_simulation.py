"""Tests of cgmvae.data.simulate: shapes, determinism, ground truth, distributions, scale."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cgmvae import data
from cgmvae.data.synthetic import _counts


def test_simulate_shapes_and_types(sim, assert_integer_csr, assert_counts_layer):
    assert data.simulate().shape == (2000, 200)
    assert sim.shape == (4000, 200)
    assert_integer_csr(sim.X)
    assert_counts_layer(sim)
    assert sim.X.nnz > 0
    assert list(sim.obs["cluster"].cat.categories) == [f"cluster_{k}" for k in range(4)]
    assert list(sim.obs["condition"].cat.categories) == ["condition_0", "condition_1"]
    assert sim.obs["cluster"].value_counts().min() > 800
    assert sim.obs["condition"].value_counts().min() > 1800
    assert sim.obs_names.is_unique and sim.var_names.is_unique


def test_simulate_counts_are_pinned_per_seed(csr_digest):
    """The counts of a seed never change (update the pin only if NumPy's streams change)."""
    adata = data.simulate(
        n_obs=300,
        n_vars=60,
        n_clusters=3,
        n_conditions=3,
        seed=11,
        n_markers_per_cluster=5,
        n_condition_genes=8,
        chunk_size=128,
    )
    assert adata.X.nnz == 17345 and adata.X.sum() == 607581
    np.testing.assert_array_equal(adata.X[0].toarray().ravel()[:5], [7, 9, 5, 1, 13])
    np.testing.assert_array_equal(adata.obs["cluster"].cat.codes[:5], [2, 1, 1, 2, 0])
    np.testing.assert_array_equal(adata.obs["condition"].cat.codes[:5], [0, 0, 0, 2, 1])
    assert csr_digest(adata.X) == "e67f236329c7feca"


def test_simulate_requested_size_and_names():
    adata = data.simulate(
        n_obs=321,
        n_vars=57,
        n_clusters=3,
        n_conditions=3,
        seed=1,
        n_markers_per_cluster=5,
        n_condition_genes=8,
        condition_names=["ctrl", "stim", "drug"],
        cluster_names=["T", "B", "NK"],
    )
    assert adata.shape == (321, 57)
    assert "counts" not in adata.layers
    assert list(adata.obs["condition"].cat.categories) == ["ctrl", "stim", "drug"]
    truth = adata.uns["ground_truth"]
    assert list(truth["group_names"]) == ["T", "B", "NK"]
    assert truth["reference_condition"] == "ctrl"
    assert truth["true_means"].shape == (3, 3, 57)
    np.testing.assert_allclose(data.true_mean(adata, "NK", "drug"), truth["true_means"][2, 2])


def test_simulate_deterministic_per_seed_and_different_across_seeds():
    first, again = data.simulate(seed=7), data.simulate(seed=7)
    other = data.simulate(seed=8)
    assert (first.X != again.X).nnz == 0
    pd.testing.assert_frame_equal(first.obs, again.obs)
    means = first.uns["ground_truth"]["true_means"]
    np.testing.assert_array_equal(means, again.uns["ground_truth"]["true_means"])
    assert (first.X != other.X).nnz > 0
    assert not np.array_equal(first.obs["cluster"], other.obs["cluster"])
    assert not np.allclose(means, other.uns["ground_truth"]["true_means"])


def test_simulate_chunks_threads_and_blocks_do_not_change_the_result(monkeypatch):
    reference = data.simulate(n_obs=1000, seed=2, chunk_size=300)
    threaded = data.simulate(n_obs=1000, seed=2, chunk_size=300, n_jobs=2)
    assert (reference.X != threaded.X).nnz == 0
    monkeypatch.setattr(_counts, "_BLOCK_NNZ", 1000)  # many intermediate blocks
    blocked = data.simulate(n_obs=1000, seed=2, chunk_size=300)
    assert (reference.X != blocked.X).nnz == 0
    blocked.X.check_format(full_check=True)
    rechunked = data.simulate(n_obs=1000, seed=2, chunk_size=1000)
    pd.testing.assert_frame_equal(reference.obs, rechunked.obs)  # labels do not depend on it


def test_simulate_ground_truth_structure(sim):
    truth = sim.uns["ground_truth"]
    assert truth["generator"] == "simulate"
    assert (truth["group_key"], truth["condition_key"]) == ("cluster", "condition")
    means = truth["true_means"]
    assert means.shape == (4, 2, 200)
    np.testing.assert_allclose(means.sum(axis=-1), 1.0)
    np.testing.assert_allclose(truth["log_fold_changes"], np.log(means / means[:, :1]))
    extras = truth["simulate"]
    markers = extras["marker_log_fold_changes"] != 0
    assert (markers.sum(axis=1) == 10).all() and markers.sum(axis=0).max() == 1
    effects = extras["condition_log_fold_changes"]
    assert not effects[:, 0].any()
    responding = effects[:, 1] != 0
    assert (responding.sum(axis=1) == 20).all()
    assert responding.all(axis=0).sum() == 10  # shared_effect_fraction=0.5 of 20 genes
    assert not (responding & markers.any(axis=0)).any()
    assert truth["params"]["seed"] == 3
    assert extras["dispersion"].shape == (200,)
    np.testing.assert_allclose(extras["condition_proportions"], [0.5, 0.5])


def test_simulate_group_means_match_true_means(sim):
    x = sim.X.toarray()
    fractions = x / x.sum(axis=1, keepdims=True)
    for (cluster, condition), rows in sim.obs.groupby(
        ["cluster", "condition"], observed=True
    ).indices.items():
        expected = data.true_mean(sim, cluster, condition)
        observed = fractions[rows].mean(axis=0)
        large = expected > 2e-3
        np.testing.assert_allclose(observed[large], expected[large], rtol=0.15)
        assert np.corrcoef(np.log(observed + 1e-5), np.log(expected))[0, 1] > 0.98


def test_simulate_library_sizes_vary_and_match(sim):
    totals = sim.X.sum(axis=1).A1
    library = sim.obs["true_library_size"].to_numpy()
    assert 1800 < totals.mean() < 2200
    assert 0.2 < np.std(np.log(library)) < 0.4
    assert np.corrcoef(totals, library)[0, 1] > 0.9


def test_default_condition_effect_splits_clusters(assert_integer_csr):
    import scanpy as sc
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    adata = data.simulate(seed=0, counts_layer="counts")
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20, random_state=0)
    for cluster in adata.obs["cluster"].cat.categories:
        mask = (adata.obs["cluster"] == cluster).to_numpy()
        found = KMeans(2, n_init=5, random_state=0).fit_predict(adata.obsm["X_pca"][mask])
        assert adjusted_rand_score(adata.obs["condition"][mask], found) > 0.9
    # the counts layer kept the raw counts while .X was normalised in place
    assert_integer_csr(adata.layers["counts"])


def test_simulate_writes_to_h5ad(sim, tmp_path):
    sim.write_h5ad(tmp_path / "sim.h5ad")
    back = ad.read_h5ad(tmp_path / "sim.h5ad")
    assert (back.X != sim.X).nnz == 0
    for key, value in sim.uns["ground_truth"]["simulate"].items():
        np.testing.assert_array_equal(back.uns["ground_truth"]["simulate"][key], value)
    np.testing.assert_array_equal(
        back.uns["ground_truth"]["true_means"], sim.uns["ground_truth"]["true_means"]
    )
    assert back.uns["ground_truth"]["params"] == sim.uns["ground_truth"]["params"]
    np.testing.assert_array_equal(
        data.true_mean(back, "cluster_0", "condition_1"), data.true_mean(sim, 0, 1)
    )


def test_simulate_cluster_proportions():
    given = data.simulate(n_obs=5000, seed=0, cluster_proportions=[7, 1, 1, 1])
    shares = given.obs["cluster"].value_counts(normalize=True, sort=False).to_numpy()
    np.testing.assert_allclose(shares, [0.7, 0.1, 0.1, 0.1], atol=0.03)
    drawn = data.simulate(seed=0, cluster_concentration=0.5).uns["ground_truth"]
    proportions = drawn["simulate"]["cluster_proportions"]
    assert np.isclose(proportions.sum(), 1)
    assert np.ptp(proportions) > 0.05
    assert drawn["params"]["cluster_concentration"] == 0.5


def test_simulate_dispersion_options():
    common = {
        "n_obs": 3000,
        "n_vars": 100,
        "seed": 0,
        "n_clusters": 1,
        "n_conditions": 1,
        "library_size_log_sd": 1e-6,
    }
    x = data.simulate(dispersion=0.0, **common).X.toarray()
    ratio = x.var(axis=0) / x.mean(axis=0)
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    mixed = np.r_[np.zeros(50), np.full(50, 0.5)]
    adata = data.simulate(dispersion=mixed, **common)
    x = adata.X.toarray()
    ratio = x.var(axis=0) / x.mean(axis=0)
    assert np.median(ratio[:50]) < 1.2 < np.median(ratio[50:])
    np.testing.assert_array_equal(adata.uns["ground_truth"]["simulate"]["dispersion"], mixed)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_vars": 30}, r"60 genes are needed .* only 30 are available \(n_vars\)"),
        ({"shared_effect_fraction": 1.5}, r"shared_effect_fraction must lie in \[0, 1\]"),
        ({"n_obs": 0}, "n_obs must be an integer >= 1, not 0"),
        ({"n_condition_genes": -1}, "n_condition_genes must be an integer >= 0"),
        ({"library_size_mean": -1.0}, "library_size_mean must be positive and finite"),
        ({"library_size_log_sd": -0.1}, "library_size_log_sd must be finite and >= 0"),
        ({"base_log_expression_sd": np.nan}, "base_log_expression_sd must be finite"),
        ({"cluster_concentration": 0.0}, "cluster_concentration must be positive"),
        ({"dispersion": -0.1}, "dispersion must be finite and >= 0"),
        ({"dispersion": [0.1, 0.2]}, r"dispersion must be one number or 200"),
        ({"cluster_proportions": [1, 1]}, "cluster_proportions must be 4 non-negative"),
        ({"condition_proportions": [1, -1]}, "condition_proportions must be 2 non-negative"),
        ({"condition_names": ["a", "a"]}, "condition_names must be 2 distinct names"),
        ({"cluster_names": ["a", "b"]}, "cluster_names must be 4 distinct names"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.simulate(**kwargs)


def test_simulate_refuses_a_size_that_is_not_an_integer_as_the_models_do():
    with pytest.raises(TypeError, match=r"n_jobs must be a whole number, got 1.5 \(float\)"):
        data.simulate(n_jobs=1.5)


@pytest.mark.slow
def test_simulate_scaled_down_large_run():
    adata = data.simulate(n_obs=100_000, n_vars=2000, seed=0, n_jobs=2, counts_layer=None)
    assert adata.shape == (100_000, 2000)
    assert adata.X.nnz > 0.3 * 100_000 * 2000
    adata.X.check_format(full_check=True)
