"""The Lightning callback that places a mixture prior once the latent has warmed up.

:func:`mixture_callbacks` returns it with the learning-rate step the models train with.
"""

from __future__ import annotations

import logging

import numpy as np
import scvi
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from cgmvae.constants import MODULE_KEYS, PlacementMethod
from cgmvae.train.batches import first_batches
from cgmvae.train.distributed import share_from_rank_zero
from cgmvae.train.learning_rate import ScaleLearningRate, epochs_after
from cgmvae.train.placement.partition import (
    check_placement,
    cluster_latent,
    match_labelled_clusters,
    placement_rows,
    split_clusters,
    spread_labels,
)
from cgmvae.train.placement.pseudo_bulk import cluster_pseudo_bulk

logger = logging.getLogger(__name__)

#: The learning-rate factor of a mixture model without known labels: a tenth lets the latent
#: settle before the placement, so its partition does not follow the CPU's floating-point
#: kernels (``benchmarks/results/stability.md``).
UNLABELLED_LR_SCALE = 0.1


class PlaceMixture(Callback):
    """Place the components of ``module.prior`` on a clustering of the training latent.

    Mixture models train as (C)VAEs (the prior's ``initialized`` flag is off) until
    ``cluster_init`` of the epochs; at the end of that epoch (at least the first) the
    posterior means of the training cells are clustered
    (:func:`~cgmvae.train.placement.cluster_latent`; when every cluster has labelled cells,
    :func:`~cgmvae.train.placement.spread_labels`), matched to known labels if any, split
    into each cluster's components and written into the prior. If training stops earlier,
    the components are placed when it ends. With ``cluster_refine``, the components are
    placed once more after that fraction of the epochs, by Leiden communities of the
    latent the mixture has trained since (the components barely leave their first
    places, while the latent keeps improving). Not with known labels, whose placement
    already follows the latent's neighbour graph (a second one lowered the accuracy).
    The models train with it a :class:`~cgmvae.train.learning_rate.ScaleLearningRate`
    (:func:`mixture_callbacks`).

    Parameters
    ----------
    cluster_init
        Fraction of the epochs after which the components are placed.
    cluster_placement
        ``"auto"``, ``"umap"``, ``"kmeans"`` or ``"leiden"``, see
        :func:`~cgmvae.train.placement.cluster_latent`.
    placement_max_cells
        Cluster at most this many randomly chosen training cells.
    seed
        Random state of the placement; ``None`` uses ``scvi.settings.seed``.
    cluster_refine
        Fraction of the epochs after which the components are placed again (by Leiden
        communities; they stay if no resolution gives one per cluster), later than
        ``cluster_init``; ``None`` places them once.
    """

    def __init__(
        self,
        cluster_init: float,
        cluster_placement: PlacementMethod,
        placement_max_cells: int,
        seed: int | None = None,
        cluster_refine: float | None = None,
    ):
        if not 0.0 <= cluster_init <= 1.0:
            raise ValueError(f"cluster_init must be a fraction in [0, 1], got {cluster_init}.")
        if cluster_refine is not None and not (
            isinstance(cluster_refine, int | float) and cluster_init < cluster_refine <= 1.0
        ):
            raise ValueError(
                f"cluster_refine must be a fraction in (cluster_init, 1] = ({cluster_init}, 1], "
                f"got {cluster_refine}; pass cluster_refine=None to place the mixture once."
            )
        self.cluster_refine = cluster_refine
        self.cluster_init = cluster_init
        self.cluster_placement = check_placement(cluster_placement)
        self.placement_max_cells = placement_max_cells
        self.seed = scvi.settings.seed if seed is None else seed

    def placement_epoch(self, max_epochs: int) -> int:
        """Return the number of epochs after which the components are placed (at least 1)."""
        return epochs_after(self.cluster_init, max_epochs)

    def refine_epoch(self, max_epochs: int) -> int | None:
        """Return the number of epochs after which the components are placed again."""
        if self.cluster_refine is None:
            return None
        return max(self.placement_epoch(max_epochs) + 1, round(self.cluster_refine * max_epochs))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Place the components once ``cluster_init`` of the epochs are done, and refine."""
        epochs_done = trainer.current_epoch + 1
        if epochs_done >= self.placement_epoch(trainer.max_epochs):
            self.place(trainer, pl_module.module)
        if epochs_done != self.refine_epoch(trainer.max_epochs):
            return
        if pl_module.module.n_labels > 0:
            logger.info("Keeping the labelled placement: no second placement with known labels.")
            return
        logger.info("Placing the mixture again after %d epochs (cluster_refine).", epochs_done)
        self.place(trainer, pl_module.module, again=True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Place the components if training stopped before ``cluster_init``."""
        self.place(trainer, pl_module.module)

    def place(self, trainer: Trainer, module: torch.nn.Module, again: bool = False) -> None:
        """Cluster the training latent and initialise ``module.prior``.

        Only once, unless ``again``: then by Leiden communities
        (:func:`~cgmvae.train.placement.leiden_labels`), and the components stay where they
        are if no resolution gives one community per cluster. In a distributed run, rank 0
        places the mixture on its shard of the training cells and every process receives
        the result.
        """
        if module.mixture_placed and not again:
            return
        if trainer.is_global_zero:
            self._place_on_latent(trainer, module, again)
        share_from_rank_zero(trainer, *module.placement_state())

    def _place_on_latent(self, trainer: Trainer, module: torch.nn.Module, again: bool) -> None:
        loader = trainer.train_dataloader
        latent, latent_var, targets, labelled = training_latent(
            module, loader, self.placement_max_cells
        )
        rows = placement_rows(len(latent), self.placement_max_cells, self.seed)
        try:
            n_train = len(loader.dataset)
        except (AttributeError, TypeError):  # no dataset, or one of unknown length
            n_train = len(latent)
        if len(rows) < n_train:
            logger.info(
                "Placing the mixture on %d randomly chosen of the %d training cells "
                "(placement_max_cells=%d).",
                len(rows),
                n_train,
                self.placement_max_cells,
            )
        latent, latent_var = latent[rows], latent_var[rows]
        anchors = None
        clusters = None
        if targets is not None and labelled[rows].any():
            targets, labelled = targets[rows], labelled[rows]
            clusters = spread_labels(latent, targets, labelled)
        if clusters is None and again:
            clusters = cluster_latent(
                latent, module.n_clusters, "leiden", self.seed, fallback=None
            )
            if clusters is None:
                logger.info(
                    "No Leiden resolution gave %d groups; the mixture stays as placed.",
                    module.n_clusters,
                )
                return
        if clusters is None:
            clusters = cluster_latent(latent, module.n_clusters, self.cluster_placement, self.seed)
        if targets is not None and labelled.any():
            clusters, anchors = match_labelled_clusters(latent, clusters, targets, labelled)
        components = split_clusters(
            latent, clusters, module.n_clusters, module.components_per_cluster, self.seed
        )
        module.place_mixture(latent, components, anchors, latent_var)
        if module.places_specific_effect:
            pseudo_bulk = cluster_pseudo_bulk(module, loader, self.placement_max_cells)
            module.place_specific_effect(*pseudo_bulk)


