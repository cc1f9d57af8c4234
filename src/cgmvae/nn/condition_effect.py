"""Additive condition effects on the decoder's output scale (log space for counts)."""

from __future__ import annotations

import torch
from torch import nn

#: Poisson standard errors the shared response's median is shrunk by (1 scored at least as
#: well as 2 on 9–10 of 12 held-out groups, ``benchmarks/results/counterfactual_ablation.md``).
SHARED_THRESHOLD_SE = 1.0

#: Standard errors a cluster's change beyond the shared response is shrunk by.
SPECIFIC_THRESHOLD_SE = 2.0


class ConditionEffect(nn.Module):
    """Offsets δ(c, y) added to the decoder's pre-activation outputs (log-rates for counts).

    δ(c, y) = s_c + Σ_k q(y = k) t_{k,c}: a response ``s_c`` shared by every cell and a
    response ``t_{k,c}`` specific to cluster k, weighted by the cell's cluster
    probabilities. The first condition is the reference (s_0 = t_{k,0} = 0), so effects are
    changes relative to it. The responses are stored divided by ``gain``: with Adam a
    parameter moves about one learning rate per step, and a change of several log-units must
    be reachable within a short training run, before z has learned to encode the condition
    in its place. The specific responses have a Laplace prior of scale
    ``specific_scale``: a (cluster, condition) never observed gets no support from the data
    and is shrunk to zero, so its prediction falls back to the shared response.

    Parameters
    ----------
    n_conditions
        Number of condition categories.
    n_features
        Number of observed features (genes, pixels).
    n_clusters
        Number of clusters with a specific response (0: shared response only).
    specific_scale
        Scale of the Laplace prior on the cluster-specific responses.
    gain
        Factor between the stored parameters and the responses.
    """

    def __init__(
        self,
        n_conditions: int,
        n_features: int,
        n_clusters: int = 0,
        specific_scale: float = 0.1,
        gain: float = 50.0,
    ):
        super().__init__()
        self.gain = gain
        if specific_scale <= 0:
            raise ValueError(f"specific_effect_scale must be positive, got {specific_scale}.")
        self.specific_scale = specific_scale
        n_changed = max(n_conditions - 1, 0)
        self.shared = nn.Parameter(torch.zeros(n_changed, n_features))
        self.specific = (
            nn.Parameter(torch.zeros(n_clusters, n_changed, n_features)) if n_clusters else None
        )
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("shared_fixed", torch.tensor(False))

    def forward(
        self, condition: torch.Tensor, cluster_probs: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Return δ for each cell, shape ``(n_cells, n_features)``; ``None`` with one condition.

        ``condition`` holds condition codes, shape ``(n_cells, 1)``; ``cluster_probs``,
        shape ``(n_cells, n_clusters)``, weights the specific responses (``None``: shared
        response only).
        """
        if self.shared.shape[0] == 0:
            return None
        shared = self.shared.detach() if bool(self.shared_fixed) else self.shared
        padded = nn.functional.pad(shared, (0, 0, 1, 0))  # reference row of zeros
        # one-hot products instead of indexing: the gradient of an index is a scatter,
        # many times slower than these matrix products on CPU
        one_hot = nn.functional.one_hot(condition.long().reshape(-1), padded.shape[0])
        one_hot = one_hot.to(padded.dtype)
        offset = one_hot @ padded
        if self.specific is not None and cluster_probs is not None:
            specific = nn.functional.pad(self.specific, (0, 0, 1, 0))
            weights = (cluster_probs[:, :, None] * one_hot[:, None, :]).flatten(1)
            offset = offset + weights @ specific.flatten(0, 1)
        return self.gain * offset

    @property
    def shared_response(self) -> torch.Tensor:
        """s_c for every condition but the reference, shape ``(n_conditions - 1, n_features)``."""
        return self.gain * self.shared.detach()

    @property
    def specific_response(self) -> torch.Tensor | None:
        """t_{k,c}, shape ``(n_clusters, n_conditions - 1, n_features)``, or ``None``."""
        return None if self.specific is None else self.gain * self.specific.detach()

    @torch.no_grad()
    def place_shared(
        self, counts: torch.Tensor, libraries: torch.Tensor, n_cells: torch.Tensor
    ) -> None:
        """Set s_c to a pseudo-bulk estimate and hold it fixed from now on.

        For every group with at least :data:`MIN_CELLS` cells under condition c and under
        the reference, the log fold change of its pooled rate is taken; s_c is their median
        over groups (robust to responses specific to a few groups), soft-thresholded by
        :data:`SHARED_THRESHOLD_SE` Poisson standard errors. Trained jointly with the
        networks, s_c drifts from that median toward the response of the largest clusters,
        hence fixed. If a condition
        has no group observed under it and the reference, nothing is fixed and s is trained.

        Parameters
        ----------
        counts
            Counts summed per group and condition, shape ``(n_groups, n_conditions,
            n_features)``.
        libraries
            Library sizes summed likewise, shape ``(n_groups, n_conditions)``.
        n_cells
            Number of cells, shape ``(n_groups, n_conditions)``.
        """
        changes = pseudo_bulk_changes(counts, libraries, n_cells)
        for code, (lfc, se) in changes.items():
            threshold = SHARED_THRESHOLD_SE * se.median(0).values
            shared = soft_threshold(lfc.median(0).values, threshold)
            self.shared[code - 1] = shared / self.gain
        self.initialized.fill_(True)
        self.shared_fixed.fill_(len(changes) == self.shared.shape[0])

    @torch.no_grad()
    def place_specific(
        self, counts: torch.Tensor, libraries: torch.Tensor, n_cells: torch.Tensor
    ) -> None:
        """Start t_{k,c} at the pseudo-bulk change of cluster k beyond s_c.

        Arguments as :meth:`place_shared`, with the groups the model's clusters. The
        remainder is soft-thresholded by :data:`SPECIFIC_THRESHOLD_SE` standard errors;
        pairs with fewer than :data:`MIN_CELLS` cells keep t_{k,c} = 0.
        """
        if self.specific is None:
            return
        self.specific.zero_()
        for code, (lfc, se) in pseudo_bulk_changes(counts, libraries, n_cells).items():
            both = observed_pairs(n_cells, code)
            shared = self.gain * self.shared[code - 1]
            self.specific[both, code - 1] = (
                soft_threshold(lfc - shared, SPECIFIC_THRESHOLD_SE * se) / self.gain
            )

    def log_prior(self) -> torch.Tensor:
        """Log-density (up to a constant) of the specific responses under their prior."""
        if self.specific is None:
            return torch.zeros((), device=self.shared.device)
        return -self.gain * self.specific.abs().sum() / self.specific_scale


def specific_support(shares: torch.Tensor) -> torch.Tensor:
    """How much of each cluster's content one condition observed of another's.

    With the same mix of contents under every condition, a cluster holds the same share of
    each condition's cells; where it holds a smaller share of condition c′'s cells than of
    c's, only that part of its c cells has counterparts under c′, and its specific response
    between c and c′ was fitted on content the rest do not have (a cell type held out of c′
    that shares its cluster with another type). The support is that part.

    Parameters
    ----------
    shares
        ``shares[c, k]``: cluster k's share of condition c's training cells (mean q(y | x, c)),
        shape ``(n_conditions, n_clusters)``.

    Returns
    -------
    torch.Tensor
        ``support[c, c′, k] = min(1, shares[c′, k] / shares[c, k])`` (1 where cluster k holds
        none of c's cells), shape ``(n_conditions, n_conditions, n_clusters)``.
    """
    source = shares[:, None, :]
    ratio = shares[None, :, :] / source.clamp_min(1e-12)
    return torch.where(source > 0, ratio.clamp(max=1.0), 1.0)


def soft_threshold(values: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Shrink ``values`` toward zero by ``threshold`` (zero where smaller)."""
    return values.sign() * (values.abs() - threshold).clamp_min(0.0)


MIN_CELLS = 5


def observed_pairs(n_cells: torch.Tensor, code: int) -> torch.Tensor:
    """Return the groups with enough cells under condition ``code`` and the reference."""
    return (n_cells[:, code] >= MIN_CELLS) & (n_cells[:, 0] >= MIN_CELLS)


def pseudo_bulk_changes(
    counts: torch.Tensor, libraries: torch.Tensor, n_cells: torch.Tensor
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Log fold changes of pooled rates and their Poisson standard errors, per condition.

    Returns ``{code: (lfc, se)}`` for each non-reference condition code with at least one
    group observed under it and the reference; both have one row per such group.
    """
    log_rate = torch.log(counts + 0.5) - torch.log(libraries + 1.0)[..., None]
    variance = 1.0 / (counts + 0.5)
    changes = {}
    for code in range(1, counts.shape[1]):
        both = observed_pairs(n_cells, code)
        if both.any():
            lfc = log_rate[both, code] - log_rate[both, 0]
            changes[code] = (lfc, (variance[both, code] + variance[both, 0]).sqrt())
    return changes
