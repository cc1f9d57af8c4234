"""Property-based tests of the validation layer and the metrics (no training)."""

import re
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scvi.dataloaders._data_splitting import validate_data_split

from cgmvae.metrics import (
    _log_normalised_means,
    cluster_scores,
    clustering_accuracy,
    r2_mean_expression,
    response_correlation,
)
from cgmvae.nn.likelihood import COUNT_LIKELIHOODS, LIKELIHOODS
from cgmvae.validation import (
    align_var_names,
    check_known_categories,
    check_model_params,
    check_obs_key,
    check_trainable,
    check_values_for_likelihood,
    training_set_size,
)

FEW = settings(max_examples=30, deadline=None)
DTYPES = st.sampled_from([np.int32, np.int64, np.float32, np.float64])
SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12)


@st.composite
def count_matrices(draw, dtype=DTYPES):
    """Non-negative integer counts of a random shape and dtype."""
    return draw(hnp.arrays(draw(dtype), draw(SHAPES), elements=st.integers(0, 50)))


def as_format(values, sparse):
    return sp.csr_matrix(values) if sparse else values


def count_warnings(values, likelihood):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_values_for_likelihood(values, likelihood)
    return [w for w in caught if "integer counts" in str(w.message)]


# values against the likelihood -------------------------------------------------------------


@FEW
@given(count_matrices(), st.booleans(), st.sampled_from(LIKELIHOODS[:1] + COUNT_LIKELIHOODS))
def test_counts_are_accepted_silently(values, sparse, likelihood):
    assert not count_warnings(as_format(values, sparse), likelihood)


@FEW
@given(
    count_matrices(st.sampled_from([np.float32, np.float64])),
    st.booleans(),
    st.sampled_from(LIKELIHOODS),
    st.sampled_from([np.nan, np.inf, -np.inf]),
    st.data(),
)
def test_any_non_finite_value_is_refused(values, sparse, likelihood, bad, data):
    row = data.draw(st.integers(0, values.shape[0] - 1))
    column = data.draw(st.integers(0, values.shape[1] - 1))
    values[row, column] = bad
    with pytest.raises(ValueError, match="NaN"):
        check_values_for_likelihood(as_format(values, sparse), likelihood)


@FEW
@given(
    count_matrices(st.sampled_from([np.int32, np.float32])),
    st.booleans(),
    st.sampled_from(COUNT_LIKELIHOODS),
    st.data(),
)
def test_any_negative_value_is_refused_by_count_likelihoods(values, sparse, likelihood, data):
    row = data.draw(st.integers(0, values.shape[0] - 1))
    column = data.draw(st.integers(0, values.shape[1] - 1))
    values[row, column] = -data.draw(st.integers(1, 5))
    with pytest.raises(ValueError, match="non-negative"):
        check_values_for_likelihood(as_format(values, sparse), likelihood)


@FEW
@given(count_matrices(st.sampled_from([np.float32, np.float64])), st.booleans(), st.data())
def test_a_fraction_makes_count_likelihoods_warn(values, sparse, data):
    row = data.draw(st.integers(0, values.shape[0] - 1))
    column = data.draw(st.integers(0, values.shape[1] - 1))
    values[row, column] += 0.5
    assert count_warnings(as_format(values, sparse), data.draw(st.sampled_from(COUNT_LIKELIHOODS)))


@FEW
@given(
    hnp.arrays(np.float64, SHAPES, elements=st.floats(0, 1)),
    st.booleans(),
    st.floats(1.001, 1e6) | st.floats(-1e6, -0.001),
    st.data(),
)
def test_bernoulli_accepts_exactly_the_unit_interval(values, sparse, outside, data):
    check_values_for_likelihood(as_format(values, sparse), "bernoulli")
    values[data.draw(st.integers(0, values.shape[0] - 1)), 0] = outside
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_values_for_likelihood(as_format(values, sparse), "bernoulli")


# hyper-parameters ---------------------------------------------------------------------------

SIZES = st.sampled_from(["n_latent", "n_hidden", "n_layers", "n_clusters", "n_mc_samples"])


@FEW
@given(SIZES, st.integers(1, 10**6), st.integers(-(10**6), 0))
def test_sizes_must_be_positive_integers(name, good, bad):
    check_model_params(**{name: good})
    with pytest.raises(ValueError, match=name):
        check_model_params(**{name: bad})


