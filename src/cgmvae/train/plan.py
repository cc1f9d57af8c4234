"""The one training plan (a LightningModule) shared by every model."""

from __future__ import annotations

import numpy as np
import torch
from scvi.train import TrainingPlan

from cgmvae.train.placement import (
    PlacementMethod,
    check_placement,
    cluster_latent,
    match_labelled_clusters,
    placement_rows,
    split_clusters,
)

DIVERGENCE_HINT = (
    "Lower the learning rate (plan_kwargs={'lr': 1e-4}) or clip gradients "
    "(train(gradient_clip_val=1.0))."
)


class AutoencoderTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with warm-up measured in training progress.

    The KL weight rises linearly from ``min_kl_weight`` to ``max_kl_weight`` between
    ``warmup_start`` and ``warmup_end``, both fractions of the planned optimisation steps
    (``max_epochs`` × batches per epoch), so the warm-up always completes whatever the data
    size. Mixture models train as (C)VAEs until ``cluster_init`` of training, then get
    their prior components placed on a clustering of the latent means
    (:func:`~cgmvae.train.placement.cluster_latent`). A non-finite loss stops
    training with an error naming the term that diverged.

    Parameters
    ----------
    module
        A :class:`~cgmvae.modules.AutoencoderModule`.
    warmup_start, warmup_end
        Fractions of training between which the KL weight rises.
    cluster_init
        Fraction of training after which mixture components are placed (at the end of
        that epoch, at least after the first).
    cluster_placement
        How the latent is clustered to place them: ``"auto"`` (the better of the two
        others, see :func:`~cgmvae.train.placement.cluster_latent`), ``"umap"`` (a
        Gaussian mixture on a UMAP embedding) or ``"kmeans"``.
    placement_max_cells
        Cluster at most this many randomly chosen training cells when placing.
    seed
        Random state of the placement.
    **kwargs
        Passed to :class:`scvi.train.TrainingPlan` (``lr``, ``weight_decay``, ``max_kl_weight``,
        ``min_kl_weight``, ``reduce_lr_on_plateau``, ...).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        warmup_start: float = 0.0,
        warmup_end: float = 0.5,
        cluster_init: float = 0.5,
        cluster_placement: PlacementMethod = "auto",
        placement_max_cells: int = 20_000,
        seed: int = 0,
        **kwargs,
    ):
        if not 0.0 <= warmup_start <= warmup_end <= 1.0:
            raise ValueError(
                f"Need 0 <= warmup_start <= warmup_end <= 1, got {warmup_start}, {warmup_end}."
            )
        self.warmup_start = warmup_start
        self.warmup_end = warmup_end
        self.cluster_init = cluster_init
        self.cluster_placement = check_placement(cluster_placement)
        self.placement_max_cells = placement_max_cells
        self.seed = seed
        kwargs.update(n_epochs_kl_warmup=None, n_steps_kl_warmup=None)
        super().__init__(module, **kwargs)

    @property
    def training_progress(self) -> float:
        """Fraction of the planned optimisation steps done so far (0 before training)."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None:
            return 0.0
        total = trainer.estimated_stepping_batches
        if not np.isfinite(total) or total <= 0:
            return 1.0
        return min(1.0, self.global_step / total)

    @property
    def kl_weight(self) -> torch.Tensor | float:
        """KL weight at the current training progress."""
        span = self.warmup_end - self.warmup_start
        ramp = 1.0 if span <= 0 else (self.training_progress - self.warmup_start) / span
        ramp = min(1.0, max(0.0, ramp))
        return self.min_kl_weight + (self.max_kl_weight - self.min_kl_weight) * ramp

    def forward(self, *args, **kwargs):
        """Run the module; during training, fail loudly on a non-finite loss."""
        outputs = super().forward(*args, **kwargs)
        if self.training and len(outputs) == 3 and not torch.isfinite(outputs[2].loss):
            self._raise_divergence(outputs[2])
        return outputs

    def _raise_divergence(self, loss_output) -> None:
        terms = {"reconstruction": loss_output.reconstruction_loss_sum}
        terms.update({name: value.sum() for name, value in loss_output.kl_local.items()})
        diverged = [name for name, value in terms.items() if not torch.isfinite(value)]
        raise FloatingPointError(
            f"Training diverged at epoch {self.current_epoch} (step {self.global_step}): "
            f"the {', '.join(diverged) or 'total'} term of the loss is not finite. "
            + DIVERGENCE_HINT
        )

    def on_train_start(self) -> None:
        """Train in training mode, also when ``train`` is called again after inference."""
        self.module.train()

    def on_train_epoch_end(self) -> None:
        """Place the mixture components once the latent has warmed up."""
        init_epoch = max(1, round(self.cluster_init * self.trainer.max_epochs))
        if self.current_epoch + 1 >= init_epoch:
            self._initialize_clusters()

    def on_train_end(self) -> None:
        """Place the mixture components if training stopped before ``cluster_init``."""
        self._initialize_clusters()

    def _initialize_clusters(self) -> None:
        prior = getattr(self.module, "prior", None)
        if prior is not None and not bool(prior.initialized):
            latent, targets, labelled = self._training_latent()
            rows = placement_rows(len(latent), self.placement_max_cells, self.seed)
            latent = latent[rows]
            clusters = cluster_latent(latent, prior.n_clusters, self.cluster_placement, self.seed)
            anchors = None
            if targets is not None and labelled[rows].any():
                clusters, anchors = match_labelled_clusters(
                    latent, clusters, targets[rows], labelled[rows]
                )
            components = split_clusters(
                latent, clusters, prior.n_clusters, prior.components_per_cluster, self.seed
            )
            prior.initialize(latent, components, anchors)

    @torch.no_grad()
    def _training_latent(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Posterior means of the training cells, with their known labels if any."""
        was_training = self.module.training
        self.module.eval()
        means, targets, labelled = [], [], []
        for batch in self.trainer.train_dataloader:
            inference_input = self.module._get_inference_input(batch)
            means.append(self.module.inference(**inference_input)["z_mean"].cpu())
            known = self.module.cluster_targets(batch)
            if known is not None:
                targets.append(known[0].cpu())
                labelled.append(known[1].cpu())
        self.module.train(was_training)
        if not targets:
            return torch.cat(means).numpy(), None, None
        return torch.cat(means).numpy(), torch.cat(targets).numpy(), torch.cat(labelled).numpy()
