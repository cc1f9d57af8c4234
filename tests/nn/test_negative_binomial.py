import pytest
import torch
from scvi.distributions._negative_binomial import log_nb_positive

from cgmvae.nn import GeneNegativeBinomial


def _inputs(sample_shape=(), seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (*sample_shape, 6, 9)
    mu = (torch.rand(shape, generator=generator) * 5 + 0.1).requires_grad_()
    theta = (torch.rand(9, generator=generator) * 3 + 0.2).requires_grad_()
    counts = torch.poisson(torch.full((6, 9), 1.5), generator=generator)
    counts[0, 0], counts[1, 1] = 0.5, 40.0  # a non-integer and a large count
    return mu, theta, counts


@pytest.mark.parametrize("sample_shape", [(), (3,)])
def test_log_prob_and_gradients_equal_scvi_tools(sample_shape):
    mu, theta, counts = _inputs(sample_shape)
    ours = GeneNegativeBinomial(mu=mu, theta=theta).log_prob(counts)
    mu_ref = mu.detach().clone().requires_grad_()
    theta_ref = theta.detach().clone().requires_grad_()
    reference = log_nb_positive(counts, mu_ref, theta_ref.expand_as(mu_ref))
    assert (counts == 0).any()
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    weights = torch.rand(ours.shape, generator=torch.Generator().manual_seed(1))
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(mu.grad, mu_ref.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(theta.grad, theta_ref.grad, rtol=1e-5, atol=1e-5)


def test_keeps_scvi_tools_distribution_api():
    mu, theta, _ = _inputs()
    scale = mu.detach() / mu.detach().sum(-1, keepdim=True)
    distribution = GeneNegativeBinomial(mu=mu, theta=theta, scale=scale)
    assert distribution.theta.shape == mu.shape
    torch.testing.assert_close(distribution.get_normalized("scale"), scale)
    assert distribution.sample().shape == mu.shape
