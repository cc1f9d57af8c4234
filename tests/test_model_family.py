import numpy as np
import pytest
import scvi
import torch
from anndata import AnnData
from scipy.linalg import subspace_angles

from cgmvae import AE, CGMVAE, CVAE, GMVAE, VAE
from cgmvae.modules import AutoencoderModule, GMVAEModule, VAEModule
from cgmvae.nn.priors import MixturePrior, kl_standard_normal
from cgmvae.train.placement import split_clusters
from conftest import TRAIN_KWARGS

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
def test_every_model_trains_writes_keys_and_round_trips(model_cls, sim_adata, tmp_path, seeded):
    adata = sim_adata[:240].copy()
    model = small_model(model_cls, adata)
    model.train(max_epochs=4, **TRAIN_KWARGS)
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
def test_vae_accepts_every_likelihood_on_suitable_data(likelihood, seeded):
    rng = np.random.default_rng(0)
    values = rng.poisson(3.0, size=(120, 15)).astype(np.float32)
    if likelihood == "bernoulli":
        values = (values > 3).astype(np.float32)
    adata = AnnData(values)
    VAE.setup_anndata(adata)
    model = VAE(adata, n_hidden=16, n_latent=2, likelihood=likelihood)
    model.train(max_epochs=2, **TRAIN_KWARGS)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()


def test_bernoulli_rejects_values_outside_unit_interval():
    adata = AnnData(np.full((10, 4), 2.0, dtype=np.float32))
    VAE.setup_anndata(adata)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VAE(adata, likelihood="bernoulli")


def test_linear_autoencoder_spans_the_principal_subspace(seeded):
    rng = np.random.default_rng(0)
    n_obs, n_vars, n_latent = 1500, 20, 3
    basis = np.linalg.qr(rng.normal(size=(n_vars, n_vars)))[0]
    scales = np.array([5.0, 4.0, 3.0] + [0.3] * (n_vars - 3))
    data = (rng.normal(size=(n_obs, n_vars)) * scales) @ basis.T
    data = (data - data.mean(0)).astype(np.float32)
    adata = AnnData(data)
    AE.setup_anndata(adata)
    model = AE(adata, n_latent=n_latent, n_hidden=n_latent, linear=True)
    model.train(max_epochs=150, batch_size=256, plan_kwargs={"lr": 1e-2}, **TRAIN_KWARGS)
    latent = model.get_latent_representation().astype(np.float64)
    latent -= latent.mean(0)
    u, s, _ = np.linalg.svd(data, full_matrices=False)
    pca_scores = u[:, :n_latent] * s[:n_latent]
    largest_angle = subspace_angles(latent, pca_scores).max()
    assert largest_angle < 0.05, largest_angle


def test_denoising_autoencoder_corrupts_only_during_training():
    module = AutoencoderModule(n_input=6, n_latent=2, n_hidden=8, dropout_rate=0.0, noise_sd=1.0)
    x = torch.ones(64, 6)
    condition = torch.zeros(64, 1, dtype=torch.long)
    module.eval()
    clean = module.inference(x, condition)["z_mean"]
    torch.testing.assert_close(module.inference(x, condition)["z_mean"], clean)
    module.train()
    noisy = module.inference(x, condition)["z_mean"]
    assert not torch.allclose(noisy, module.inference(x, condition)["z_mean"])
    module.noise_sd = 0.0
    torch.testing.assert_close(
        module.inference(x, condition)["z_mean"], module.inference(x, condition)["z_mean"]
    )


def test_vae_kl_equals_closed_form():
    mean = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    var = torch.tensor([[1.0, 0.5], [2.0, 0.1]])
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, var.sqrt()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mean, var), expected)
    module = VAEModule(n_input=3, n_latent=2, beta=0.5)
    cost = module.latent_terms({"z_mean": mean, "z_var": var}, {})
    torch.testing.assert_close(cost.kl_terms["kl_z"], expected)
    torch.testing.assert_close(cost.penalty, 0.5 * expected)


def test_beta_zero_leaves_the_latent_unregularised(sim_adata):
    final_kl = {}
    for beta in (0.0, 1.0):
        scvi.settings.seed = 0
        adata = sim_adata[:400].copy()
        VAE.setup_anndata(adata, layer="counts")
        model = VAE(adata, n_hidden=32, n_latent=4, beta=beta)
        model.train(max_epochs=30, plan_kwargs={"warmup_end": 0.0, "lr": 1e-2}, **TRAIN_KWARGS)
        final_kl[beta] = float(model.history["kl_z_train"].iloc[-1, 0])
    assert final_kl[0.0] > 3 * final_kl[1.0], final_kl


def loss_spread(module, tensors, repeats=60):
    with torch.no_grad():
        return np.std([module(tensors)[2].loss.item() for _ in range(repeats)])


