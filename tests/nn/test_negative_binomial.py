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


def _copies(*tensors):
    return [tensor.detach().clone().requires_grad_() for tensor in tensors]


def _assert_same_gradients(ours, reference, pairs, tolerance):
    """Backpropagate the same random weighting of both outputs; compare the gradients."""
    weights = torch.rand(ours.shape, generator=torch.Generator().manual_seed(1))
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    for mine, theirs in pairs:
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("sample_shape", [(), (3,)])
def test_log_prob_and_gradients_equal_scvi_tools(sample_shape):
    mu, theta, counts = _inputs(sample_shape)
    ours = GeneNegativeBinomial(mu=mu, theta=theta).log_prob(counts)
    mu_ref, theta_ref = _copies(mu, theta)
    reference = log_nb_positive(counts, mu_ref, theta_ref.expand_as(mu_ref))
    assert (counts == 0).any()
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    _assert_same_gradients(ours, reference, [(mu, mu_ref), (theta, theta_ref)], 1e-5)


def test_keeps_scvi_tools_distribution_api():
    mu, theta, _ = _inputs()
    scale = mu.detach() / mu.detach().sum(-1, keepdim=True)
    distribution = GeneNegativeBinomial(mu=mu, theta=theta, scale=scale)
    assert distribution.theta.shape == mu.shape
    torch.testing.assert_close(distribution.get_normalized("scale"), scale)
    assert distribution.sample().shape == mu.shape


def _logit_inputs(sample_shape=(), seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn((*sample_shape, 6, 9), generator=generator).requires_grad_()
    theta = (torch.rand(9, generator=generator) * 3 + 0.2).requires_grad_()
    counts = torch.poisson(torch.full((6, 9), 2.0), generator=generator)
    counts[0, 0], counts[1, 1], counts[2, 2] = 0.5, 40.0, 250.0  # beyond the table
    return logits, theta, counts, counts.sum(-1, keepdim=True)


@pytest.mark.parametrize("sample_shape", [(), (3,)])
def test_summed_log_likelihood_from_logits_equals_scvi_tools(sample_shape):
    logits, theta, counts, library = _logit_inputs(sample_shape)
    ours = GeneNegativeBinomial(theta=theta, logits=logits, library=library).log_prob_sum(counts)
    logits_ref, theta_ref = _copies(logits, theta)
    mu = torch.softmax(logits_ref, -1) * library
    reference = log_nb_positive(counts, mu, theta_ref.expand_as(mu)).sum(-1)
    assert ours.shape == (*sample_shape, 6)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-4)
    pairs = [(logits, logits_ref), (theta, theta_ref)]
    _assert_same_gradients(ours, reference, pairs, 1e-4)


def test_built_from_logits_keeps_the_distribution_api():
    logits, theta, counts, library = _logit_inputs()
    distribution = GeneNegativeBinomial(theta=theta, logits=logits, library=library)
    scale = torch.softmax(logits, -1)
    torch.testing.assert_close(distribution.get_normalized("scale"), scale)
    torch.testing.assert_close(distribution.mean, scale * library)
    assert distribution.theta.shape == logits.shape
    torch.testing.assert_close(
        distribution.log_prob(counts).sum(-1), distribution.log_prob_sum(counts), rtol=1e-5, atol=0
    )
    assert distribution.sample().shape == logits.shape


def test_a_cell_without_counts_has_a_finite_likelihood():
    logits, theta, counts, _ = _logit_inputs()
    counts[3] = 0.0
    library = counts.sum(-1, keepdim=True)
    summed = GeneNegativeBinomial(theta=theta, logits=logits, library=library).log_prob_sum(counts)
    assert torch.isfinite(summed).all()
    summed.sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(theta.grad).all()


def test_needs_means_or_logits_with_library():
    logits, theta, _, library = _logit_inputs()
    with pytest.raises(ValueError, match="either mu, or logits and library"):
        GeneNegativeBinomial(theta=theta, logits=logits)
    with pytest.raises(ValueError, match="either mu, or logits and library"):
        GeneNegativeBinomial(mu=library.expand(6, 9), theta=theta, logits=logits, library=library)
