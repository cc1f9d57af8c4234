"""Minibatches of neighbouring rows: every cell once an epoch, few runs, same rows as memory."""

import anndata
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scvi.dataloaders import AnnDataLoader
from torch.utils.data import BatchSampler

from cgmvae import CGMVAE, CVAE
from cgmvae.data import StoredRows, simulate
from cgmvae.metrics import cluster_scores
from cgmvae.train import BlockBatchSampler
from cgmvae.train.blocks import block_loader, resolve_block_size


def runs_of(rows: np.ndarray) -> int:
    """Number of runs of consecutive integers in the sorted ``rows``."""
    return 1 + int(np.count_nonzero(np.diff(np.sort(rows)) != 1))


def epoch(sampler) -> list[np.ndarray]:
    return [np.asarray(batch) for batch in sampler]


def test_an_epoch_takes_every_cell_once_in_runs_of_neighbouring_rows():
    rows = np.random.default_rng(0).permutation(np.arange(10_000, 13_000))  # a split's cells
    sampler = BlockBatchSampler(rows, batch_size=128, block_size=32)
    torch.manual_seed(0)
    batches = epoch(sampler)
    assert len(batches) == len(sampler) == 24  # 3000 cells: 23 full minibatches and 56 cells
    positions = np.concatenate(batches)
    assert np.array_equal(np.sort(positions), np.arange(3000))
    # 128 cells are 4 runs of 32 rows; a minibatch may cut a run at each end
    assert max(runs_of(rows[batch]) for batch in batches) <= 128 // 32 + 2
    assert np.mean([runs_of(rows[batch]) for batch in batches]) <= 6
    cells_one_by_one = BatchSampler(torch.utils.data.RandomSampler(rows), 128, False)
    assert np.mean([runs_of(rows[list(batch)]) for batch in cells_one_by_one]) > 100


def test_the_order_changes_every_epoch_and_follows_torchs_seed():
    sampler = BlockBatchSampler(np.arange(1000), batch_size=100, block_size=10)
    torch.manual_seed(3)
    first, second = epoch(sampler), epoch(sampler)
    torch.manual_seed(3)
    again = epoch(sampler)
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    cuts = {int(np.concatenate(epoch(sampler))[0]) % 10 for _ in range(20)}
    assert len(cuts) > 1  # runs start at different rows from epoch to epoch


def test_without_shuffle_the_cells_come_in_the_loaders_order_and_drop_last_drops():
    sampler = BlockBatchSampler(np.array([5, 3, 9, 1, 7]), batch_size=2, block_size=4,
                                shuffle=False)  # fmt: skip
    assert [batch.tolist() for batch in sampler] == [[0, 1], [2, 3], [4]]
    dropping = BlockBatchSampler(np.arange(5), batch_size=2, block_size=2, drop_last=True)
    assert len(dropping) == 2 and all(len(batch) == 2 for batch in dropping)


@pytest.mark.parametrize(("block_size", "error"), [(0, ValueError), (2.5, TypeError)])
def test_a_block_size_that_is_not_a_positive_whole_number_is_refused(block_size, error):
    with pytest.raises(error, match="block_size"):
        BlockBatchSampler(np.arange(10), batch_size=4, block_size=block_size)


def test_stored_rows_read_the_same_values_as_the_matrix_in_memory(tmp_path):
    counts = sp.random(300, 40, density=0.2, format="lil", dtype=np.float32, random_state=0)
    counts[7] = 0  # an empty row inside a run
    counts = counts.tocsr()
    anndata.AnnData(X=counts).write_h5ad(tmp_path / "cells.h5ad")
    backed = anndata.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    stored = StoredRows(backed)
    rng = np.random.default_rng(0)
    for rows in (np.arange(5, 40), np.sort(rng.choice(300, 64, replace=False)),
                 np.r_[0:3, 7:9, 299], np.array([4, 4, 5]), np.array([], dtype=int)):  # fmt: skip
        read = stored[rows]
        assert read.shape == (len(rows), 40)
        assert np.array_equal(read.toarray(), counts[rows].toarray())
    backed.file.close()
    anndata.AnnData(X=counts[:10]).write_h5ad(tmp_path / "cells.h5ad")  # no handle left open
    with pytest.raises(ValueError, match="CSR X of a backed AnnData"):
        StoredRows(anndata.AnnData(X=counts))


