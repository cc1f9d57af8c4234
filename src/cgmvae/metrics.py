"""Clustering and counterfactual scores used throughout the benchmarks."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def _as_codes(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"Labels must be one-dimensional, got shape {labels.shape}.")
    return np.unique(labels.astype(str), return_inverse=True)[1]


def clustering_accuracy(true_labels, predicted_labels) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes (Hungarian).

    Clusters left unmatched (when there are more clusters than classes) count as errors.
    """
    truth, pred = _as_codes(true_labels), _as_codes(predicted_labels)
    if truth.shape != pred.shape:
        raise ValueError(f"Label arrays differ in length: {truth.shape[0]} vs {pred.shape[0]}.")
    if truth.size == 0:
        raise ValueError("Cannot score empty label arrays.")
    contingency = np.zeros((pred.max() + 1, truth.max() + 1), dtype=np.int64)
    np.add.at(contingency, (pred, truth), 1)
    rows, cols = linear_sum_assignment(-contingency)
    return float(contingency[rows, cols].sum() / truth.size)


def cluster_scores(true_labels, predicted_labels) -> dict[str, float]:
    """Hungarian accuracy, NMI and ARI of a clustering against known classes."""
    truth, pred = _as_codes(true_labels), _as_codes(predicted_labels)
    return {
        "acc": clustering_accuracy(truth, pred),
        "nmi": float(normalized_mutual_info_score(truth, pred)),
        "ari": float(adjusted_rand_score(truth, pred)),
    }
