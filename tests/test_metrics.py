import numpy as np
import pytest

from cgmvae.metrics import cluster_scores, clustering_accuracy


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
