"""Per-condition affine maps of the observation scale (images and other non-count data)."""

from __future__ import annotations

import torch
from torch import nn

#: Conditions with fewer cells than this keep the identity map.
MIN_OBSERVATIONS = 5


class ConditionAdapter(nn.Module):
    """x ↦ a_c x + b_c: how condition c changes an observation of a base condition.

    The decoder models every observation as under the base condition and the adapter maps
    its mean onto condition c; the encoder receives the inverse map of the observed x,
    ``(x − b_c) / a_c``, and not the condition. A change of contrast (``a``), of brightness
    (a constant ``b``) or an added pattern (``b`` per feature) is then taken out before z,
    which cannot encode it. ``a_c`` is one number per condition, ``b_c`` one per feature;
    both are estimated from the data before training (:meth:`place`) and held fixed. The
    base is the condition whose features vary most, so that the other conditions are
    compressed versions of it (``a_c ≤ 1``) and the decoder works on the full range.

    Parameters
    ----------
    n_conditions
        Number of condition categories.
    n_features
        Number of observed features.
    """

    def __init__(self, n_conditions: int, n_features: int):
        super().__init__()
        self.register_buffer("gain", torch.ones(n_conditions, 1))
        self.register_buffer("shift", torch.zeros(n_conditions, n_features))
        self.register_buffer("initialized", torch.tensor(False))

    def coefficients(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``a`` ``(n_cells, 1)`` and ``b`` ``(n_cells, n_features)`` of each cell."""
        codes = condition.long().reshape(-1)
        return self.gain[codes], self.shift[codes]

    def to_base(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Map observations under their condition back to the base condition."""
        gain, shift = self.coefficients(condition)
        return (x - shift) / gain

    @torch.no_grad()
    def place(self, x: torch.Tensor, condition: torch.Tensor) -> None:
        """Estimate a_c and b_c by matching each condition's moments to the base's.

        The base is the condition with the largest median standard deviation over the
        features. ``a_c`` is the median, over the more variable half of the features (under
        the base), of the ratio of their standard deviations under c and under the base;
        ``b_c`` is the mean under c minus ``a_c`` times the mean under the base. This
        assumes that the conditions hold the same mixture of contents (as in a randomised
        experiment); training does not change the estimate. Conditions with fewer than
        :data:`MIN_OBSERVATIONS` cells keep the identity.
        """
        x = x.to(self.shift.device).float()
        codes = condition.to(self.shift.device).long().reshape(-1)
        observed = [c for c in range(len(self.gain)) if (codes == c).sum() >= MIN_OBSERVATIONS]
        if len(observed) >= 2:
            spread = {c: x[codes == c].std(0).median() for c in observed}
            base = x[codes == max(spread, key=spread.get)]
            mean_base, sd_base = base.mean(0), base.std(0)
            variable = sd_base >= sd_base.median()
            for code in observed:
                changed = x[codes == code]
                ratio = changed.std(0)[variable] / sd_base[variable].clamp_min(1e-8)
                gain = ratio.median().clamp(0.05, 20.0)
                self.gain[code] = gain
                self.shift[code] = changed.mean(0) - gain * mean_base
        self.initialized.fill_(True)
