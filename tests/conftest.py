"""Fixtures shared by every test folder."""

import logging
import os

import pytest
import scvi
from lightning.pytorch import Callback

from cgmvae.data import simulate


@pytest.fixture(scope="session")
def quiet():
    """Trainer arguments that keep test output free of progress bars and summaries."""
    return {"enable_progress_bar": False, "enable_model_summary": False}


@pytest.fixture(scope="session")
def sim_adata():
    """Four well separated clusters under two conditions with a strong condition effect."""
    return simulate(
        counts_layer="counts", n_obs=800, n_vars=100, n_clusters=4, n_conditions=2, seed=0
    )


@pytest.fixture(scope="session")
def seed():
    """Seed of the trained models: 0, or ``CGMVAE_TEST_SEED`` to check other seeds."""
    return int(os.environ.get("CGMVAE_TEST_SEED", "0"))


@pytest.fixture
def seeded(seed):
    scvi.settings.seed = seed
    yield


@pytest.fixture
def logged():
    """Messages the package logs during the test (its logger does not propagate to pytest's)."""
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("cgmvae")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


class LearningRateRecorder(Callback):
    """Records the learning rate of the first parameter group as each epoch starts."""

    def __init__(self):
        self.rates = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture
def learning_rates():
    """A callback for ``train(callbacks=[...])``; its ``rates`` hold each epoch's learning rate."""
    return LearningRateRecorder()
