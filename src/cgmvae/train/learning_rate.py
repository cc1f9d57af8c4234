"""The Lightning callback that lowers every learning rate once, part of the way through."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer

from cgmvae.validation import check_fraction, check_positive


def epochs_after(fraction: float, max_epochs: int) -> int:
    """Return the number of epochs that make up ``fraction`` of ``max_epochs`` (at least 1)."""
    return max(1, round(fraction * max_epochs))


class ScaleLearningRate(Callback):
    """Multiply every learning rate of the optimizers by ``lr_scale`` once.

    It happens at the end of the epoch after which ``lr_scale_at`` of ``max_epochs`` are done
    (at least the first). A run resumed from a later checkpoint keeps the rate saved with the
    optimizers and is not scaled again.

    Parameters
    ----------
    lr_scale
        The factor, positive and finite; ``1.0`` keeps the rates.
    lr_scale_at
        Fraction of the epochs in [0, 1] after which the rates are scaled.
    """

    def __init__(self, lr_scale: float, lr_scale_at: float):
        check_positive("lr_scale", lr_scale, hint="pass 1.0 to keep the learning rate")
        check_fraction("lr_scale_at", lr_scale_at)
        self.lr_scale = float(lr_scale)
        self.lr_scale_at = float(lr_scale_at)

    def scale_epoch(self, max_epochs: int) -> int:
        """Return the number of epochs after which the learning rates are scaled."""
        return epochs_after(self.lr_scale_at, max_epochs)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Scale the learning rates at the end of the :meth:`scale_epoch`-th epoch."""
        if self.lr_scale == 1.0 or trainer.current_epoch + 1 != self.scale_epoch(
            trainer.max_epochs
        ):
            return
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= self.lr_scale
