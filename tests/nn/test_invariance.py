import pytest
import torch

from cgmvae.nn.invariance import (
    INVARIANCE_PENALTIES,
    AdversarialPenalty,
    MMDPenalty,
    cluster_share_penalty,
)


def two_groups(shift: float, n: int = 200, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(2 * n, 4, generator=generator)
    latent[n:, 0] += shift
    condition = torch.repeat_interleave(torch.tensor([0, 1]), n)
    return latent, condition


def test_mmd_grows_with_the_difference_between_conditions():
    penalty = MMDPenalty(2)
    values = [penalty(*two_groups(shift)).item() for shift in (0.0, 1.0, 3.0)]
    assert values[0] < 0.05
    assert values[0] < values[1] < values[2]


def test_mmd_does_not_change_when_the_latent_is_rescaled():
    latent, condition = two_groups(1.0)
    penalty = MMDPenalty(2)
    assert penalty(10 * latent, condition).item() == pytest.approx(
        penalty(latent, condition).item(), rel=1e-4
    )


def test_mmd_is_zero_with_one_condition_in_the_batch_and_pulls_the_groups_together():
    latent, condition = two_groups(2.0)
    penalty = MMDPenalty(2)
    assert penalty(latent, torch.zeros_like(condition)).item() == 0.0
    latent.requires_grad_(True)
    penalty(latent, condition).backward()
    # The shifted group's codes are pushed back along the shift (negative gradient step).
    assert latent.grad[200:, 0].mean() > 0 > latent.grad[:200, 0].mean()


def test_adversary_learns_the_condition_while_its_gradient_to_the_latent_is_reversed():
    latent, condition = two_groups(3.0)
    torch.manual_seed(0)
    penalty = AdversarialPenalty(4, 2)
    latent.requires_grad_(True)
    loss = penalty(latent, condition)
    loss.backward()
    reversed_grad = latent.grad.clone()
    latent.grad = None
    logits = penalty.classifier(latent)
    torch.nn.functional.cross_entropy(logits, condition).backward()
    torch.testing.assert_close(reversed_grad, -latent.grad)
    optimizer = torch.optim.Adam(penalty.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        penalty(latent.detach(), condition).backward()
        optimizer.step()
    assert penalty(latent.detach(), condition).item() < 0.2


def test_cluster_share_is_zero_for_equal_shares_and_the_squared_difference_otherwise():
    condition = torch.tensor([0, 0, 1, 1])
    even = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    assert cluster_share_penalty(even, condition, 2).item() == 0.0
    # condition 0 puts 0.75 of its cells in cluster 0, condition 1 puts 0.25 there
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.5, 0.5]], requires_grad=True)
    value = cluster_share_penalty(probs, condition.reshape(-1, 1), 2)
    assert value.item() == pytest.approx(2 * 0.5**2)
    value.backward()
    # the gradient moves condition 0's cells out of cluster 0 and condition 1's into it
    assert (probs.grad[:2, 0] > 0).all() and (probs.grad[2:, 0] < 0).all()


def test_cluster_share_ignores_conditions_with_too_few_cells_in_the_batch():
    probs = torch.softmax(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), -1)
    assert cluster_share_penalty(probs, torch.zeros(6), 2).item() == 0.0
    # a third condition with a single cell does not enter; the other two do
    condition = torch.tensor([0, 0, 0, 1, 1, 2])
    probs[:3] = torch.tensor([0.5, 0.3, 0.2])
    probs[3:] = torch.tensor([0.1, 0.6, 0.3])
    # conditions 0 and 1 each against the other cells; condition 2 (one cell) not counted
    zero = (torch.tensor([0.5, 0.3, 0.2]) - torch.tensor([0.1, 0.6, 0.3])).square().sum()
    one = (torch.tensor([0.1, 0.6, 0.3]) - torch.tensor([1.6, 1.5, 0.9]) / 4).square().sum()
    expected = (zero + one) / 2
    assert cluster_share_penalty(probs, condition, 3).item() == pytest.approx(expected.item())


def test_every_penalty_is_registered_by_name():
    assert set(INVARIANCE_PENALTIES) == {"mmd", "adversarial"}
    latent, condition = two_groups(0.5, n=10)
    for penalty_cls in INVARIANCE_PENALTIES.values():
        assert penalty_cls.for_latent(4, 2)(latent, condition).dim() == 0


def test_switched_layers_start_as_one_map_and_learn_one_per_condition():
    from cgmvae.nn.blocks import Encoder, switch_by_condition

    values = torch.arange(6.0).reshape(2, 3)
    expanded = switch_by_condition(values, torch.tensor([[0], [1]]), 2)
    torch.testing.assert_close(
        expanded, torch.tensor([[0.0, 1, 2, 0, 1, 2, 0, 0, 0], [3, 4, 5, 0, 0, 0, 3, 4, 5]])
    )
    torch.manual_seed(0)
    encoder = Encoder(3, 2, 8, 1, 1, 0.0, n_switched=2).eval()
    x = torch.randn(5, 3)
    plain, _ = encoder(x, torch.zeros(5, 1))
    other, _ = encoder(x, torch.ones(5, 1))
    torch.testing.assert_close(plain, other)
    first = encoder.hidden.fc_layers[0][0]
    with torch.no_grad():
        first.weight[:, 6:] += 1.0  # the second condition's block
    changed, _ = encoder(x, torch.ones(5, 1))
    assert not torch.allclose(changed, plain)
    torch.testing.assert_close(encoder(x, torch.zeros(5, 1))[0], plain)


def test_a_switched_decoder_starts_as_one_map_in_every_layer_of_its_head():
    from cgmvae.nn.blocks import Decoder

    torch.manual_seed(0)
    # zinb's head has two layers reading the decoder's activations (means and dropouts).
    decoder = Decoder(2, 5, 8, 1, [1], 0.0, "zinb", n_switched=2).eval()
    assert len(decoder.head.input_layers()) == 2
    z, library = torch.randn(4, 2), torch.full((4, 1), 100.0)
    plain = decoder(z, [torch.zeros(4, 1, dtype=torch.long)], None, library)
    other = decoder(z, [torch.ones(4, 1, dtype=torch.long)], None, library)
    torch.testing.assert_close(plain.mu, other.mu)
    torch.testing.assert_close(plain.zi_logits, other.zi_logits)
