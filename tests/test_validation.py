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

from cgmvae.nn.likelihood import LIKELIHOODS as REGISTERED
from cgmvae.validation import (
    align_var_names,
    check_known_categories,
    check_model_params,
    check_obs_key,
    check_trainable,
    check_values_for_likelihood,
    summarize_values,
)

FEW = settings(max_examples=30, deadline=None)
LIKELIHOODS = tuple(REGISTERED)
COUNT_LIKELIHOODS = tuple(name for name, kind in REGISTERED.items() if kind.counts)
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


@pytest.mark.parametrize("sparse", [False, True])
def test_values_are_checked_chunk_by_chunk_with_the_whole_matrix_answer(monkeypatch, sparse):
    """Big matrices are read in chunks (no whole copy); every chunk counts."""
    rng = np.random.default_rng(0)
    values = rng.poisson(2.0, (40, 9)).astype(np.float32)
    values[3, 4], values[31, 2], values[37, 8] = np.nan, np.inf, 2.5
    values[20, 1], values[29, 5] = -3.0, 60.0
    whole = summarize_values(as_format(values, sparse))
    monkeypatch.setattr("cgmvae.validation.values.CHUNK_VALUES", 7)
    chunked = summarize_values(as_format(values, sparse))
    assert chunked == whole
    assert (chunked.n_nan, chunked.n_inf) == (1, 1)
    assert (chunked.minimum, chunked.maximum, chunked.integers) == (-3.0, 60.0, False)
    with pytest.raises(ValueError, match="1 NaN and 1 infinite"):
        check_values_for_likelihood(as_format(values, sparse), "nb")


@FEW
@given(count_matrices(), st.booleans(), st.sampled_from(("gaussian", *COUNT_LIKELIHOODS)))
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


# training-set size -----------------------------------------------------------------------


@FEW
@given(st.integers(1, 2000), st.integers(0, 2000), st.integers(1, 256), st.booleans())
def test_check_trainable_passes_only_minibatches_of_two_or_more(
    n_obs, n_train, batch_size, drop_last
):
    n_train = min(n_train, n_obs)
    try:
        check_trainable(n_obs, n_train, batch_size, drop_last)
    except ValueError as error:
        last_is_single = not drop_last and n_train % batch_size == 1
        assert batch_size < 2 or n_train < 2 or last_is_single, error
        suggested = re.search(r"Use batch_size=(\d+)", str(error))
        if suggested and batch_size >= 2:
            check_trainable(n_obs, n_train, int(suggested.group(1)), drop_last)
    else:
        assert batch_size >= 2 and n_train >= 2
        assert drop_last or n_train % batch_size != 1
