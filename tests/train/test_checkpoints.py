"""Long runs survive interruption: periodic checkpoints, resume, and a clear state after."""

import os
import signal
import warnings

import pytest
import scvi
from lightning.pytorch import Callback

import cgmvae.train.placement.mixture
from cgmvae import CGMVAE


class StopAfterEpoch(Callback):
    """Interrupt training at the end of epoch ``epoch`` (1-based), as a user or a scheduler."""

    def __init__(self, epoch: int, how: str):
        self.epoch, self.how = epoch, how

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 != self.epoch:
            return
        if self.how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)


def build(adata):
    scvi.settings.seed = 0
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    return CGMVAE(adata, n_clusters=4, n_hidden=32, n_latent=4)


def interrupted_run(adata, quiet, tmp_path, how):
    model = build(adata)
    stop = StopAfterEpoch(5, how)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit):
        warnings.simplefilter("always")
        model.train(
            max_epochs=10,
            checkpoint_every=2,
            checkpoint_dir=tmp_path,
            cluster_init=0.2,
            callbacks=[stop],
            **quiet,
        )
    return model, [str(w.message) for w in caught if "interrupted" in str(w.message)]


@pytest.fixture
def ctrl_c_handled():
    """Python's own Ctrl-C handler during the test, whatever the process inherited.

    A process started in the background by a non-interactive shell inherits Ctrl-C as ignored,
    so without this the test could not tell a handler given back from one never replaced.
    """
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_first_run_is_marked_untrained_and_says_how_to_resume(
    quiet, sim_adata, tmp_path, how, ctrl_c_handled
):
    model, messages = interrupted_run(sim_adata.copy(), quiet, tmp_path, how)
    assert not model.is_trained_
    assert messages and "last.ckpt" in messages[0] and "untrained" in messages[0]
    with pytest.raises(RuntimeError, match="train"):
        model.get_latent_representation()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_training_resumes_from_the_last_checkpoint_without_placing_again(
    quiet, sim_adata, tmp_path, monkeypatch, learning_rates
):
    adata = sim_adata.copy()
    interrupted, _ = interrupted_run(adata, quiet, tmp_path, "ctrl-c")
    checkpoint = tmp_path / "last.ckpt"
    assert [path.name for path in tmp_path.iterdir()] == ["last.ckpt"]  # nothing half-written

    def no_second_placement(*args, **kwargs):
        raise AssertionError("the mixture was placed again although the checkpoint holds it")

    monkeypatch.setattr(cgmvae.train.placement.mixture, "cluster_latent", no_second_placement)
    resumed = build(adata)
    resumed.train(
        max_epochs=10,
        ckpt_path=str(checkpoint),
        callbacks=[learning_rates],
        **quiet,
    )
    assert resumed.is_trained_
    # scaled once, after 0.4 of the epochs, and kept by the checkpoint
    assert learning_rates.rates == pytest.approx([1e-3 * 0.1] * 6)
    errors = resumed.history["reconstruction_loss_train"].iloc[:, 0]
    assert len(errors) == 6  # epochs 5-10; the checkpoint was written after epoch 4
    fresh = interrupted.history["reconstruction_loss_train"].iloc[:, 0]
    assert errors.iloc[0] < fresh.iloc[0] - 0.5 * (fresh.iloc[0] - fresh.iloc[3])
    assert resumed.get_cluster_assignments().shape == (adata.n_obs,)


def test_checkpoint_every_must_be_a_positive_number_of_epochs(quiet, sim_adata, tmp_path):
    model = build(sim_adata.copy())
    with pytest.raises(ValueError, match="checkpoint_every"):
        model.train(max_epochs=2, checkpoint_every=0, checkpoint_dir=tmp_path, **quiet)
