import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cgmvae.metrics import (
    _log_normalised_means,
    cluster_scores,
    clustering_accuracy,
    r2_mean_expression,
    response_correlation,
)

FEW = settings(max_examples=30, deadline=None)


def as_format(values, sparse):
    return sp.csr_matrix(values) if sparse else values


def test_accuracy_is_invariant_to_cluster_names():
    truth = np.array([0, 0, 1, 1, 2, 2])
    renamed = np.array(["b", "b", "c", "c", "a", "a"])
    assert cluster_scores(truth, renamed) == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})


def test_accuracy_uses_one_to_one_matching():
    truth = np.array([0, 0, 0, 1, 1, 1])
    merged = np.zeros(6, dtype=int)
    assert clustering_accuracy(truth, merged) == pytest.approx(0.5)
    pred = np.array([0, 0, 1, 1, 1, 1])
    assert clustering_accuracy(truth, pred) == pytest.approx(5 / 6)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="length"):
        clustering_accuracy([0, 1], [0])


# properties -------------------------------------------------------------------------------

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