def mixture_callbacks(
    cluster_init: float,
    cluster_placement: PlacementMethod,
    placement_max_cells: int,
    cluster_refine: float | None,
    lr_scale: float | None,
    lr_scale_at: float | None,
    labelled: bool = False,
) -> tuple[PlaceMixture, ScaleLearningRate]:
    """Return the callbacks a mixture model trains with, from the arguments of its ``train``.

    :class:`PlaceMixture` and a :class:`~cgmvae.train.learning_rate.ScaleLearningRate`,
    which scales the rates by ``lr_scale`` (``None``: :data:`UNLABELLED_LR_SCALE`, or 1.0
    for a model with known labels, ``labelled``) after ``lr_scale_at`` of the epochs, or,
    where that is ``None``, when the mixture is placed (after ``cluster_init``). See
    :meth:`cgmvae.GMVAE.train` for each argument.
    """
    placement = PlaceMixture(
        cluster_init, cluster_placement, placement_max_cells, cluster_refine=cluster_refine
    )
    if lr_scale is None:
        lr_scale = 1.0 if labelled else UNLABELLED_LR_SCALE
    scale_at = cluster_init if lr_scale_at is None else lr_scale_at
    return placement, ScaleLearningRate(lr_scale, scale_at)


@torch.no_grad()
def training_latent(
    module: torch.nn.Module, loader, max_cells: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Posterior means and variances of the cells ``loader`` yields, and known labels if any.

    With ``max_cells``, a shuffling loader is read only until that many cells are encoded
    (:func:`~cgmvae.train.batches.first_batches`), so the placement on a large data set does
    not encode every training cell.
    """
    was_training = module.training
    module.eval()
    means, variances, targets, labelled = [], [], [], []
    for batch in first_batches(loader, max_cells):
        batch = {key: value.to(module.device) for key, value in batch.items()}
        inference = module.inference(**module._get_inference_input(batch))
        means.append(inference[MODULE_KEYS.QZM_KEY].cpu())
        variances.append(inference[MODULE_KEYS.QZV_KEY].cpu())
        known = module.cluster_targets(batch)
        if known is not None:
            targets.append(known[0].cpu())
            labelled.append(known[1].cpu())
    module.train(was_training)
    moments = torch.cat(means).numpy(), torch.cat(variances).numpy()
    if not targets:
        return *moments, None, None
    return *moments, torch.cat(targets).numpy(), torch.cat(labelled).numpy()
