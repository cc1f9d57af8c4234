"""Learned penalties that push the latent to carry no information about the condition.

Each penalty takes a minibatch of latent means (or, for :func:`cluster_share_penalty`, of
cluster posteriors) and their condition codes and returns one number that is small when the
conditions cannot be told apart from them. Neither
assumes a form of the change the condition makes to the observations: they only ask that
the latent's distribution be the same under every condition, which holds when the
conditions hold the same mixture of contents (a randomised experiment).
"""

from __future__ import annotations

import torch
from torch import nn

#: Bandwidths of the Gaussian kernels of :class:`MMDPenalty`, as multiples of the mean
#: squared distance between the minibatch's latent codes.
KERNEL_SCALES = (0.25, 1.0, 4.0)
#: Cells a condition needs in a minibatch to enter the penalty.
MIN_GROUP = 2
#: The CGMVAE's weight of :func:`cluster_share_penalty` for count likelihoods.
CLUSTER_SHARE_WEIGHT = 30.0


def condition_groups(
    condition: torch.Tensor, n_conditions: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a minibatch by condition, for a penalty of each condition against the others.

    Returns the one-hot memberships ``(n_cells, n_conditions)``, the cells inside and
    outside each condition, and which conditions count (:data:`MIN_GROUP` cells or more on
    both sides), all as ``dtype``, without indexing (no host-device synchronisation).
    """
    members = nn.functional.one_hot(condition.long().reshape(-1), n_conditions).to(dtype)
    inside = members.sum(0)
    outside = inside.sum() - inside
    counted = ((inside >= MIN_GROUP) & (outside >= MIN_GROUP)).to(dtype)
    return members, inside, outside, counted


class MMDPenalty(nn.Module):
    """Squared maximum mean discrepancy between each condition's codes and the others'.

    A sum of Gaussian kernels whose bandwidths follow the minibatch's spread
    (:data:`KERNEL_SCALES`, not learned and not differentiated), so that the penalty does
    not change when the latent is rescaled. For each condition with :data:`MIN_GROUP` cells
    or more in the minibatch, the biased (V-statistic) MMD² between its codes and the codes
    of the other conditions; the penalty is their mean (0 with a single condition present).

    Parameters
    ----------
    n_conditions
        Number of condition categories.
    """

    def __init__(self, n_conditions: int):
        super().__init__()
        self.n_conditions = n_conditions

    @classmethod
    def for_latent(cls, n_latent: int, n_conditions: int) -> MMDPenalty:
        """Build the penalty for a latent of ``n_latent`` dimensions (the kernel needs no size)."""
        return cls(n_conditions)

    def forward(self, latent: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Return the MMD² penalty of a minibatch (a scalar)."""
        members, inside, outside, counted = condition_groups(
            condition, self.n_conditions, latent.dtype
        )
        distances = torch.cdist(latent, latent).square()
        scale = distances.detach().mean().clamp_min(1e-8)
        kernel = sum(torch.exp(-distances / (factor * scale)) for factor in KERNEL_SCALES)
        # Kernel sums between every pair of conditions in one product, so that the
        # penalty needs no per-condition indexing and no host-device synchronisation.
        pair_sums = members.T @ kernel @ members
        total = pair_sums.sum()
        own = pair_sums.diagonal()
        with_all = pair_sums.sum(1)
        within = own / inside.square().clamp_min(1)
        others = (total - 2 * with_all + own) / outside.square().clamp_min(1)
        between = (with_all - own) / (inside * outside).clamp_min(1)
        discrepancy = (within + others - 2 * between) * counted
        return discrepancy.sum() / counted.sum().clamp_min(1)


def cluster_share_penalty(
    cluster_probs: torch.Tensor, condition: torch.Tensor, n_conditions: int
) -> torch.Tensor:
    """Squared distance between each condition's cluster shares and the other conditions'.

    A constraint on the mixture rather than on z: with the same mix of contents in every
    condition, every cluster holds the same share of each condition's cells. For each
    condition with :data:`MIN_GROUP` cells or more in the minibatch (and as many outside
    it), the mean q(y | x, c) of its cells against that of the other cells, summed over the
    clusters; the penalty is the mean over those conditions (0 with a single condition).

    Parameters
    ----------
    cluster_probs
        q(y | x, c) of the minibatch, ``(n_cells, n_clusters)``.
    condition
        Condition codes, ``(n_cells,)`` or ``(n_cells, 1)``.
    n_conditions
        Number of condition categories.
    """
    members, inside, outside, counted = condition_groups(
        condition, n_conditions, cluster_probs.dtype
    )
    sums = members.T @ cluster_probs
    own_share = sums / inside.clamp_min(1)[:, None]
    other_share = (sums.sum(0) - sums) / outside.clamp_min(1)[:, None]
    distance = (own_share - other_share).square().sum(1) * counted
    return distance.sum() / counted.sum().clamp_min(1)


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient's sign flipped backward."""

    @staticmethod
    def forward(ctx, value: torch.Tensor) -> torch.Tensor:
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return -grad


class AdversarialPenalty(nn.Module):
    """Cross-entropy of a condition classifier on the latent, through a gradient reversal.

    The classifier (one hidden layer) learns to predict the condition from the codes; the
    reversed gradient trains the encoder to make that prediction fail, in the same
    optimisation step. The penalty is the classifier's mean cross-entropy; at equilibrium it
    is the entropy of the condition's frequencies (log 2 for two balanced conditions).

    Parameters
    ----------
    n_latent
        Dimension of the latent.
    n_conditions
        Number of condition categories.
    n_hidden
        Width of the classifier's hidden layer.
    """

    def __init__(self, n_latent: int, n_conditions: int, n_hidden: int = 64):
        super().__init__()
        self.n_conditions = n_conditions
        self.classifier = nn.Sequential(
            nn.Linear(n_latent, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_conditions)
        )

    @classmethod
    def for_latent(cls, n_latent: int, n_conditions: int) -> AdversarialPenalty:
        """Build the penalty for a latent of ``n_latent`` dimensions."""
        return cls(n_latent, n_conditions)

    def forward(self, latent: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Return the classifier's cross-entropy on a minibatch (a scalar)."""
        logits = self.classifier(_ReverseGradient.apply(latent))
        return nn.functional.cross_entropy(logits, condition.long().reshape(-1))


#: The penalties by the name models take (``condition_invariance=...``).
INVARIANCE_PENALTIES: dict[str, type[nn.Module]] = {
    "mmd": MMDPenalty,
    "adversarial": AdversarialPenalty,
}
