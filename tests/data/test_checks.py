"""Tests of the checks of arguments (models and generators share them) and their messages."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cgmvae import data, validation


@pytest.mark.parametrize("value", [0, 3, np.int64(7)])
def test_check_count_accepts_integers(value):
    validation.check_count("n", value)


@pytest.mark.parametrize(
    ("value", "shown"), [(2.5, "2.5"), (3.0, "3.0"), ("3", "'3'"), (True, "True")]
)
def test_a_count_of_the_wrong_kind_is_a_type_error(value, shown):
    with pytest.raises(TypeError, match=rf"^n_genes must be a whole number, got {shown} \("):
        validation.check_count("n_genes", value)


@pytest.mark.parametrize(("value", "minimum", "shown"), [(-1, 0, "-1"), (0, 1, "0")])
def test_check_count_message(value, minimum, shown):
    with pytest.raises(
        ValueError, match=rf"^n_genes must be an integer >= {minimum}, not {shown}$"
    ):
        validation.check_count("n_genes", value, minimum=minimum)


@pytest.mark.parametrize("value", [0.0, -1.0, np.inf, np.nan])
def test_check_positive_message_and_hint(value):
    with pytest.raises(ValueError, match=r"^size must be positive and finite, not .+; try 2$"):
        validation.check_positive("size", value, hint="try 2")
    validation.check_positive("size", 1e-9)


@pytest.mark.parametrize("check", ["check_positive", "check_non_negative", "check_fraction"])
def test_a_number_of_the_wrong_kind_is_a_type_error(check):
    for value in ("1", True, None):
        with pytest.raises(TypeError, match=r"^size must be a number, got "):
            getattr(validation, check)("size", value)


@pytest.mark.parametrize("value", [-0.1, np.inf, np.nan])
def test_check_non_negative_message(value):
    with pytest.raises(ValueError, match=r"^sd must be finite and >= 0, not "):
        validation.check_non_negative("sd", value)
    validation.check_non_negative("sd", 0.0)


def test_check_fraction_closed_and_open():
    for value in (0.0, 0.5, 1.0):
        validation.check_fraction("p", value)
    for value in (-0.01, 1.01, np.nan):
        with pytest.raises(ValueError, match=r"^p must lie in \[0, 1\], not "):
            validation.check_fraction("p", value)
    validation.check_fraction("p", 0.5, strict=True)
    for value in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"^p must lie strictly between 0 and 1, not "):
            validation.check_fraction("p", value, strict=True)


def test_check_distinct_names():
    assert validation.check_distinct_names([1, "b"], 2, "names") == ["1", "b"]
    with pytest.raises(ValueError, match=r"names must be 2 distinct names, not \['a', 'a'\]"):
        validation.check_distinct_names(["a", "a"], 2, "names")
    with pytest.raises(ValueError, match="names must be 3 distinct names"):
        validation.check_distinct_names(["a", "b"], 3, "names")


def test_check_proportions():
    np.testing.assert_array_equal(validation.check_proportions(None, 4, "p"), np.full(4, 0.25))
    np.testing.assert_allclose(validation.check_proportions([3, 1], 2, "p"), [0.75, 0.25])
    for bad in ([1, 1, 1], [1, -1], [0, 0], [np.inf, 1]):
        with pytest.raises(ValueError, match="p must be 2 non-negative numbers with a positive"):
            validation.check_proportions(bad, 2, "p")


def test_check_dispersion():
    np.testing.assert_array_equal(validation.check_dispersion(0.5, 3), [0.5, 0.5, 0.5])
    given = np.array([0.0, 1.0, 2.0])
    out = validation.check_dispersion(given, 3)
    out[0] = 9
    assert given[0] == 0  # a copy
    with pytest.raises(ValueError, match=r"one number or 3 \(one per gene\), not shape \(2,\)"):
        validation.check_dispersion([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="dispersion must be finite and >= 0"):
        validation.check_dispersion([1.0, np.nan, 2.0], 3)


def test_check_enough_genes():
    validation.check_enough_genes(5, 5, needed_for="a", available_as="b", hint="c")
    with pytest.raises(
        ValueError,
        match=r"^6 genes are needed \(markers\), but only 5 are available \(n_vars\); raise it$",
    ):
        validation.check_enough_genes(
            6, 5, needed_for="markers", available_as="n_vars", hint="raise it"
        )


@pytest.fixture
def small() -> ad.AnnData:
    adata = ad.AnnData(
        sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0], [0.0, 4.0]])),
        obs=pd.DataFrame({"type": ["a", "b", "a"]}, index=["c0", "c1", "c2"]),
    )
    adata.layers["counts"] = adata.X.copy()
    return adata


def test_check_layer_and_new_obs_column(small):
    validation.check_layer(small, None, reserved="out")
    validation.check_layer(small, "counts", reserved="out")
    with pytest.raises(KeyError, match=r"layer='raw' is not in adata.layers.*layers: counts;"):
        validation.check_layer(small, "raw", reserved="out")
    small.layers["out"] = small.X.copy()
    with pytest.raises(ValueError, match="layer must not be 'out': the output uses that name"):
        validation.check_layer(small, "out", reserved="out")
    validation.check_new_obs_column(small, "condition", "condition_key")
    with pytest.raises(
        ValueError, match="already has a column 'type'; pass another condition_key"
    ):
        validation.check_new_obs_column(small, "type", "condition_key")


def test_check_labels(small):
    small.obs["type"] = pd.Categorical(["a", "b", "a"], categories=["z", "a", "b"])
    labels = validation.check_labels(small, "type", "cell_type_key")
    assert list(labels.categories) == ["a", "b"]  # unused categories dropped
    with pytest.raises(KeyError, match=r"cell_type_key 'kind' is not a column .*\['type'\]"):
        validation.check_labels(small, "kind", "cell_type_key")
    small.obs["type"] = ["a", None, "b"]
    with pytest.raises(ValueError, match=r"adata.obs\['type'\] has missing values"):
        validation.check_labels(small, "type", "cell_type_key")


def test_check_subset():
    names = ["x", "y", "z"]
    np.testing.assert_array_equal(
        validation.check_subset(None, names, name="n", among="m"), [0, 1, 2]
    )
    np.testing.assert_array_equal(validation.check_subset("y", names, name="n", among="m"), [1])
    np.testing.assert_array_equal(
        validation.check_subset(["z", "x"], names, name="n", among="m"), [0, 2]
    )
    with pytest.raises(ValueError, match=r"^picked \['w'\] are not letters; choose among"):
        validation.check_subset(["w", "x"], names, name="picked", among="letters")
    with pytest.raises(ValueError, match=r"picked has duplicates: \['x', 'x'\]"):
        validation.check_subset(["x", "x"], names, name="picked", among="letters")


def test_check_integer_counts():
    dense = np.array([[1.0, 0.0], [0.0, 2.0]])
    counts = validation.check_integer_counts(dense, "adata.X")
    assert sp.isspmatrix_csr(counts) and counts.dtype == np.float64 and counts.nnz == 2
    dense[0, 0] = 5  # a copy
    assert counts[0, 0] == 1
    with pytest.raises(
        ValueError, match=r"^adata.X must hold non-negative integer counts, .* 1.5"
    ):
        validation.check_integer_counts(np.array([[1.5, 0.0]]), "adata.X")


def test_both_generators_use_the_same_checks(pbmc):
    """The same kind of bad argument gets the same message from either generator."""
    fraction = r"must lie in \[0, 1\], not 1.5"
    with pytest.raises(ValueError, match="shared_effect_fraction " + fraction):
        data.simulate(shared_effect_fraction=1.5)
    with pytest.raises(ValueError, match="shared_fraction " + fraction):
        data.add_condition_effect(pbmc, "bulk_labels", shared_fraction=1.5)
    count = "must be an integer >= 0, not -2"
    with pytest.raises(ValueError, match="n_condition_genes " + count):
        data.simulate(n_condition_genes=-2)
    with pytest.raises(ValueError, match="n_genes " + count):
        data.add_condition_effect(pbmc, "bulk_labels", n_genes=-2)
    with pytest.raises(ValueError, match=r"genes are needed .* are available"):
        data.simulate(n_vars=10)
    with pytest.raises(ValueError, match=r"genes are needed .* are available"):
        data.add_condition_effect(pbmc, "bulk_labels", n_genes=700)
