import numpy as np
import pytest
import torch
from scvi.module.base import LossOutput
from scvi.train import TrainingPlan

from cgmvae import CGMVAE
from cgmvae.train.epoch_metrics import EpochTotals


def _loss_output(n_obs: int, seed: int) -> LossOutput:
    generator = torch.Generator().manual_seed(seed)
    return LossOutput(
        loss=torch.rand((), generator=generator),
        reconstruction_loss=torch.rand(n_obs, generator=generator) * 100,
        kl_local={"kl_z": torch.rand(n_obs, generator=generator) * 5},
        kl_global=torch.rand((), generator=generator),
        extra_metrics={"cluster_usage": torch.rand((), generator=generator)},
    )


def test_epoch_means_equal_scvi_tools_elbo_metrics():
    n_total = 100
    metrics = TrainingPlan._create_elbo_metric_components(mode="train", n_total=n_total)[-1]
    totals = EpochTotals()
    outputs = [_loss_output(n_obs, seed) for seed, n_obs in enumerate([40, 40, 20])]
    for output in outputs:
        totals.add(output)
        metrics["elbo_train"].update(
            reconstruction_loss=output.reconstruction_loss_sum,
            kl_local=output.kl_local_sum,
            kl_global=output.kl_global_sum,
            n_obs_minibatch=output.n_obs_minibatch,
        )
    means = totals.means(n_total)
    for name in ("elbo", "reconstruction_loss", "kl_local", "kl_global"):
        torch.testing.assert_close(means[name], metrics[f"{name}_train"].compute())
    usage = sum(o.extra_metrics["cluster_usage"] * o.n_obs_minibatch for o in outputs) / 100
    torch.testing.assert_close(means["cluster_usage"], usage)


def test_history_has_one_row_per_epoch_of_every_term(sim_adata, quiet, seeded):
    adata = sim_adata.copy()
    CGMVAE.setup_anndata(adata, layer="counts", condition_key="condition")
    model = CGMVAE(adata, n_clusters=4)
    model.train(max_epochs=4, batch_size=256, train_size=0.8, check_val_every_n_epoch=1, **quiet)
    for mode in ("train", "validation"):
        for term in ("elbo", "reconstruction_loss", "kl_local", "kl_global", "kl_z"):
            values = model.history[f"{term}_{mode}"].iloc[:, 0].to_numpy(dtype=float)
            assert len(values) == 4 and np.isfinite(values).all(), f"{term}_{mode}"
        assert len(model.history[f"{mode}_loss"]) == 4
    assert len(model.history["kl_weight"]) == 4
    elbo = model.history["elbo_validation"].iloc[:, 0].to_numpy(dtype=float)
    recomputed = model.get_elbo(indices=model.validation_indices)
    assert elbo[-1] == pytest.approx(-float(recomputed), rel=0.01)  # history holds -ELBO


def test_per_step_logging_stays_available(sim_adata, quiet, seeded):
    from cgmvae import VAE

    adata = sim_adata.copy()
    VAE.setup_anndata(adata, layer="counts")
    model = VAE(adata, likelihood="nb")
    model.train(max_epochs=2, batch_size=128, plan_kwargs={"on_step": True}, **quiet)
    steps = model.history["train_loss_step"].iloc[:, 0].to_numpy(dtype=float)
    assert len(steps) > 2 and np.isfinite(steps).all()
