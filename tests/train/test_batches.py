"""How the placement reads the training loader: all of it, or a random first part."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cgmvae.data import simulate
from cgmvae.modules import GMVAEModule
from cgmvae.train.batches import first_batches, shuffles
from cgmvae.train.placement.mixture import training_latent


class CountingDataset(Dataset):
    """Observations 0, 1, ... as one-feature rows; counts how many were read."""

    def __init__(self, n_obs: int):
        self.n_obs, self.n_read = n_obs, 0

    def __len__(self) -> int:
        return self.n_obs

    def __getitem__(self, index: int) -> torch.Tensor:
        self.n_read += 1
        return torch.tensor([float(index)])


@pytest.mark.parametrize("shuffle", [True, False])
def test_only_a_shuffled_loader_is_cut_short(shuffle):
    torch.manual_seed(0)
    data = CountingDataset(1000)
    loader = DataLoader(data, batch_size=64, shuffle=shuffle)
    assert shuffles(loader) is shuffle
    rows = torch.cat([batch["X"] for batch in first_batches(loader, 300)]).view(-1)
    if shuffle:  # five minibatches of 64 reach 300, the fifth cut: a random sample
        assert data.n_read == 320 and len(rows) == rows.unique().numel() == 300
        assert not torch.equal(rows.sort().values, torch.arange(300.0))
    else:  # in order, the first 300 would be a biased sample: every row is read
        assert data.n_read == len(rows) == 1000
    data.n_read = 0
    assert len(list(first_batches(loader, None))) == 16 and data.n_read == 1000


def test_scvi_tools_training_loaders_count_as_shuffled():
    from scvi.dataloaders import AnnDataLoader

    from cgmvae import GMVAE

    adata = simulate(n_obs=200, n_vars=50, n_clusters=2, seed=0)
    GMVAE.setup_anndata(adata)
    manager = GMVAE._get_most_recent_anndata_manager(adata)
    assert shuffles(AnnDataLoader(manager, shuffle=True, batch_size=32))
    assert not shuffles(AnnDataLoader(manager, shuffle=False, batch_size=32))


def test_the_placement_encodes_max_cells_of_a_shuffled_loader_only():
    torch.manual_seed(0)
    module = GMVAEModule(n_input=5, n_clusters=2, likelihood="gaussian", n_hidden=8, n_layers=1)
    values = torch.randn(1000, 5)
    shuffled = DataLoader(TensorDataset(values), batch_size=64, shuffle=True)
    means, variances, targets, _ = training_latent(module, shuffled, max_cells=300)
    assert means.shape == variances.shape == (300, module.n_latent) and targets is None
    in_order = DataLoader(TensorDataset(values), batch_size=64)
    assert training_latent(module, in_order, max_cells=300)[0].shape[0] == 1000
    every = training_latent(module, in_order)[0]
    assert np.allclose(training_latent(module, in_order, max_cells=300)[0], every)
