"""Minibatches of cells that lie together on disk, for training from a backed AnnData."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial

import numpy as np
import torch
from scvi.data import AnnDataManager, AnnTorchDataset
from scvi.dataloaders import AnnDataLoader, DataSplitter
from torch.utils.data import DataLoader, Dataset, Sampler

from cgmvae.constants import REGISTRY_KEYS
from cgmvae.data.store import stored_rows
from cgmvae.validation import check_count

#: Most cells in a run of neighbouring rows when the AnnData is backed (``block_size=None``).
BACKED_BLOCK_SIZE = 32
#: Fewest runs in a minibatch when the AnnData is backed (``block_size=None``).
MIN_RUNS_PER_BATCH = 16
#: :class:`~scvi.dataloaders.AnnDataLoader` options that only its loader honours.
SCVI_LOADER_OPTIONS = ("load_sparse_tensor", "data_and_attributes", "iter_ndarray")


class BlockBatchSampler(Sampler[np.ndarray]):
    """Minibatches made of runs of ``block_size`` cells that are neighbours in the file.

    The positions ``0 … len(rows) − 1`` of a loader's cells (``rows``, the AnnData rows it
    reads) are taken in the order of their rows and cut into runs of ``block_size``; with
    ``shuffle`` the cut moves by a random offset and the runs are put in a random order every
    epoch, and consecutive minibatches take ``batch_size`` cells of that order. A minibatch
    then reads ``batch_size / block_size`` stretches of the file instead of ``batch_size``
    scattered rows. Without ``shuffle`` the cells come in the loader's order.

    Parameters
    ----------
    rows
        The AnnData row of each of the loader's cells.
    batch_size
        Cells per minibatch.
    block_size
        Cells per run of neighbouring rows (1: cells drawn one by one).
    shuffle
        A new random order every epoch, drawn from torch's global generator (so
        ``scvi.settings.seed`` fixes it).
    drop_last
        Leave out a last minibatch smaller than ``batch_size``.
    """

    def __init__(
        self,
        rows: np.ndarray,
        batch_size: int,
        block_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        check_count("batch_size", batch_size, minimum=1)
        check_count("block_size", block_size, minimum=1)
        self.positions_by_row = np.argsort(np.asarray(rows), kind="stable")
        self.batch_size = batch_size
        self.block_size = block_size
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        n_cells = len(self.positions_by_row)
        if self.drop_last:
            return n_cells // self.batch_size
        return math.ceil(n_cells / self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self._epoch_order() if self.shuffle else np.arange(len(self.positions_by_row))
        for batch in range(len(self)):
            yield order[batch * self.batch_size : (batch + 1) * self.batch_size]

    def _epoch_order(self) -> np.ndarray:
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        rng = np.random.default_rng(seed)
        n_cells = len(self.positions_by_row)
        first_cut = int(rng.integers(1, self.block_size + 1))
        cuts = np.arange(first_cut, n_cells, self.block_size)
        blocks = np.split(self.positions_by_row, cuts)
        return np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])


class RowsDataset(Dataset):
    """A loader's cells by position, each minibatch read with its rows in order.

    ``X`` of a backed AnnData stored as CSR is read by :class:`~cgmvae.data.StoredRows`, a run
    of neighbouring rows at a time; everything else (and ``X`` in memory) by scvi-tools'
    :class:`~scvi.data.AnnTorchDataset`. A minibatch comes back in the order asked for.

    Parameters
    ----------
    adata_manager
        The model's AnnData manager.
    rows
        The AnnData row of each of the loader's cells.
    """

    def __init__(self, adata_manager: AnnDataManager, rows: np.ndarray):
        self.rows = np.asarray(rows)
        self.stored_x = None
        if adata_manager.data_registry[REGISTRY_KEYS.X_KEY].get("attr_key") is None:
            self.stored_x = stored_rows(adata_manager.adata)
        keys = list(adata_manager.data_registry)
        if self.stored_x is not None:
            keys.remove(REGISTRY_KEYS.X_KEY)
        self.fields = AnnTorchDataset(adata_manager, getitem_tensors=keys)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        rows = self.rows[positions]
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        batch = self.fields[sorted_rows]
        if self.stored_x is not None:
            batch[REGISTRY_KEYS.X_KEY] = self.stored_x[sorted_rows].toarray().astype(np.float32)
        unsorted = np.argsort(order)
        return {key: value[unsorted] for key, value in batch.items()}


def block_loader(
    adata_manager: AnnDataManager,
    indices: np.ndarray | None = None,
    batch_size: int = 128,
    shuffle: bool = False,
    drop_last: bool = False,
    block_size: int | None = None,
    distributed_sampler: bool = False,
    **kwargs,
) -> DataLoader:
    """Return a loader of the cells ``indices`` that reads runs of neighbouring rows.

    Takes :class:`~scvi.dataloaders.AnnDataLoader`'s arguments, and returns one where
    ``block_size`` resolves to 1, the loader is distributed or one of
    :data:`SCVI_LOADER_OPTIONS` is set. Otherwise a torch
    :class:`~torch.utils.data.DataLoader` of :class:`BlockBatchSampler` minibatches
    (with ``shuffle``; else the cells in the order of ``indices``) read by a
    :class:`RowsDataset`.

    Parameters
    ----------
    adata_manager
        The model's AnnData manager.
    indices
        AnnData rows of the cells (default: all).
    batch_size, shuffle, drop_last
        As for :class:`~scvi.dataloaders.AnnDataLoader`.
    block_size
        Cells per run of neighbouring rows; ``None``: see :func:`resolve_block_size`.
    distributed_sampler
        Give each process of a distributed run its own share (scvi-tools' loader).
    **kwargs
        Passed to the loader (``num_workers``, ``pin_memory``, ...).
    """
    adata = adata_manager.adata
    rows = np.arange(adata.n_obs) if indices is None else np.asarray(indices)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    block_size = resolve_block_size(block_size, adata.isbacked, batch_size)
    special = [name for name in SCVI_LOADER_OPTIONS if kwargs.get(name)]
    if block_size == 1 or distributed_sampler or special:
        return AnnDataLoader(
            adata_manager, indices=rows, batch_size=batch_size, shuffle=shuffle,
            drop_last=drop_last, distributed_sampler=distributed_sampler, **kwargs,
        )  # fmt: skip
    for name in SCVI_LOADER_OPTIONS:
        kwargs.pop(name, None)
    sampler = BlockBatchSampler(rows, batch_size, block_size, shuffle, drop_last)
    return DataLoader(RowsDataset(adata_manager, rows), sampler=sampler, batch_size=None, **kwargs)


class BlockDataSplitter(DataSplitter):
    """scvi-tools' :class:`~scvi.dataloaders.DataSplitter` with :func:`block_loader` loaders.

    Where cells are read in runs of rows, the validation and test cells are also taken in the
    order of their rows, so that a pass over them reads the file front to back.

    Parameters
    ----------
    adata_manager
        The model's AnnData manager.
    block_size
        Cells per run of neighbouring rows; ``None``: see :func:`resolve_block_size` (1:
        scvi-tools' loaders, cells drawn one by one).
    **kwargs
        Passed to :class:`~scvi.dataloaders.DataSplitter`.
    """

    def __init__(self, adata_manager: AnnDataManager, block_size: int | None = None, **kwargs):
        super().__init__(adata_manager, **kwargs)
        batch_size = self.data_loader_kwargs.get("batch_size", 128)
        self.block_size = resolve_block_size(block_size, adata_manager.adata.isbacked, batch_size)
        self.data_loader_cls = partial(block_loader, block_size=self.block_size)

    def setup(self, stage: str | None = None) -> None:
        """Split the cells as scvi-tools does; held-out cells in the order of their rows."""
        super().setup(stage)
        if self.block_size > 1:
            self.val_idx, self.test_idx = np.sort(self.val_idx), np.sort(self.test_idx)


def resolve_block_size(block_size: int | None, backed: bool, batch_size: int) -> int:
    """Return ``block_size``, checked, or what ``None`` means.

    ``None`` is 1 in memory. For a backed AnnData it is ``batch_size /``
    :data:`MIN_RUNS_PER_BATCH`, at most :data:`BACKED_BLOCK_SIZE` and at least 1, so that a
    minibatch holds at least 16 runs of the file (a file sorted by cell type or sample then
    still mixes 16 places in every minibatch): 8 cells at the default ``batch_size=128``, 32 at
    512 and above.
    """
    if block_size is None:
        if not backed:
            return 1
        return max(1, min(BACKED_BLOCK_SIZE, batch_size // MIN_RUNS_PER_BATCH))
    check_count("block_size", block_size, minimum=1)
    return block_size
