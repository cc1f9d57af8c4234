"""Clustering and counterfactual scores used throughout the benchmarks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
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


def _log_normalised_means(expression, target_sum: float = 1e4) -> np.ndarray:
    """Per-gene mean of log1p(expression normalised to ``target_sum`` per cell)."""
    matrix = expression.toarray() if sp.issparse(expression) else np.asarray(expression)
    matrix = np.atleast_2d(matrix).astype(np.float64)
    totals = matrix.sum(1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError("Every cell needs a positive total to be normalised.")
    return np.log1p(matrix / totals * target_sum).mean(0)


def _gene_positions(top_genes, n_vars: int) -> np.ndarray:
    positions = np.asarray(top_genes)
    if positions.dtype == bool:
        positions = np.flatnonzero(positions)
    if positions.size == 0 or positions.max() >= n_vars:
        raise ValueError(f"top_genes must index genes in [0, {n_vars}); got {top_genes!r}.")
    return positions


def r2_mean_expression(predicted, truth, top_genes=None) -> float:
    """Squared Pearson correlation of per-gene log-normalised means (the scGen protocol).

    Parameters
    ----------
    predicted, truth
        Cells × genes expression (counts or expected counts), dense or sparse. Each cell is
        normalised to 10⁴, log1p-transformed, then averaged per gene.
    top_genes
        Integer positions or a boolean mask of genes to score (e.g. the top-100 DE genes);
        ``None`` scores all genes.

    Returns
    -------
    float
        r² between the two vectors of gene means.
    """
    pred_means, true_means = _log_normalised_means(predicted), _log_normalised_means(truth)
    if pred_means.shape != true_means.shape:
        raise ValueError(f"Gene counts differ: {pred_means.size} vs {true_means.size}.")
    if top_genes is not None:
        genes = _gene_positions(top_genes, pred_means.size)
        pred_means, true_means = pred_means[genes], true_means[genes]
    return float(np.corrcoef(pred_means, true_means)[0, 1] ** 2)


def response_correlation(
    predicted, control, truth, min_mean: float = 0.05, truth_is_lfc: bool = False
) -> float:
    """Pearson r between the predicted and the true response over expressed genes.

    The response of a gene is its log fold change against ``control``: the difference of
    log-normalised means. R² of means is dominated by baseline expression (a "no change"
    predictor scores ~0.9 on it); this score is zero for that predictor's constant response.

    Parameters
    ----------
    predicted
        Cells × genes: the counterfactual prediction.
    control
        Cells × genes: the same cell type under the reference condition.
    truth
        Cells × genes measured under the target condition, or (``truth_is_lfc=True``) the
        true per-gene log fold change.
    min_mean
        Genes whose mean log-normalised control expression is below this are left out.
    truth_is_lfc
        Treat ``truth`` as a vector of true log fold changes.

    Returns
    -------
    float
        Pearson r; ``nan`` when the predicted response is constant.
    """
    control_means = _log_normalised_means(control)
    predicted_lfc = _log_normalised_means(predicted) - control_means
    true_lfc = (
        np.asarray(truth, dtype=np.float64).ravel()
        if truth_is_lfc
        else _log_normalised_means(truth) - control_means
    )
    expressed = control_means >= min_mean
    if predicted_lfc[expressed].std() == 0:
        return float("nan")
    return float(np.corrcoef(predicted_lfc[expressed], true_lfc[expressed])[0, 1])


def de_recovery(
    predicted,
    control,
    true_lfc,
    n_top: int = 100,
    threshold: float = 0.5,
    min_mean: float = 0.05,
) -> float:
    """Fraction of the truly changed genes among the ``n_top`` largest predicted changes.

    Parameters
    ----------
    predicted, control
        Cells × genes: the counterfactual prediction and the same cells as measured.
    true_lfc
        True per-gene log fold change.
    n_top
        Number of genes with the largest absolute predicted log fold change that are called.
    threshold
        Genes whose absolute true log fold change is at least this are truly changed.
    min_mean
        Genes whose mean log-normalised control expression is below this are left out.

    Returns
    -------
    float
        Recovered fraction in [0, 1]; ``nan`` when no expressed gene truly changes or the
        predicted change is the same for every gene (no ranking).
    """
    control_means = _log_normalised_means(control)
    predicted_lfc = _log_normalised_means(predicted) - control_means
    true_lfc = np.asarray(true_lfc, dtype=np.float64).ravel()
    expressed = np.flatnonzero(control_means >= min_mean)
    changed = set(expressed[np.abs(true_lfc[expressed]) >= threshold])
    if not changed or predicted_lfc[expressed].std() == 0:
        return float("nan")
    called = expressed[np.argsort(-np.abs(predicted_lfc[expressed]))[:n_top]]
    return len(changed.intersection(called)) / min(len(changed), n_top)
