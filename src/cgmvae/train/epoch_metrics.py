"""Loss terms summed over an epoch on the device, to be logged once when it ends."""

from __future__ import annotations

import torch
from scvi.module.base import LossOutput


class EpochTotals:
    """Sums of one mode's (training or validation) loss terms over an epoch.

    Lightning's ``log`` costs about as much per call as a small matrix product, and scvi-tools'
    plan calls it for every term at every step; summing here and logging the epoch means
    once keeps the same history for a fraction of the cost (profiled in
    ``benchmarks/results/profile_findings.md``). The means equal scvi-tools' ``ElboMetric``:
    per-observation terms are divided by the observations, ``kl_global`` by the minibatches.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.n_obs = 0
        self.n_batches = 0
        self.kl_weight: float | None = None

    def add(self, loss_output: LossOutput, kl_weight: float | None = None) -> None:
        """Add one minibatch's loss terms."""
        n_obs = loss_output.n_obs_minibatch
        terms = {
            "loss": loss_output.loss * n_obs,
            "reconstruction_loss": loss_output.reconstruction_loss_sum,
            "kl_local": loss_output.kl_local_sum,
            "kl_global": loss_output.kl_global_sum,
        }
        for name, value in (loss_output.extra_metrics or {}).items():
            terms[name] = value * n_obs
        with torch.no_grad():
            for name, value in terms.items():
                value = value.detach() if isinstance(value, torch.Tensor) else value
                self.sums[name] = self.sums.get(name, 0.0) + value
        self.n_obs += n_obs
        self.n_batches += 1
        self.kl_weight = kl_weight

    def means(self, n_total: int | None) -> dict[str, torch.Tensor | float]:
        """Epoch means under their loss-term names, with ``elbo`` as scvi-tools defines it.

        ``n_total`` is the number of observations of the mode (it divides ``kl_global``).
        """
        if not self.n_batches:
            return {}
        means = {name: total / self.n_obs for name, total in self.sums.items()}
        means["kl_global"] = self.sums["kl_global"] / self.n_batches
        scale = 1 if not n_total or n_total < 1 else n_total
        local = means["reconstruction_loss"] + means["kl_local"]
        means["elbo"] = local + means["kl_global"] / scale
        return means
