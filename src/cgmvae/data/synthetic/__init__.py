"""Synthetic data with known ground truth: simulated counts and real counts with an effect.

- :mod:`~cgmvae.data.synthetic.simulation`: :func:`simulate`, negative binomial counts of
  clusters × conditions.
- :mod:`~cgmvae.data.synthetic.semisynthetic`: :func:`add_condition_effect`, a known
  condition effect added to real counts.
- :mod:`~cgmvae.data.synthetic.ground_truth`: the one ``.uns["ground_truth"]`` scheme both
  write, read by :func:`true_log_fold_change`, :func:`true_mean` and
  :func:`true_cell_means`.
- ``SimulationParams`` and ``EffectParams``: each generator's settings, checked once.
- ``_counts`` (chunked negative binomial draws) is the private helper; the argument checks
  are :mod:`cgmvae.validation`'s.
"""

from cgmvae.data.synthetic.ground_truth import (
    GROUND_TRUTH_KEY,
    get_ground_truth,
    true_cell_means,
    true_log_fold_change,
    true_mean,
)
from cgmvae.data.synthetic.semisynthetic import add_condition_effect
from cgmvae.data.synthetic.simulation import simulate

__all__ = [
    "GROUND_TRUTH_KEY",
    "add_condition_effect",
    "get_ground_truth",
    "simulate",
    "true_cell_means",
    "true_log_fold_change",
    "true_mean",
]