def test_more_monte_carlo_samples_lower_the_loss_variance():
    torch.manual_seed(0)
    tensors = {
        "X": torch.poisson(torch.full((64, 30), 4.0)),
        "batch": torch.zeros(64, 1, dtype=torch.long),
    }
    module = VAEModule(n_input=30, n_latent=5, n_hidden=32, dropout_rate=0.0, likelihood="nb")
    module.train()
    spread = {}
    for k in (1, 16):
        module.n_mc_samples = k
        spread[k] = loss_spread(module, tensors)
    assert spread[16] < 0.5 * spread[1], spread


def test_mixture_kl_terms_match_monte_carlo():
    torch.manual_seed(0)
    prior = MixturePrior(n_clusters=3, n_latent=2)
    with torch.no_grad():
        prior.log_vars.copy_(torch.randn(3, 2) * 0.3)
    mean, var = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.4, 0.9]])
    analytic = prior.component_kl(mean, var)[0]
    q = torch.distributions.Normal(mean[0], var[0].sqrt())
    z = q.sample((400_000,))
    components = torch.distributions.Normal(prior.means, prior.variances.sqrt())
    log_p = components.log_prob(z.unsqueeze(1)).sum(-1)
    monte_carlo = (q.log_prob(z).sum(-1, keepdim=True) - log_p).mean(0)
    torch.testing.assert_close(analytic, monte_carlo.detach(), atol=0.02, rtol=0.01)

    module = GMVAEModule(n_input=4, n_latent=2, n_clusters=3)
    prior.initialized.fill_(True)
    module.prior = prior
    probs = torch.softmax(prior.component_posterior_logits(analytic[None]), -1)
    outputs = {"cluster_probs": probs, "component_probs": probs, "component_kl": analytic[None]}
    cost = module.latent_terms(outputs, {})
    terms = cost.kl_terms
    log_q_y = probs.log()
    joint = (probs * (analytic[None] + log_q_y - prior.log_weights())).sum()
    torch.testing.assert_close(terms["kl_z"] + terms["kl_y"], joint[None])


def test_mixture_module_pretrains_as_a_vae_until_the_prior_is_placed():
    module = GMVAEModule(n_input=4, n_latent=2, n_clusters=3)
    outputs = {"z_mean": torch.zeros(5, 2), "z_var": torch.ones(5, 2)}
    outputs["component_kl"] = module.prior.component_kl(outputs["z_mean"], outputs["z_var"])
    outputs["cluster_probs"] = outputs["component_probs"] = torch.full((5, 3), 1 / 3)
    assert set(module.latent_terms(outputs, {}).kl_terms) == {"kl_z"}
    module.prior.initialize(np.random.default_rng(0).normal(size=(60, 2)), np.arange(60) % 3)
    assert set(module.latent_terms(outputs, {}).kl_terms) == {"kl_z", "kl_y"}


def test_closed_form_cluster_posterior_minimises_the_mixture_terms():
    torch.manual_seed(0)
    prior = MixturePrior(n_clusters=4, n_latent=3)
    component_kl = torch.rand(1, 4) * 5
    best = torch.softmax(prior.component_posterior_logits(component_kl), -1)

    def objective(probs):
        return (probs * component_kl).sum() + prior.component_kl_to_weights(probs).sum()

    for _ in range(50):
        other = torch.softmax(torch.randn(1, 4) * 2, -1)
        assert objective(best) <= objective(other) + 1e-6


def test_a_cluster_of_several_components_sums_their_posterior_and_weights():
    prior = MixturePrior(n_clusters=3, n_latent=2, components_per_cluster=2)
    assert (prior.n_clusters, prior.n_components) == (3, 6)
    component_probs = torch.tensor([[0.1, 0.2, 0.3, 0.0, 0.25, 0.15]])
    torch.testing.assert_close(prior.to_clusters(component_probs), torch.tensor([[0.3, 0.3, 0.4]]))
    torch.testing.assert_close(prior.cluster_weights(), torch.full((3,), 1 / 3))
    spread = prior.to_components(torch.tensor([[0.0, 1.0, 0.0]]), component_probs.log())
    torch.testing.assert_close(spread, torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]))


def test_placement_puts_each_cluster_and_its_components_on_its_own_group():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    groups = np.repeat(np.arange(3), 100)
    latent = centres[groups] + rng.normal(size=(300, 2))
    prior = MixturePrior(n_clusters=3, n_latent=2, components_per_cluster=2)
    prior.initialize(latent, split_clusters(latent, groups, 3, 2))
    means = prior.means.detach().numpy().reshape(3, 2, 2)
    for k in range(3):
        assert np.abs(means[k] - centres[k]).max() < 2.5
        assert np.abs(means[k, 0] - means[k, 1]).max() > 0.3  # a real split, not copies
    draws = prior.sample(torch.full((200,), 2))
    assert np.abs(draws.mean(0).numpy() - centres[2]).max() < 0.5
