import pytest
import torch

from cgmvae.modules import GMVAEModule
from cgmvae.nn import ConditionEffect, specific_support
from cgmvae.train.placement import every_condition_observed


def test_reference_condition_has_no_offset_and_others_add_shared_plus_specific():
    effect = ConditionEffect(n_conditions=3, n_features=4, n_clusters=2, gain=1.0)
    with torch.no_grad():
        effect.shared.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0]]))
        effect.specific.zero_()
        effect.specific[1, 1, 3] = 5.0  # cluster 1, condition 2, feature 3
    condition = torch.tensor([[0], [1], [2], [2]])
    probs = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    offset = effect(condition, probs)
    expected = torch.tensor([[0.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 2.0, 0, 2.5]])
    torch.testing.assert_close(offset, expected)
    shared_only = expected.clone()
    shared_only[3, 3] = 0.0
    torch.testing.assert_close(effect(condition), shared_only)


def test_specific_effects_have_a_laplace_prior_and_shared_ones_none():
    effect = ConditionEffect(2, 3, n_clusters=2, specific_scale=0.5, gain=2.0)
    with torch.no_grad():
        effect.shared.fill_(4.0)
        effect.specific.fill_(-1.0)
    assert effect.log_prior().item() == pytest.approx(-2 * 6 / 0.5)
    assert effect.specific_response.min().item() == -2.0
    assert ConditionEffect(2, 3).log_prior().item() == 0.0
    with pytest.raises(ValueError, match="positive"):
        ConditionEffect(2, 3, 1, specific_scale=0.0)


def test_additive_decoder_layers_do_not_see_the_condition():
    additive = GMVAEModule(n_input=20, n_conditions=3, condition_effect="additive", n_clusters=4)
    injected = GMVAEModule(n_input=20, n_conditions=3, condition_effect="injected", n_clusters=4)
    assert additive.decoder.hidden.n_cat_list[0] == 0
    assert injected.decoder.hidden.n_cat_list[0] == 3
    assert additive.condition_effect.specific.shape == (4, 2, 20)
    assert injected.condition_effect is None
    with pytest.raises(ValueError, match="'additive'"):
        GMVAEModule(n_input=20, condition_effect="multiplicative")


def pooled(lfcs: torch.Tensor, base: float = 200.0, n_unchanged: int = 500) -> tuple:
    """Counts summed per (group, condition) whose pooled log fold changes are ``lfcs``,
    followed by ``n_unchanged`` features that do not change (so library sizes barely do)."""
    lfcs = torch.nn.functional.pad(lfcs, (0, n_unchanged))
    n_groups, n_features = lfcs.shape
    reference = torch.full((n_groups, n_features), base)
    counts = torch.stack([reference, reference * lfcs.exp()], dim=1)
    libraries = counts.sum(-1)
    return counts, libraries, torch.full((n_groups, 2), 50.0)


def test_place_shared_takes_the_median_over_groups_and_holds_it_fixed():
    lfcs = torch.tensor(
        [[2.0, 0.0, 0.0], [2.0, 3.0, 0.0], [2.0, 0.0, -3.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]
    )
    counts, libraries, n_cells = pooled(lfcs)
    effect = ConditionEffect(n_conditions=2, n_features=counts.shape[-1], n_clusters=5)
    effect.place_shared(counts, libraries, n_cells)
    shared = effect.shared_response[0]
    # the median [2, 0, 0, ...], shrunk by one standard error (0.075 here)
    assert shared[0] == pytest.approx(2.0 - 0.075, abs=0.02)
    assert torch.all(shared[1:] == 0)
    assert bool(effect.shared_fixed)
    effect(torch.tensor([[1]]), torch.full((1, 5), 0.2)).sum().backward()
    assert effect.shared.grad is None and effect.specific.grad is not None


def test_place_specific_keeps_observed_changes_and_zeroes_unobserved_pairs():
    lfcs = torch.tensor([[2.0, 0.0], [2.0, 3.0], [2.0, 0.0]])
    counts, libraries, n_cells = pooled(lfcs)
    n_cells[2, 1] = 1  # group 2 barely observed under the condition
    effect = ConditionEffect(n_conditions=2, n_features=counts.shape[-1], n_clusters=3)
    effect.place_shared(counts, libraries, n_cells)
    effect.place_specific(counts, libraries, n_cells)
    specific = effect.specific_response[:, 0]
    assert specific[1, 1] == pytest.approx(3.0 - 0.17, abs=0.05)  # group 1's own response
    assert torch.all(specific[2] == 0)  # unobserved: the shared response only
    assert torch.all(specific[0, 1:] == 0)


def test_place_shared_leaves_s_trainable_when_no_group_saw_both_conditions():
    counts, libraries, n_cells = pooled(torch.tensor([[2.0], [2.0]]))
    n_cells[:, 1] = 0  # every group observed under the reference only
    effect = ConditionEffect(n_conditions=2, n_features=counts.shape[-1], n_clusters=2)
    effect.place_shared(counts, libraries, n_cells)
    assert not bool(effect.shared_fixed) and torch.all(effect.shared_response == 0)
    assert not every_condition_observed(n_cells)
    n_cells[0, 1] = 50
    assert every_condition_observed(n_cells)


def test_support_is_the_part_of_a_cluster_the_other_condition_holds():
    shares = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.6, 0.3]])
    support = specific_support(shares)
    assert support.shape == (2, 2, 3)
    torch.testing.assert_close(support[0, 0], torch.ones(3))
    torch.testing.assert_close(support[1, 1], torch.tensor([1.0, 1.0, 1.0]))
    torch.testing.assert_close(support[0, 1], torch.tensor([0.2, 1.0, 1.0]))
    torch.testing.assert_close(support[1, 0], torch.tensor([1.0, 0.5 / 0.6, 0.0]))