@FEW
@given(SIZES, st.floats(allow_nan=True) | st.text(max_size=3) | st.booleans())
def test_sizes_of_another_type_are_refused_by_name(name, value):
    with pytest.raises(TypeError, match=name):
        check_model_params(**{name: value})


@FEW
@given(
    st.sampled_from(["beta", "beta_y", "free_bits", "noise_sd"]),
    st.floats(0, 1e6),
    st.floats(max_value=-1e-9) | st.just(float("nan")),
)
def test_weights_must_be_non_negative(name, good, bad):
    check_model_params(**{name: good})
    with pytest.raises(ValueError, match=name):
        check_model_params(**{name: bad})


@FEW
@given(st.text(min_size=1, max_size=8))
def test_unknown_likelihoods_are_refused(name):
    assume(name not in LIKELIHOODS)
    with pytest.raises(ValueError, match="Choose one of"):
        check_model_params(likelihood=name)


# AnnData keys, categories and genes ---------------------------------------------------------

NAMES = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)


@FEW
@given(st.lists(NAMES, min_size=1, max_size=6, unique=True), NAMES)
def test_obs_keys_are_found_or_named(columns, key):
    adata = anndata.AnnData(obs=pd.DataFrame({c: range(3) for c in columns}, index=list("abc")))
    check_obs_key(adata, columns[0], "condition_key")
    assume(key not in columns)
    with pytest.raises(KeyError, match=re.escape(f"condition_key={key!r}")):
        check_obs_key(adata, key, "condition_key")


@FEW
@given(st.lists(NAMES, min_size=1, max_size=6, unique=True), st.data())
def test_only_categories_seen_in_training_pass(known, data):
    n_seen = data.draw(st.integers(1, len(known)))
    values = data.draw(st.lists(st.sampled_from(known[:n_seen]), min_size=1, max_size=20))
    adata = anndata.AnnData(obs=pd.DataFrame({"c": pd.Categorical(values)}))
    adata.obs_names = adata.obs_names.astype(str)
    check_known_categories(adata, "c", "condition_key", known)
    unseen = data.draw(NAMES.filter(lambda name: name not in known))
    adata.obs["c"] = pd.Categorical([*values[:-1], unseen])
    with pytest.raises(ValueError, match=re.escape(f"not seen in training: {unseen!r}")):
        check_known_categories(adata, "c", "condition_key", known)


def gene_adata(genes, sparse, seed=0):
    values = np.random.default_rng(seed).poisson(2.0, (4, len(genes))).astype(np.float32)
    adata = anndata.AnnData(as_format(values, sparse))
    adata.var_names = genes
    return adata


@FEW
@given(st.integers(1, 30), st.booleans(), st.randoms(use_true_random=False))
def test_genes_in_another_order_are_aligned_on_a_copy(n_genes, sparse, random):
    genes = [f"g{i}" for i in range(n_genes)]
    shuffled = random.sample(genes, n_genes)
    adata = gene_adata(shuffled, sparse)
    before = adata.X.copy()
    aligned = align_var_names(adata, genes)
    assert list(aligned.var_names) == genes
    assert list(adata.var_names) == shuffled
    assert (aligned is adata) == (shuffled == genes)
    dense = before.toarray() if sparse else before
    aligned_dense = aligned.X.toarray() if sparse else aligned.X
    np.testing.assert_array_equal(aligned_dense, dense[:, [shuffled.index(g) for g in genes]])
    np.testing.assert_array_equal(adata.X.toarray() if sparse else adata.X, dense)


@FEW
@given(st.integers(2, 30), st.data())
def test_missing_genes_are_counted_and_named(n_genes, data):
    genes = [f"g{i}" for i in range(n_genes)]
    n_missing = data.draw(st.integers(1, n_genes - 1))
    missing = data.draw(st.permutations(genes))[:n_missing]
    adata = gene_adata([g for g in genes if g not in missing], data.draw(st.booleans()))
    with pytest.raises(ValueError, match=f"{n_missing} training genes are missing") as error:
        align_var_names(adata, genes)
    assert repr(sorted(missing, key=genes.index)[0]) in str(error.value)


# training-set size ----------------------------------------------------------------------------


