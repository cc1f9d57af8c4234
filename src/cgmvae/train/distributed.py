"""What the training processes of a distributed (DDP) run must agree on."""

from __future__ import annotations

import torch
from lightning.pytorch import Trainer


def share_from_rank_zero(trainer: Trainer, *parts: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers of ``parts`` into every other process.

    Placements (mixture components, condition effects) are computed once, on rank 0 from the
    cells of its shard, then shared, so that all processes train the same model. A no-op
    in a single-process run.
    """
    if trainer.world_size <= 1:
        return
    states = None
    if trainer.is_global_zero:
        states = [
            {name: value.detach().cpu() for name, value in part.state_dict().items()}
            for part in parts
        ]
    states = trainer.strategy.broadcast(states, src=0)
    for part, state in zip(parts, states, strict=True):
        part.load_state_dict(state)


def touch_every_parameter(module: torch.nn.Module) -> torch.Tensor:
    """Zero that depends on every trainable parameter of ``module``.

    Added to the loss in distributed runs: DDP's gradient reduction expects each parameter
    to take part in every step, while the models leave some unused in a phase of training
    (the mixture before it is placed, a condition response held fixed). Their gradient is
    then zero rather than missing, and plain ``strategy="ddp"`` works.
    """
    touched = [p.reshape(-1)[:1] for p in module.parameters() if p.requires_grad]
    return 0.0 * torch.cat(touched).sum()
