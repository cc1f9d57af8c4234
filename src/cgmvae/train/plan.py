"""The one training plan (a LightningModule) shared by every model."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from scvi.train import TrainingPlan

from cgmvae.train.batches import registry_batch
from cgmvae.train.distributed import touch_every_parameter
from cgmvae.train.epoch_metrics import EpochTotals

DIVERGENCE_HINT = (
    "Lower the learning rate (plan_kwargs={'lr': 1e-4}) or clip gradients "
    "(train(gradient_clip_val=1.0))."
)


class AutoencoderTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with warm-up measured in training progress.

    The KL weight rises linearly from ``min_kl_weight`` to ``max_kl_weight`` between
    ``warmup_start`` and ``warmup_end``, both fractions of the planned optimisation steps
    (``max_epochs`` × batches per epoch), so the warm-up always completes whatever the data
    size. A non-finite loss stops training with an error naming the term that diverged.
    Under DDP every parameter takes part in each step's loss (with weight zero where the
    model leaves it unused), so ``strategy="ddp"`` needs no ``find_unused_parameters``.
    The plan knows nothing of the model's prior: mixture models add the
    :class:`~cgmvae.train.PlaceMixture` callback.

    Parameters
    ----------
    module
        A :class:`~cgmvae.modules.AutoencoderModule`.
    warmup_start, warmup_end
        Fractions of training between which the KL weight rises.
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
        **kwargs,
    ):
        if not 0.0 <= warmup_start <= warmup_end <= 1.0:
            raise ValueError(
                f"Need 0 <= warmup_start <= warmup_end <= 1, got {warmup_start}, {warmup_end}."
            )
        self.warmup_start = warmup_start
        self.warmup_end = warmup_end
        kwargs.update(n_epochs_kl_warmup=None, n_steps_kl_warmup=None)
        super().__init__(module, **kwargs)
        self.epoch_totals: dict[str, EpochTotals] = {}

    @property
    def training_progress(self) -> float:
        """Fraction of the planned optimisation steps done so far (0 before training)."""
        try:
            total = self.trainer.estimated_stepping_batches
        except RuntimeError:  # not attached to a trainer
            return 0.0
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

    def training_step(self, batch, batch_idx):
        """One optimisation step; in a distributed run every parameter takes part in the loss.

        With the default epoch-level logging the loss terms are summed over the epoch and
        logged when it ends (:class:`~cgmvae.train.EpochTotals`); with
        ``plan_kwargs={"on_step": True}`` scvi-tools' step logs every term at every step.
        Plain tensor minibatches are read as scvi-tools' dicts (:func:`registry_batch`).
        """
        batch = registry_batch(batch)
        if self.on_step:
            loss = super().training_step(batch, batch_idx)
        else:
            loss = self._summed_step(batch, "train")
        if self.trainer.world_size > 1:
            loss = loss + touch_every_parameter(self.module)
        return loss

    def validation_step(self, batch, batch_idx):
        """Add the validation loss terms to the epoch's sums, like the training terms."""
        batch = registry_batch(batch)
        if self.on_step:
            return super().validation_step(batch, batch_idx)
        self._summed_step(batch, "validation")
        return None

    def _summed_step(self, batch, mode: str) -> torch.Tensor:
        kl_weight = None
        if "kl_weight" in self.loss_kwargs:
            kl_weight = self.kl_weight
            self.loss_kwargs.update({"kl_weight": kl_weight})
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self.epoch_totals.setdefault(mode, EpochTotals()).add(loss_output, kl_weight)
        return loss_output.loss

    def _log_epoch(self, mode: str) -> None:
        totals = self.epoch_totals.pop(mode, None)
        if totals is None:
            return
        n_total = self.n_obs_training if mode == "train" else self.n_obs_validation
        logged = {f"{name}_{mode}": value for name, value in totals.means(n_total).items()}
        logged[f"{mode}_loss"] = logged.pop(f"loss_{mode}")
        if mode == "train" and totals.kl_weight is not None:
            logged["kl_weight"] = float(totals.kl_weight)
        for name, value in logged.items():
            self.log(
                name,
                value,
                on_step=False,
                on_epoch=True,
                prog_bar=name == "train_loss",
                sync_dist=self.use_sync_dist,
            )

    def on_train_epoch_start(self) -> None:
        """Start the epoch's sums afresh."""
        self.epoch_totals.pop("train", None)

    def on_train_epoch_end(self) -> None:
        """Log the training epoch's means."""
        self._log_epoch("train")

    def on_validation_epoch_start(self) -> None:
        """Start the validation sums afresh."""
        self.epoch_totals.pop("validation", None)

    def on_validation_epoch_end(self) -> None:
        """Log the validation epoch's means."""
        self._log_epoch("validation")

    def compute_and_log_metrics(self, loss_output, metrics: dict, mode: str) -> None:
        """scvi-tools' ELBO metrics; the module's extra metrics are logged here.

        scvi-tools logs extra metrics inside ``torch.inference_mode``; under DDP, Lightning
        then fails to reduce them at the end of a training epoch (an in-place update of an
        inference tensor). Logged outside it, they reduce like any other value.
        """
        extras, loss_output.extra_metrics = loss_output.extra_metrics or {}, {}
        super().compute_and_log_metrics(loss_output, metrics, mode)
        loss_output.extra_metrics = extras
        for name, value in extras.items():
            self.log(
                f"{name}_{mode}",
                value.detach() if isinstance(value, torch.Tensor) else value,
                on_step=self.on_step,
                on_epoch=self.on_epoch,
                batch_size=loss_output.n_obs_minibatch,
                sync_dist=self.use_sync_dist,
            )

    def get_optimizer_creator(self):
        """scvi-tools' Adam or AdamW, fused into one kernel per step where the device has one.

        The same update as the per-parameter loop, in a fraction of its time on CPU
        (``benchmarks/results/profile_findings.md``). Mixed precision with gradient
        clipping keeps the loop: Lightning cannot clip the gradients a fused optimizer unscales.
        """
        optimizers = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
        if self.optimizer_name not in optimizers:
            return super().get_optimizer_creator()
        optimizer_cls = optimizers[self.optimizer_name]
        settings = {"lr": self.lr, "eps": self.eps, "weight_decay": self.weight_decay}

        def create(params):
            params = list(params)
            if self._clips_mixed_precision():
                return optimizer_cls(params, **settings)
            try:
                return optimizer_cls(params, fused=True, **settings)
            except RuntimeError:  # a device without fused kernels
                return optimizer_cls(params, **settings)

        return create

    def _clips_mixed_precision(self) -> bool:
        try:
            trainer = self.trainer
        except RuntimeError:  # not attached to a trainer
            return False
        return "mixed" in str(trainer.precision) and bool(trainer.gradient_clip_val)

    def on_fit_start(self) -> None:
        """Train in training mode, also when ``train`` is called again after inference.

        Inference leaves the module in evaluation mode and Lightning keeps the modes it
        finds at the start of fitting (warning about them).
        """
        self.module.train()

    def on_train_start(self) -> None:
        """Read the number of training observations off the training loader's dataset.

        Needed when a plain Lightning ``Trainer`` fits the plan, not a model's ``train``.
        """
        if self.n_obs_training is None:
            self.n_obs_training = len(self.trainer.train_dataloader.dataset)


def plan_parameters() -> set[str]:
    """Names :class:`AutoencoderTrainingPlan` accepts in ``plan_kwargs``."""
    names = set()
    for plan in (AutoencoderTrainingPlan, TrainingPlan):
        for name, parameter in inspect.signature(plan.__init__).parameters.items():
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                names.add(name)
    return names - {"self", "module", "n_epochs_kl_warmup", "n_steps_kl_warmup"}


def check_plan_kwargs(plan_kwargs: dict, hints: dict[str, str] | None = None) -> None:
    """Raise a ``ValueError`` for ``plan_kwargs`` the training plan does not take.

    ``hints`` maps a misplaced name to where it belongs (e.g. an argument of ``train``).
    """
    known = plan_parameters()
    unknown = sorted(set(plan_kwargs) - known)
    if not unknown:
        return
    advice = [f"{name}: {hints[name]}" for name in unknown if hints and name in hints]
    raise ValueError(
        f"Unknown plan_kwargs {', '.join(map(repr, unknown))}. "
        + (" ".join(advice) + " " if advice else "")
        + f"The training plan takes: {', '.join(sorted(known))}."
    )
