"""Minibatches as the modules read them, from scvi-tools' loaders or plain tensor loaders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from cgmvae.constants import REGISTRY_KEYS


def registry_batch(batch: Mapping | Sequence | torch.Tensor) -> Mapping:
    """Return ``batch`` keyed as the modules read it (:data:`~cgmvae.constants.REGISTRY_KEYS`).

    A dict (what scvi-tools' loaders yield) is returned as it is. A tensor ``x``, or a tuple
    ``(x,)``, ``(x, condition)`` or ``(x, condition, label)`` from a plain
    :class:`torch.utils.data.DataLoader` becomes ``{X: x (float, one row per observation),
    condition: codes as (n, 1)}``; the label, if any, is left for the user's evaluation
    and never supervises the model. Without a condition every observation gets condition 0.

    Raises
    ------
    TypeError
        ``batch`` is none of these.
    """
    if isinstance(batch, Mapping):
        return batch
    if isinstance(batch, torch.Tensor):
        batch = (batch,)
    plain = isinstance(batch, Sequence) and not isinstance(batch, str)
    if not plain or not 1 <= len(batch) <= 3 or not isinstance(batch[0], torch.Tensor):
        raise TypeError(
            "A minibatch must be a dict of tensors (scvi-tools' loaders) or x, (x,), "
            f"(x, condition) or (x, condition, label) tensors; got {type(batch).__name__}."
        )
    x = batch[0].float().flatten(start_dim=1)
    if len(batch) > 1:
        condition = torch.as_tensor(batch[1], device=x.device).long().view(-1, 1)
    else:
        condition = torch.zeros((len(x), 1), dtype=torch.long, device=x.device)
    return {REGISTRY_KEYS.X_KEY: x, REGISTRY_KEYS.CONDITION_KEY: condition}