@FEW
@given(
    st.integers(1, 2000),
    st.none() | st.floats(0.05, 1.0),
    st.integers(2, 256),
)
def test_training_set_size_matches_scvi_tools(n_obs, train_size, batch_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = validate_data_split(
            n_obs, train_size or 0.9, batch_size=batch_size, train_size_is_none=train_size is None
        )[0]
    assert training_set_size(n_obs, train_size, batch_size) == expected


@FEW
@given(st.integers(1, 2000), st.none() | st.floats(0.05, 1.0), st.integers(1, 256))
def test_check_trainable_passes_only_minibatches_of_two_or_more(n_obs, train_size, batch_size):
    try:
        check_trainable(n_obs, train_size, batch_size)
    except ValueError as error:
        n_train = training_set_size(n_obs, train_size, batch_size)
        assert batch_size < 2 or n_train < 2 or n_train % batch_size == 1, error
        suggested = re.search(r"Use batch_size=(\d+)", str(error))
        if suggested and batch_size >= 2:
            check_trainable(n_obs, train_size, int(suggested.group(1)))
    else:
        n_train = training_set_size(n_obs, train_size, batch_size)
        assert batch_size >= 2 and n_train >= 2 and n_train % batch_size != 1


# metrics --------------------------------------------------------------------------------------

LABELS = st.lists(st.integers(0, 5), min_size=1, max_size=60)


@FEW
@given(LABELS, st.randoms(use_true_random=False))
def test_accuracy_ignores_cluster_names(truth, random):
    truth = np.asarray(truth)
    pred = truth.copy()
    random.shuffle(pred)
    names = {k: f"cluster {v}" for k, v in zip(range(6), random.sample(range(6), 6), strict=True)}
    renamed = np.array([names[k] for k in pred])
    assert clustering_accuracy(truth, renamed) == pytest.approx(clustering_accuracy(truth, pred))
    assert clustering_accuracy(truth, truth) == 1.0


@FEW
@given(LABELS, st.data())
def test_cluster_scores_are_bounded_and_symmetric(truth, data):
    pred = data.draw(st.lists(st.integers(0, 5), min_size=len(truth), max_size=len(truth)))
    scores = cluster_scores(truth, pred)
    swapped = cluster_scores(pred, truth)
    assert 0.0 <= scores["acc"] <= 1.0 and 0.0 <= scores["nmi"] <= 1.0 + 1e-12
    assert -1.0 <= scores["ari"] <= 1.0
    assert scores == pytest.approx(swapped)


@FEW
@given(LABELS)
def test_one_cluster_scores_the_largest_class_fraction(truth):
    largest = np.bincount(truth).max() / len(truth)
    assert clustering_accuracy(truth, ["all"] * len(truth)) == pytest.approx(largest)


@st.composite
def expression(draw, n_genes=None):
    """Cells × genes counts with a positive total per cell and varying gene means."""
    shape = (draw(st.integers(2, 15)), n_genes or draw(st.integers(3, 12)))
    values = draw(hnp.arrays(np.float64, shape, elements=st.integers(0, 30)))
    values[:, 0] += 1 + np.arange(shape[0])
    values[:, 1] += 40
    return values


@FEW
@given(expression(), st.booleans(), st.data())
def test_r2_is_one_on_itself_and_ignores_library_size(values, sparse, data):
    other = data.draw(expression(values.shape[1]))
    scale = np.asarray(data.draw(st.lists(st.floats(0.5, 20), min_size=len(values))))[:, None]
    assert r2_mean_expression(as_format(values, sparse), values) == pytest.approx(1.0)
    r2 = r2_mean_expression(as_format(values, sparse), other)
    assert 0.0 <= r2 <= 1.0 + 1e-9
    assert r2_mean_expression(values * scale[: len(values)], other) == pytest.approx(r2)


@FEW
@given(st.integers(3, 12).flatmap(lambda n: st.tuples(*[expression(n)] * 3)))
def test_response_correlation_is_one_for_the_truth_and_nan_for_no_change(matrices):
    control, truth, other = matrices
    control_means = _log_normalised_means(control)
    lfc = _log_normalised_means(truth) - control_means
    assume(np.ptp(lfc[control_means >= 0.05]) > 1e-6)
    assert response_correlation(truth, control, truth) == pytest.approx(1.0)
    assert response_correlation(truth, control, lfc, truth_is_lfc=True) == pytest.approx(1.0)
    assert np.isnan(response_correlation(control, control, truth))
    r = response_correlation(other, control, truth)
    assert np.isnan(r) or -1.0 - 1e-9 <= r <= 1.0 + 1e-9
