"""The Lightning callback that starts the additive condition effect from the data."""

from __future__ import annotations

import numpy as np
import scvi
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from cgmvae.constants import COUNT_LIKELIHOODS, REGISTRY_KEYS
from cgmvae.nn.condition_effect import observed_pairs
from cgmvae.train.distributed import share_from_rank_zero
from cgmvae.train.placement import kmeans_labels

#: Fewest k-means groups the shared response is estimated from. With as few groups as a
#: CGMVAE's 4 clusters, a group can mix cell types differently under the two conditions;
#: 10 groups scored better on held-out types (``benchmarks/results/counterfactual_ablation.md``).
MIN_EFFECT_GROUPS = 10


class PlaceConditionEffect(Callback):
    """Start the shared condition response at a pseudo-bulk estimate, before training.

    Without it, the response parameters start at zero and, as they move about one learning
    rate per step, z learns to encode the condition first; the clusters then split by
    condition and the effect stays in the networks, where it does not transfer. At the start
    of the first training run, up to ``max_cells`` training cells are clustered (k-means
    on the principal components of their log-normalised counts, each condition centred on
    its own mean; where that leaves a condition with no group observed under it and the
    reference, the number of groups is halved until one is), and
    :meth:`~cgmvae.nn.ConditionEffect.place_shared` sets the shared response to the median over
    those groups of their log fold changes and holds it fixed (count likelihoods). An affine
    condition effect (:class:`~cgmvae.nn.ConditionAdapter`) is estimated from the moments
    of the same cells instead.

    Parameters
    ----------
    n_groups
        Number of k-means groups.
    max_cells
        Use at most this many training cells.
    n_components
        Principal components clustered.
    seed
        Random state; ``None`` uses ``scvi.settings.seed``.
    """

    def __init__(
        self,
        n_groups: int = 10,
        max_cells: int = 20_000,
        n_components: int = 20,
        seed: int | None = None,
    ):
        self.n_groups = n_groups
        self.max_cells = max_cells
        self.n_components = n_components
        self.seed = scvi.settings.seed if seed is None else seed

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Estimate the condition's effect once, the first time the model is trained."""
        module = pl_module.module
        adapter = module.condition_adapter
        if adapter is not None and adapter.gain.shape[0] > 1 and not bool(adapter.initialized):
            if trainer.is_global_zero:
                adapter.place(*collect_cells(trainer.train_dataloader, self.max_cells))
            share_from_rank_zero(trainer, adapter)
        effect = module.condition_effect
        if (
            effect is None
            or effect.shared.shape[0] == 0  # one condition: nothing to estimate
            or bool(effect.initialized)
            or module.likelihood not in COUNT_LIKELIHOODS
        ):
            return
        if trainer.is_global_zero:
            self._place_shared(trainer, effect)
        share_from_rank_zero(trainer, effect)

    def _place_shared(self, trainer: Trainer, effect: torch.nn.Module) -> None:
        counts, conditions = collect_cells(trainer.train_dataloader, self.max_cells)
        summed = pool_groups(
            counts, conditions, self.n_groups, effect.shared.shape[0] + 1,
            self.n_components, self.seed,
        )  # fmt: skip
        effect.place_shared(*(part.to(effect.shared.device) for part in summed))


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
    for batch in loader:
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
    return all(bool(observed_pairs(n_cells, code).any()) for code in range(1, n_cells.shape[1]))
