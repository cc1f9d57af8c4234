"""Tests of the ground truth shared by the generators: one .uns scheme, one reading API."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from cgmvae import data
from cgmvae.data.synthetic.ground_truth import make_ground_truth

SHARED_FIELDS = {
    "generator",
    "params",
    "group_key",
    "condition_key",
    "group_names",
    "condition_names",
    "reference_condition",
    "log_fold_changes",
}
GENERATORS = {"sim": "simulate", "semi": "add_condition_effect"}


@pytest.fixture(params=sorted(GENERATORS))
def generated(request) -> ad.AnnData:
    """The output of each generator (fixtures ``sim`` and ``semi``)."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def three_conditions() -> ad.AnnData:
    return data.simulate(
        n_obs=600, n_vars=80, n_clusters=3, n_conditions=3, seed=5, n_condition_genes=10
    )


def test_both_generators_write_the_same_fields(generated):
    truth = generated.uns[data.GROUND_TRUTH_KEY]
    generator = truth["generator"]
    assert generator in GENERATORS.values()
    optional = {"true_means"} if generator == "simulate" else set()
    assert set(truth) == SHARED_FIELDS | {generator} | optional
    assert isinstance(truth[generator], dict) and truth[generator]
    groups = generated.obs[truth["group_key"]].cat.categories
    conditions = generated.obs[truth["condition_key"]].cat.categories
    assert list(truth["group_names"]) == list(groups)
    assert list(truth["condition_names"]) == list(conditions)
    assert truth["reference_condition"] == conditions[0]
    lfc = truth["log_fold_changes"]
    assert lfc.dtype == np.float64
    assert lfc.shape == (len(groups), len(conditions), generated.n_vars)
    assert not lfc[:, 0].any() and lfc[:, 1:].any()
    assert isinstance(truth["params"], dict) and "seed" in truth["params"]


def test_true_log_fold_change_defaults_to_condition_versus_reference(generated):
    truth = generated.uns["ground_truth"]
    stored = truth["log_fold_changes"]
    reference, other = truth["condition_names"]
    for k, group in enumerate(truth["group_names"]):
        lfc = data.true_log_fold_change(generated, group)
        assert lfc.dtype == np.float64 and lfc.shape == (generated.n_vars,)
        np.testing.assert_array_equal(lfc, stored[k, 1])
        np.testing.assert_array_equal(data.true_log_fold_change(generated, k, 1, 0), lfc)
        np.testing.assert_array_equal(
            data.true_log_fold_change(generated, group, other, reference), lfc
        )
        np.testing.assert_array_equal(
            data.true_log_fold_change(generated, group, reference=other), -lfc
        )
        assert not data.true_log_fold_change(generated, group, reference, reference).any()


def test_true_log_fold_change_is_the_log_ratio_of_mean_counts(generated):
    """Both generators: the truth predicts the observed per-group log ratio of mean counts."""
    truth = generated.uns["ground_truth"]
    x = generated.X.toarray() if hasattr(generated.X, "toarray") else generated.X
    groups = generated.obs[truth["group_key"]].to_numpy()
    conditions = generated.obs[truth["condition_key"]].to_numpy()
    reference, other = truth["condition_names"]
    checked = 0
    for group in truth["group_names"]:
        control = (groups == group) & (conditions == reference)
        treated = (groups == group) & (conditions == other)
        if min(control.sum(), treated.sum()) < 20:
            continue
        before, after = x[control].mean(axis=0), x[treated].mean(axis=0)
        expressed = (before > 0.5) & (after > 0.5)
        observed = np.log(after[expressed] / before[expressed])
        expected = data.true_log_fold_change(generated, group)[expressed]
        assert np.corrcoef(observed, expected)[0, 1] > 0.75, group
        checked += 1
    assert checked >= 4


def test_simulator_log_fold_change_is_the_ratio_of_true_means(three_conditions):
    names = three_conditions.uns["ground_truth"]["condition_names"]
    for group in range(3):
        for condition in names:
            for reference in names:
                ratio = np.log(
                    data.true_mean(three_conditions, group, condition)
                    / data.true_mean(three_conditions, group, reference)
                )
                np.testing.assert_allclose(
                    data.true_log_fold_change(three_conditions, group, condition, reference),
                    ratio,
                    rtol=0,
                    atol=1e-12,
                )