def backed_cells(tmp_path, sort_by_type: bool = False) -> anndata.AnnData:
    adata = simulate(n_obs=600, n_vars=80, n_clusters=4, n_conditions=2, seed=0)
    if sort_by_type:
        adata = adata[np.argsort(adata.obs["cluster"].to_numpy(), kind="stable")].copy()
    adata.write_h5ad(tmp_path / "cells.h5ad")
    return anndata.read_h5ad(tmp_path / "cells.h5ad", backed="r")


def test_a_backed_anndata_reads_runs_of_rows_and_gives_what_memory_gives(tmp_path, quiet):
    backed = backed_cells(tmp_path)
    in_memory = backed.to_memory()
    for adata in (backed, in_memory):
        CVAE.setup_anndata(adata, condition_key="condition")
    model = CVAE(backed)
    model.train(max_epochs=1, **quiet)
    assert isinstance(model.trainer.train_dataloader.sampler, BlockBatchSampler)
    rows = np.array([599, 3, 250, 3, 0])  # any order, repeats: results follow the order asked
    from_disk = model.get_latent_representation(backed, indices=rows)
    from_memory = model.get_latent_representation(in_memory, indices=rows)
    np.testing.assert_allclose(from_disk, from_memory, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(from_disk[1], from_disk[3])
    memory_model = CVAE(in_memory)
    memory_model.train(max_epochs=1, **quiet)
    assert not isinstance(memory_model.trainer.train_dataloader.sampler, BlockBatchSampler)
    backed.file.close()
    in_memory.write_h5ad(tmp_path / "cells.h5ad")  # the model keeps no handle of its own open


@pytest.mark.parametrize(("block_size", "error"), [(0, ValueError), ("32", TypeError)])
def test_train_refuses_a_bad_block_size_by_name(tmp_path, quiet, block_size, error):
    adata = simulate(n_obs=100, n_vars=60, n_clusters=2, seed=0)
    CVAE.setup_anndata(adata)
    with pytest.raises(error, match="block_size"):
        CVAE(adata).train(max_epochs=1, block_size=block_size, **quiet)


@pytest.mark.quality
def test_a_file_sorted_by_cell_type_still_trains_clusters_from_runs_of_rows(
    tmp_path, seeded, quiet
):
    backed = backed_cells(tmp_path, sort_by_type=True)
    CGMVAE.setup_anndata(backed, condition_key="condition")
    model = CGMVAE(backed, n_clusters=4)
    model.train(max_epochs=30, **quiet)
    clusters = model.get_cluster_assignments()
    assert cluster_scores(backed.obs["cluster"], clusters)["ari"] >= 0.9
    assert abs(cluster_scores(backed.obs["condition"], clusters)["ari"]) < 0.05
    backed.file.close()


def test_options_only_scvi_tools_loader_honours_get_that_loader(tmp_path):
    backed = backed_cells(tmp_path)
    CVAE.setup_anndata(backed, condition_key="condition")
    manager = CVAE(backed).adata_manager
    assert isinstance(block_loader(manager, batch_size=64).sampler, BlockBatchSampler)
    for option in ({"load_sparse_tensor": True}, {"block_size": 1}):
        assert isinstance(block_loader(manager, batch_size=64, **option), AnnDataLoader)
    backed.file.close()


@pytest.mark.parametrize(("batch_size", "expected"), [(128, 8), (512, 32), (4096, 32), (8, 1)])
def test_from_disk_the_default_keeps_sixteen_runs_in_a_minibatch(batch_size, expected):
    assert resolve_block_size(None, backed=True, batch_size=batch_size) == expected
    assert resolve_block_size(None, backed=False, batch_size=batch_size) == 1
    assert resolve_block_size(4, backed=False, batch_size=batch_size) == 4
