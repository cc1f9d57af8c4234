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


def tight_and_broad_clusters():
    """Posterior means of a tight cluster and a broad one, with equal posterior variances."""
    rng = np.random.default_rng(0)
    tight = rng.normal(scale=0.02, size=(100, 2))
    broad = np.array([3.0, 0.0]) + rng.normal(scale=1.0, size=(100, 2))
    latent = np.concatenate([tight, broad])
    return latent, np.full_like(latent, 0.25), np.repeat([0, 1], 100)


def closed_form_clusters(prior, latent, latent_var):
    kl = prior.component_kl(torch.as_tensor(latent).float(), torch.as_tensor(latent_var).float())
    logits = prior.component_posterior_logits(kl)
    return prior.to_clusters(torch.softmax(logits, -1)).argmax(-1).numpy()


def test_placement_minimises_the_kl_of_its_cells_posteriors():
    latent, latent_var, groups = tight_and_broad_clusters()
    prior = MixturePrior(n_clusters=2, n_latent=2)
    prior.initialize(latent, groups, latent_var=latent_var)
    for k in range(2):
        cells = groups == k
        expected = latent[cells].var(0) + latent_var[cells].mean(0)
        np.testing.assert_allclose(prior.variances[k].detach().numpy(), expected, rtol=1e-3)

        def summed_kl(mean, var, cells=cells):
            one = MixturePrior(n_clusters=1, n_latent=2)
            with torch.no_grad():
                one.means.copy_(torch.as_tensor(mean).float().view(1, 2))
                one.log_vars.copy_(torch.as_tensor(var).float().log().view(1, 2))
            q = torch.as_tensor(latent[cells]).float(), torch.as_tensor(latent_var[cells]).float()
            return one.component_kl(*q).sum().item()

        placed = summed_kl(prior.means[k].detach(), prior.variances[k].detach())
        for scale in (0.5, 0.9, 1.1, 2.0):
            assert placed <= summed_kl(prior.means[k].detach(), prior.variances[k] * scale)


def test_a_tight_cluster_keeps_its_cells_after_placement():
    # Placed on the spread of the posterior means alone, the tight cluster's Gaussian is far
    # narrower than its cells' posteriors, which are then closer (in KL) to the broad one:
    # q(y | x) hands the whole cluster over, and the clusters no longer follow the partition.
    latent, latent_var, groups = tight_and_broad_clusters()
    means_only = MixturePrior(n_clusters=2, n_latent=2)
    means_only.initialize(latent, groups)
    assert (closed_form_clusters(means_only, latent, latent_var)[groups == 0] == 1).all()
    placed = MixturePrior(n_clusters=2, n_latent=2)
    placed.initialize(latent, groups, latent_var=latent_var)
    assert (closed_form_clusters(placed, latent, latent_var) == groups).mean() > 0.97
