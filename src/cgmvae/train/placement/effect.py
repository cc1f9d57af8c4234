"""The Lightning callback that starts the additive condition effect from the data."""

from __future__ import annotations

import logging

import scvi
from lightning.pytorch import Callback, LightningModule, Trainer

from cgmvae.nn.condition_effect import MIN_CELLS
from cgmvae.train.distributed import share_from_rank_zero
from cgmvae.train.placement.pseudo_bulk import collect_cells, pool_groups, unobserved_conditions

logger = logging.getLogger(__name__)

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
    condition_names
        Names of the condition codes, for the warning about a condition whose response
        cannot be estimated (too few cells beside cells of the reference condition).
    """

    def __init__(
        self,
        n_groups: int = 10,
        max_cells: int = 20_000,
        n_components: int = 20,
        seed: int | None = None,
        condition_names: list[str] | None = None,
    ):
        self.n_groups = n_groups
        self.max_cells = max_cells
        self.n_components = n_components
        self.seed = scvi.settings.seed if seed is None else seed
        self.condition_names = condition_names

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Estimate the condition's effect once, the first time the model is trained."""
        module = pl_module.module
        placing = module.unplaced_condition_parts()
        if not placing:
            return
        if trainer.is_global_zero:
            counts, conditions = collect_cells(trainer.train_dataloader, self.max_cells)
            logger.info(
                "Estimating the condition's effect (%s) from %d cells…",
                " and ".join(placing),
                len(counts),
            )
            if "adapter" in placing:
                module.place_condition_adapter(counts, conditions)
            if "shared_effect" in placing:
                summed = pool_groups(
                    counts, conditions, self.n_groups, module.n_conditions,
                    self.n_components, self.seed,
                )  # fmt: skip
                module.place_shared_effect(*summed)
                self._warn_unestimated(unobserved_conditions(summed[2]))
        share_from_rank_zero(trainer, *module.placement_state())

    def _warn_unestimated(self, codes: list[int]) -> None:
        """Say which conditions' responses are left to training, and why."""
        if not codes:
            return
        names = self.condition_names or [f"code {code}" for code in range(max(codes) + 1)]
        logger.warning(
            "The response to condition(s) %s is not estimated from the data before training: "
            "no group of similar cells has %d or more cells under it and under the reference "
            "condition %r. It is learned instead, and z may then encode the condition. Give "
            "each condition more cells, or merge the rare ones.",
            ", ".join(repr(names[code]) for code in codes),
            MIN_CELLS,
            names[0],
        )
