import inspect

import numpy as np
import pytest
import scvi
import torch
from anndata import AnnData
from scipy.linalg import subspace_angles

from cgmvae import AE, CGMVAE, CVAE, GMVAE, VAE

MODELS = [AE, VAE, CVAE, GMVAE, CGMVAE]
CONDITIONAL = {CVAE, CGMVAE}
MIXTURE = {GMVAE, CGMVAE}


def small_model(model_cls, adata, **kwargs):
    setup = {"layer": "counts"}
    if model_cls in CONDITIONAL:
        setup["condition_key"] = "condition"
    model_cls.setup_anndata(adata, **setup)
    if model_cls in MIXTURE:
        kwargs.setdefault("n_clusters", 3)
    likelihood = "nb" if model_cls is not AE else "poisson"
    return model_cls(adata, n_hidden=32, n_latent=4, likelihood=likelihood, **kwargs)


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_every_model_trains_writes_keys_and_round_trips(
    quiet, model_cls, sim_adata, tmp_path, seeded
):
    adata = sim_adata[:240].copy()
    model = small_model(model_cls, adata)
    model.train(max_epochs=4, **quiet)
    loss = model.history["reconstruction_loss_train"].to_numpy(dtype=float).ravel()
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    model.write_results(adata)
    name = model_cls.__name__.lower()
    assert adata.obsm[f"X_{name}"].shape == (240, 4)
    assert adata.uns[name]["model"] == model_cls.__name__
    if model_cls in MIXTURE:
        assert adata.obs[f"{name}_cluster"].dtype == "category"
        assert adata.obsm[f"{name}_cluster_probs"].shape == (240, 3)
    model.save(tmp_path / name)
    loaded = model_cls.load(tmp_path / name, adata=adata)
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), model.get_latent_representation()
    )


def test_unconditional_models_refuse_a_condition_key(sim_adata):
    with pytest.raises(ValueError, match="CGMVAE"):
        GMVAE.setup_anndata(sim_adata[:20].copy(), condition_key="condition")


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli", "poisson", "nb", "zinb"])
def test_vae_accepts_every_likelihood_on_suitable_data(quiet, likelihood, seeded):
    rng = np.random.default_rng(0)
    values = rng.poisson(3.0, size=(120, 15)).astype(np.float32)
    if likelihood == "bernoulli":
        values = (values > 3).astype(np.float32)
    adata = AnnData(values)
    VAE.setup_anndata(adata)
    model = VAE(adata, n_hidden=16, n_latent=2, likelihood=likelihood)
    model.train(max_epochs=2, **quiet)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_network_size_defaults_follow_the_likelihood(model_cls):
    adata = AnnData(np.random.default_rng(0).random((20, 6), dtype=np.float32))
    model_cls.setup_anndata(adata)
    images = model_cls(adata, likelihood="bernoulli")
    continuous = model_cls(adata, likelihood="gaussian", n_layers=3)

    def widths(model):
        layers = model.module.encoder.hidden.modules()
        return [layer.out_features for layer in layers if isinstance(layer, torch.nn.Linear)]

    assert widths(images) == [512, 512]
    assert widths(continuous) == [128, 128, 128]


@pytest.mark.parametrize("model_cls", MODELS, ids=lambda c: c.__name__)
def test_every_model_shows_and_records_its_own_arguments(model_cls):
    parameters = inspect.signature(model_cls).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in parameters.values())
    adata = AnnData(np.random.default_rng(0).random((20, 6), dtype=np.float32))
    adata.obs["condition"] = ["a", "b"] * 10
    conditional = "condition_effect" in parameters
    model_cls.setup_anndata(adata, **({"condition_key": "condition"} if conditional else {}))
    arguments = {"n_latent": 3, "likelihood": "gaussian"}
    if conditional:
        arguments["condition_effect"] = "injected"
    recorded = model_cls(adata, **arguments).init_params_
    assert recorded["kwargs"] == {}
    assert set(recorded["non_kwargs"]) == set(parameters) - {"adata", "registry"}
    assert {key: recorded["non_kwargs"][key] for key in arguments} == arguments


def test_bernoulli_rejects_values_outside_unit_interval():
    adata = AnnData(np.full((10, 4), 2.0, dtype=np.float32))
    VAE.setup_anndata(adata)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VAE(adata, likelihood="bernoulli")


@pytest.mark.quality
def test_linear_autoencoder_spans_the_principal_subspace(quiet, seeded):
    rng = np.random.default_rng(0)
    n_obs, n_vars, n_latent = 1500, 20, 3
    basis = np.linalg.qr(rng.normal(size=(n_vars, n_vars)))[0]
    scales = np.array([5.0, 4.0, 3.0] + [0.3] * (n_vars - 3))
    data = (rng.normal(size=(n_obs, n_vars)) * scales) @ basis.T
    data = (data - data.mean(0)).astype(np.float32)
    adata = AnnData(data)
    AE.setup_anndata(adata)
    model = AE(adata, n_latent=n_latent, n_hidden=n_latent, linear=True)
    model.train(max_epochs=150, batch_size=256, plan_kwargs={"lr": 1e-2}, **quiet)
    latent = model.get_latent_representation().astype(np.float64)
    latent -= latent.mean(0)
    u, s, _ = np.linalg.svd(data, full_matrices=False)
    pca_scores = u[:, :n_latent] * s[:n_latent]
    largest_angle = subspace_angles(latent, pca_scores).max()
    assert largest_angle < 0.05, largest_angle


def test_beta_zero_leaves_the_latent_unregularised(quiet, sim_adata):
    final_kl = {}
    for beta in (0.0, 1.0):
        scvi.settings.seed = 0
        adata = sim_adata[:400].copy()
        VAE.setup_anndata(adata, layer="counts")
        model = VAE(adata, n_hidden=32, n_latent=4, beta=beta)
        model.train(max_epochs=30, plan_kwargs={"warmup_end": 0.0, "lr": 1e-2}, **quiet)
        final_kl[beta] = float(model.history["kl_z_train"].iloc[-1, 0])
    assert final_kl[0.0] > 3 * final_kl[1.0], final_kl
