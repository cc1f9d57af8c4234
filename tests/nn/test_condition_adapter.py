"""The affine condition adapter recovers a contrast/brightness change and undoes it."""

import pytest
import torch

from cgmvae.modules.vae import VAEModule
from cgmvae.nn import ConditionAdapter, get_likelihood


def images_with_a_change(n_obs=2000, n_features=50, seed=0):
    generator = torch.Generator().manual_seed(seed)
    clean = (torch.rand(n_obs, n_features, generator=generator) > 0.7).float()
    clean[:, :10] = 0.0  # a border that is always blank
    condition = (torch.rand(n_obs, generator=generator) < 0.5).long()
    pattern = torch.linspace(0.1, 0.3, n_features)
    changed = torch.where(condition[:, None] == 1, 0.5 * clean + pattern, clean)
    return clean, changed, condition, pattern


def test_place_recovers_contrast_and_pattern_and_to_base_undoes_them():
    clean, changed, condition, pattern = images_with_a_change()
    adapter = ConditionAdapter(n_conditions=2, n_features=clean.shape[1])
    adapter.place(changed, condition[:, None])
    assert bool(adapter.initialized)
    assert adapter.gain[0].item() == 1.0 and adapter.shift[0].abs().max() < 1e-6
    assert adapter.gain[1].item() == pytest.approx(0.5, abs=0.03)
    torch.testing.assert_close(adapter.shift[1], pattern, atol=0.03, rtol=0)
    restored = adapter.to_base(changed, condition[:, None])
    assert (restored - clean).abs().mean() < 0.03


def test_the_base_is_the_condition_with_the_widest_range_whatever_its_code():
    clean, changed, condition, _ = images_with_a_change()
    flipped = 1 - condition  # the low-contrast images now come first
    adapter = ConditionAdapter(n_conditions=2, n_features=clean.shape[1])
    adapter.place(changed, flipped[:, None])
    assert adapter.gain[1].item() == 1.0
    assert adapter.gain[0].item() == pytest.approx(0.5, abs=0.03)
    assert (adapter.to_base(changed, flipped[:, None]) - clean).abs().mean() < 0.03


def test_a_condition_with_too_few_cells_keeps_the_identity():
    x = torch.rand(40, 6)
    codes = torch.zeros(40, 1, dtype=torch.long)
    codes[:3] = 2
    adapter = ConditionAdapter(n_conditions=3, n_features=6)
    adapter.place(x, codes)
    assert (adapter.gain == 1).all() and (adapter.shift == 0).all()


def test_affine_bernoulli_mean_stays_a_probability_and_gaussian_scales_with_the_gain():
    hidden = torch.randn(5, 8)
    gain, shift = torch.full((5, 1), 0.5), torch.full((5, 3), 0.3)
    bernoulli = get_likelihood("bernoulli")(8, 3)(hidden, affine=(gain, shift))
    assert ((bernoulli.mean >= 0.3) & (bernoulli.mean <= 0.8)).all()
    head = get_likelihood("gaussian")(8, 3)
    plain, mapped = head(hidden), head(hidden, affine=(gain, shift))
    torch.testing.assert_close(mapped.mean, 0.5 * plain.mean + 0.3)
    torch.testing.assert_close(mapped.stddev, 0.5 * plain.stddev)


def test_affine_effect_is_refused_for_counts_and_hides_the_condition_from_the_encoder():
    with pytest.raises(ValueError, match="not likelihood='nb'; use condition_effect='additive'"):
        VAEModule(20, n_conditions=2, likelihood="nb", condition_effect="affine")
    module = VAEModule(20, n_conditions=2, likelihood="bernoulli", condition_effect="affine")
    x = torch.rand(4, 20)
    module.eval()
    with torch.no_grad():
        first = module.inference(x, torch.zeros(4, 1))["qzm"]
        second = module.inference(x, torch.ones(4, 1))["qzm"]
    torch.testing.assert_close(first, second)  # identity adapter: the condition is not seen