def test_condition_is_needed_when_there_are_more_than_two(three_conditions):
    with pytest.raises(ValueError, match="pass condition: there are 3 conditions"):
        data.true_log_fold_change(three_conditions, "cluster_0")
    # with a reference other than the first, the two remaining conditions are ambiguous too
    with pytest.raises(ValueError, match="ambiguous"):
        data.true_log_fold_change(three_conditions, 0, reference="condition_2")


def test_true_mean_and_cell_means_on_the_simulator(sim):
    means = sim.uns["ground_truth"]["true_means"]
    np.testing.assert_array_equal(
        data.true_mean(sim, "cluster_1", "condition_1"), data.true_mean(sim, 1, -1)
    )
    np.testing.assert_array_equal(data.true_mean(sim, 2, 0), means[2, 0])
    cells = data.true_cell_means(sim[:50])
    k = sim.obs["cluster"].cat.codes.to_numpy()[:50]
    c = sim.obs["condition"].cat.codes.to_numpy()[:50]
    np.testing.assert_array_equal(cells, means[k, c])
    counterfactual = data.true_cell_means(sim[:50], condition="condition_0")
    np.testing.assert_array_equal(counterfactual, means[k, 0])


def test_true_means_are_unknown_for_semi_synthetic_data(semi):
    with pytest.raises(KeyError, match="add_condition_effect has no true means"):
        data.true_mean(semi, "CD34+", "control")
    with pytest.raises(KeyError, match="true_log_fold_change"):
        data.true_cell_means(semi)


@pytest.mark.parametrize("reader", ["true_log_fold_change", "true_mean", "true_cell_means"])
def test_unknown_names_and_indices(sim, reader):
    read = getattr(data, reader)
    if reader == "true_cell_means":
        with pytest.raises(KeyError, match="unknown condition 'interferon'"):
            read(sim, "interferon")
        return
    with pytest.raises(KeyError, match="unknown group 'no_such_cluster'; expected one of"):
        read(sim, "no_such_cluster", 0)
    with pytest.raises(IndexError, match="group index 4 out of range for 4 groups"):
        read(sim, 4, 0)
    with pytest.raises(KeyError, match="unknown condition 'interferon'"):
        read(sim, 0, "interferon")


def test_cells_outside_the_ground_truth_are_refused(sim):
    subset = sim[:20].copy()
    subset.obs["cluster"] = subset.obs["cluster"].cat.rename_categories(lambda n: n + "_x")
    with pytest.raises(ValueError, match="labels not among the ground truth's names"):
        data.true_cell_means(subset)


def test_missing_ground_truth_says_how_to_make_it(pbmc):
    with pytest.raises(KeyError, match=r"simulate or cgmvae\.data\.add_condition_effect"):
        data.true_log_fold_change(pbmc, "CD34+")
    legacy = ad.AnnData(np.zeros((2, 3)), uns={"semisynthetic": {"log_fold_changes": 0}})
    with pytest.raises(KeyError, match=r"\.uns\['semisynthetic'\] was written by an earlier"):
        data.true_log_fold_change(legacy, 0)


def test_ground_truth_survives_subsetting_and_h5ad(generated, tmp_path):
    subset = generated[::3].copy()
    path = tmp_path / "subset.h5ad"
    subset.write_h5ad(path)
    back = ad.read_h5ad(path)
    truth, back_truth = generated.uns["ground_truth"], back.uns["ground_truth"]
    for field in ("generator", "group_key", "condition_key", "reference_condition"):
        assert back_truth[field] == truth[field]
    for field in ("group_names", "condition_names", "log_fold_changes"):
        np.testing.assert_array_equal(back_truth[field], truth[field])
    assert back_truth["params"] == truth["params"]
    group = truth["group_names"][-1]
    np.testing.assert_array_equal(
        data.true_log_fold_change(back, group), data.true_log_fold_change(generated, group)
    )


def test_make_ground_truth_checks_shapes():
    lfc = np.zeros((2, 2, 5))
    truth = make_ground_truth(
        "toy",
        {"seed": 0},
        group_key="g",
        condition_key="c",
        group_names=["a", "b"],
        condition_names=["ctrl", "stim"],
        log_fold_changes=lfc,
        extras={"note": "x"},
    )
    assert truth["toy"] == {"note": "x"} and truth["reference_condition"] == "ctrl"
    assert "true_means" not in truth
    with pytest.raises(ValueError, match=r"log_fold_changes has shape \(2, 2, 5\), expected"):
        make_ground_truth(
            "toy",
            {},
            group_key="g",
            condition_key="c",
            group_names=["a", "b", "c"],
            condition_names=["ctrl", "stim"],
            log_fold_changes=lfc,
            extras={},
        )
