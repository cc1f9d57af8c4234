"""The torch modules: inference outputs, loss terms, the marginal likelihood."""

import numpy as np
import torch

from cgmvae.constants import MODULE_KEYS
from cgmvae.modules import AutoencoderModule, GMVAEModule, VAEModule
from cgmvae.nn.priors import MixturePrior, kl_standard_normal


def test_denoising_autoencoder_corrupts_only_during_training():
    module = AutoencoderModule(n_input=6, n_latent=2, n_hidden=8, dropout_rate=0.0, noise_sd=1.0)
    x = torch.ones(64, 6)
    condition = torch.zeros(64, 1, dtype=torch.long)
    module.eval()
    clean = module.inference(x, condition)[MODULE_KEYS.QZM_KEY]
    torch.testing.assert_close(module.inference(x, condition)[MODULE_KEYS.QZM_KEY], clean)
    module.train()
    noisy = module.inference(x, condition)[MODULE_KEYS.QZM_KEY]
    assert not torch.allclose(noisy, module.inference(x, condition)[MODULE_KEYS.QZM_KEY])
    module.noise_sd = 0.0
    torch.testing.assert_close(
        module.inference(x, condition)[MODULE_KEYS.QZM_KEY],
        module.inference(x, condition)[MODULE_KEYS.QZM_KEY],
    )


def test_vae_kl_equals_closed_form():
    mean = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    var = torch.tensor([[1.0, 0.5], [2.0, 0.1]])
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, var.sqrt()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mean, var), expected)
    module = VAEModule(n_input=3, n_latent=2, beta=0.5)
    cost = module.latent_terms({MODULE_KEYS.QZM_KEY: mean, MODULE_KEYS.QZV_KEY: var}, {})
    torch.testing.assert_close(cost.kl_terms["kl_z"], expected)
    torch.testing.assert_close(cost.penalty, 0.5 * expected)


def loss_spread(module, tensors, repeats=60):
    with torch.no_grad():
        return np.std([module(tensors)[2].loss.item() for _ in range(repeats)])


def test_more_monte_carlo_samples_lower_the_loss_variance():
    torch.manual_seed(0)
    tensors = {
        "X": torch.poisson(torch.full((64, 30), 4.0)),
        "condition": torch.zeros(64, 1, dtype=torch.long),
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
    outputs = {
        "cluster_probs": probs,
        "component_probs": probs,
        "component_kl": analytic[None],
        "component_logits": probs.log(),
    }
    cost = module.latent_terms(outputs, {})
    terms = cost.kl_terms
    log_q_y = probs.log()
    joint = (probs * (analytic[None] + log_q_y - prior.log_weights())).sum()
    torch.testing.assert_close(terms["kl_z"] + terms["kl_y"], joint[None])


def test_mixture_module_pretrains_as_a_vae_until_the_prior_is_placed():
    module = GMVAEModule(n_input=4, n_latent=2, n_clusters=3)
    outputs = {MODULE_KEYS.QZM_KEY: torch.zeros(5, 2), MODULE_KEYS.QZV_KEY: torch.ones(5, 2)}
    outputs["component_kl"] = module.prior.component_kl(torch.zeros(5, 2), torch.ones(5, 2))
    outputs["cluster_probs"] = outputs["component_probs"] = torch.full((5, 3), 1 / 3)
    outputs["component_logits"] = outputs["component_probs"].log()
    assert set(module.latent_terms(outputs, {}).kl_terms) == {"kl_z"}
    module.prior.initialize(np.random.default_rng(0).normal(size=(60, 2)), np.arange(60) % 3)
    assert set(module.latent_terms(outputs, {}).kl_terms) == {"kl_z", "kl_y"}


def test_marginal_likelihood_is_above_the_elbo_and_uses_the_mixture_prior():
    torch.manual_seed(0)
    tensors = {
        "X": torch.poisson(torch.full((32, 20), 3.0)),
        "condition": torch.zeros(32, 1),
    }
    module = GMVAEModule(n_input=20, n_latent=2, n_hidden=16, n_clusters=2, likelihood="nb")
    module.eval()
    z = torch.randn(5, 2)
    torch.testing.assert_close(module.log_prior(z), VAEModule.log_prior(module, z))
    module.prior.initialize(np.random.default_rng(0).normal(size=(40, 2)) * 3, np.arange(40) % 2)
    torch.testing.assert_close(module.log_prior(z), module.prior.log_prob(z))
    elbo = torch.zeros(32)
    with torch.no_grad():
        for _ in range(100):  # the ELBO's own Monte-Carlo estimate, averaged
            losses = module(tensors)[2]
            reconstruction = losses.reconstruction_loss["reconstruction_loss"]
            elbo -= (reconstruction + sum(losses.kl_local.values())) / 100
    marginal = module.marginal_ll(tensors, n_mc_samples=300, n_mc_samples_per_pass=70)
    assert marginal.shape == (32,)
    assert (marginal > elbo - 0.2).all(), (marginal - elbo).min()
