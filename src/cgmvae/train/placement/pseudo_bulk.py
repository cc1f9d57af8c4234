"""Pseudo-bulk statistics: cells' counts summed per (group, condition).

The condition effects are estimated from them: the shared response from k-means groups of the
counts before training (:class:`~cgmvae.train.placement.PlaceConditionEffect`), the
cluster-specific responses from the mixture's clusters once it is placed
(:class:`~cgmvae.train.placement.PlaceMixture`).
"""

from __future__ import annotations

import numpy as np
import torch

from cgmvae.constants import MODULE_KEYS, REGISTRY_KEYS
from cgmvae.nn.condition_effect import observed_pairs
from cgmvae.train.batches import first_batches, registry_batch
from cgmvae.train.placement.partition import kmeans_labels


def pool_groups(
    counts: torch.Tensor,
    conditions: torch.Tensor,
    n_groups: int,
    n_conditions: int,
    n_components: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum cells per (k-means group, condition), as :meth:`ConditionEffect.place_shared` takes.

    Starts with ``n_groups`` groups (:func:`group_cells`) and halves them until every
    condition has a group observed under it and under the reference (or one group is left).
    Returns what :func:`sum_per_group` returns.
    """
    while True:
        groups = torch.as_tensor(group_cells(counts, conditions, n_groups, n_components, seed))
        summed = sum_per_group(counts, conditions, groups, int(groups.max()) + 1, n_conditions)
        if n_groups == 1 or every_condition_observed(summed[2]):
            return summed
        n_groups //= 2  # groups split by condition: coarser groups


@torch.no_grad()
def collect_cells(loader, max_cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return counts and condition codes of the first ``max_cells`` cells the loader yields."""
    counts, conditions, n_cells = [], [], 0
    for batch in map(registry_batch, loader):
        counts.append(batch[REGISTRY_KEYS.X_KEY].float().cpu())
        conditions.append(batch[REGISTRY_KEYS.CONDITION_KEY].long().view(-1).cpu())
        n_cells += len(counts[-1])
        if n_cells >= max_cells:
            break
    return torch.cat(counts)[:max_cells], torch.cat(conditions)[:max_cells]


def group_cells(
    counts: torch.Tensor, conditions: torch.Tensor, n_groups: int, n_components: int, seed: int
) -> np.ndarray:
    """k-means groups on the principal components of log-normalised counts.

    Each condition is centred on its own mean first, so that a strong condition effect does
    not make the groups split by condition (which would leave no group observed under two).
    """
    libraries = counts.sum(-1, keepdim=True).clamp_min(1.0)
    expression = torch.log1p(counts / libraries * 1e4)
    for code in conditions.unique():
        rows = conditions == code
        expression[rows] -= expression[rows].mean(0)
    n_components = min(n_components, *expression.shape)
    _, _, basis = torch.pca_lowrank(expression, q=n_components, center=False, niter=4)
    scores = (expression @ basis).numpy()
    return kmeans_labels(scores, min(n_groups, len(scores)), seed)


def sum_per_group(
    counts: torch.Tensor,
    conditions: torch.Tensor,
    groups: torch.Tensor,
    n_groups: int,
    n_conditions: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return counts, library sizes and cells summed per (group, condition).

    Shapes ``(n_groups, n_conditions, n_features)``, ``(n_groups, n_conditions)`` twice;
    on the device of ``counts``.
    """
    index = groups.to(counts.device).long() * n_conditions + conditions.to(counts.device)
    size = n_groups * n_conditions
    summed = counts.new_zeros(size, counts.shape[1]).index_add_(0, index, counts)
    libraries = counts.new_zeros(size).index_add_(0, index, counts.sum(-1))
    n_cells = counts.new_zeros(size).index_add_(0, index, torch.ones_like(counts[:, 0]))
    shape = (n_groups, n_conditions)
    return summed.view(*shape, -1), libraries.view(shape), n_cells.view(shape)


def every_condition_observed(n_cells: torch.Tensor) -> bool:
    """Whether each condition has a group observed under it and under the reference."""
    return not unobserved_conditions(n_cells)


def unobserved_conditions(n_cells: torch.Tensor) -> list[int]:
    """Codes of the conditions with no group observed under them and under the reference.

    ``n_cells`` is ``(n_groups, n_conditions)``; a group is observed under a condition with
    :data:`~cgmvae.nn.condition_effect.MIN_CELLS` cells or more.
    """
    return [code for code in range(1, n_cells.shape[1]) if not observed_pairs(n_cells, code).any()]


@torch.no_grad()
def cluster_pseudo_bulk(
    module: torch.nn.Module, loader, max_cells: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return counts, library sizes and cells summed per (cluster, condition).

    Cells go to their most probable cluster under the placed mixture of ``module``. With
    ``max_cells``, a shuffling loader is read only until that many cells are summed
    (:func:`~cgmvae.train.batches.first_batches`).
    """
    was_training = module.training
    module.eval()
    device = module.device
    totals = None
    for batch in first_batches(loader, max_cells):
        batch = {key: value.to(device) for key, value in batch.items()}
        inference = module.inference(**module._get_inference_input(batch))
        summed = sum_per_group(
            batch[REGISTRY_KEYS.X_KEY].to(device).float(),
            batch[REGISTRY_KEYS.CONDITION_KEY].to(device).long().view(-1),
            inference[MODULE_KEYS.CLUSTER_PROBS_KEY].argmax(-1),
            module.n_clusters,
            module.n_conditions,
        )
        if totals is not None:
            summed = tuple(a + b for a, b in zip(totals, summed, strict=True))
        totals = summed
    module.train(was_training)
    return totals
