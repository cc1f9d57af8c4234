"""Minibatches as the modules read them, from scvi-tools' loaders or plain tensor loaders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch.utils.data import RandomSampler

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


def shuffles(loader) -> bool:
    """Whether ``loader`` yields its observations in a random order.

    True for a shuffling :class:`torch.utils.data.DataLoader`, scvi-tools' training loader
    (a ``BatchSampler`` over a ``RandomSampler``) and a shuffling distributed sampler; then its
    first ``n`` observations are a random sample of ``n``.
    """
    sampler = getattr(loader, "sampler", None)
    sampler = getattr(sampler, "sampler", sampler)  # a BatchSampler wraps the order
    return isinstance(sampler, RandomSampler) or getattr(sampler, "shuffle", False) is True


def first_batches(loader, max_cells: int | None) -> Iterator[Mapping]:
    """Yield ``loader``'s minibatches (:func:`registry_batch`) up to ``max_cells`` observations.

    Stops once ``max_cells`` observations are yielded if ``loader`` :func:`shuffles` (they
    are then a random sample; the last minibatch is cut to reach ``max_cells`` exactly), else
    yields every minibatch; ``None`` yields every one.
    """
    stop = max_cells is not None and shuffles(loader)
    n_cells = 0
    for batch in map(registry_batch, loader):
        if stop:
            batch = {key: value[: max_cells - n_cells] for key, value in batch.items()}
        yield batch
        n_cells += len(batch[REGISTRY_KEYS.X_KEY])
        if stop and n_cells >= max_cells:
            return
