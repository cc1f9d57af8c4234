"""Periodic checkpoints of a training run, from which ``train(ckpt_path=...)`` resumes."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer

#: File name of the most recent checkpoint.
LAST_CHECKPOINT = "last.ckpt"


class PeriodicCheckpoint(Callback):
    """Write ``dir_path/last.ckpt`` every ``every_n_epochs`` epochs.

    The checkpoint (Lightning's ``Trainer.save_checkpoint``) holds the weights, the mixture
    and condition-effect placements (module buffers), the optimizer and the epoch, so
    ``train(ckpt_path=dir_path / "last.ckpt")`` on a model built with the same arguments
    continues where the run stopped. Each checkpoint is written beside the previous one and
    renamed over it when complete, so a run stopped while saving leaves the previous one.
    A plain callback rather than Lightning's ``ModelCheckpoint``: scvi-tools' trainer adds
    its own validation-monitoring checkpoint whenever checkpointing is enabled.

    Parameters
    ----------
    dir_path
        Folder of the checkpoint (created if needed).
    every_n_epochs
        Epochs between checkpoints.
    """

    def __init__(self, dir_path: str | Path, every_n_epochs: int):
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int):
            raise TypeError(f"checkpoint_every must be an integer, got {every_n_epochs!r}.")
        if every_n_epochs < 1:
            raise ValueError(
                f"checkpoint_every must be a positive number of epochs, got {every_n_epochs}."
            )
        self.path = Path(dir_path) / LAST_CHECKPOINT
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Save after every ``every_n_epochs``-th epoch (all processes take part)."""
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(f".{self.path.name}.partial")
        trainer.save_checkpoint(staging)
        if trainer.is_global_zero:
            os.replace(staging, self.path)
