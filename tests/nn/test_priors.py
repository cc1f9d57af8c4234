"""The mixture prior: posteriors over components, cluster sums, placement, density."""

import numpy as np
import torch

from cgmvae.nn.priors import MixturePrior
from cgmvae.train.placement import split_clusters


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


def test_mixture_density_matches_torch_and_sums_every_component():
    torch.manual_seed(0)
    prior = MixturePrior(n_clusters=3, n_latent=2, learn_weights=True, components_per_cluster=2)
    with torch.no_grad():
        prior.log_vars.copy_(torch.randn(6, 2) * 0.3)
        prior.logits.copy_(torch.randn(6))
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits),
        torch.distributions.Independent(
            torch.distributions.Normal(prior.means, prior.variances.sqrt()), 1
        ),
    )
    z = torch.randn(4, 7, 2)
    torch.testing.assert_close(prior.log_prob(z), reference.log_prob(z).detach())
