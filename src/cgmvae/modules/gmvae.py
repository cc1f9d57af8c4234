"""Gaussian-mixture VAE (also the conditional CGMVAE) with y marginalised exactly."""

from __future__ import annotations

import numpy as np
import torch

from cgmvae.constants import MODULE_KEYS, REGISTRY_KEYS
from cgmvae.modules.base import LatentCost
from cgmvae.modules.vae import VAEModule
from cgmvae.nn.invariance import cluster_share_penalty
from cgmvae.nn.priors import MixturePrior


class GMVAEModule(VAEModule):
    """GMVAE: y ~ Cat(π), z | y ~ Σ_{j ∈ y} (π_j / π_y) N(μ_j, σ_j²), x ~ p(x | z, c).

    Each cluster y is a union of ``components_per_cluster`` diagonal Gaussians j (one:
    the classical GMVAE). With q(j, z | x, c) = q(j | x, c) q(z | x, c) every term but the
    reconstruction is analytic. q(j | x, c) is the closed-form minimiser of the mixture
    terms, ``q_j ∝ π_j exp(−(β / β_y) KL(q(z | x, c) || N(μ_j, σ_j²)))``, so no cluster
    head or Gumbel-softmax sampling is needed; q(y | x, c) sums it over y's components.
    Until the mixture is initialised the module trains as a (C)VAE with a standard normal
    prior.

    Cells with a known label (a class index below ``n_labels`` in the labels tensor, or a
    non-zero row of class probabilities) use it in place of q(y | x, c) in the KL terms and
    add ``classification_weight`` × cross-entropy(q(y | x, c), label).

    Parameters
    ----------
    n_clusters
        Number of clusters K.
    components_per_cluster
        Number M of Gaussian components per cluster.
    beta_y
        Weight of KL(q(y | x, c) || π).
    free_bits
        Free nats on the KL of y: below this batch mean it gets no gradient.
    learn_cluster_weights
        Learn the mixture weights π (otherwise uniform).
    n_labels
        Number of known label classes (0: unsupervised); class j is component j.
    classification_weight
        Weight α of the cross-entropy on labelled cells.
    cluster_share_weight
        With a condition penalty (``condition_invariance``), the weight of
        :func:`~cgmvae.nn.cluster_share_penalty` once the mixture is placed:
        every cluster holds the same share of each condition's cells (0: not used; the
        CGMVAE model sets it by likelihood).
    **kwargs
        Passed to :class:`~cgmvae.modules.VAEModule` (``beta``, ``n_mc_samples``, sizes).
    """

    def __init__(
        self,
        *args,
        n_clusters: int = 10,
        components_per_cluster: int = 1,
        beta_y: float = 1.0,
        free_bits: float = 0.0,
        learn_cluster_weights: bool = False,
        n_labels: int = 0,
        classification_weight: float = 100.0,
        cluster_share_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(*args, n_effect_clusters=n_clusters, **kwargs)
        self.cluster_share_weight = cluster_share_weight
        self.beta_y = beta_y
        self.free_bits = free_bits
        self.n_labels = n_labels
        self.classification_weight = classification_weight
        self.prior = MixturePrior(
            n_clusters, self.n_latent, learn_cluster_weights, components_per_cluster
        )

    @property
    def n_clusters(self) -> int:
        """Number of clusters K of the mixture prior."""
        return self.prior.n_clusters

    @property
    def components_per_cluster(self) -> int:
        """Gaussian components per cluster."""
        return self.prior.components_per_cluster

    @property
    def mixture_placed(self) -> bool:
        """Whether the mixture has been placed on the data (before that it trains as a VAE)."""
        return bool(self.prior.initialized)

    def place_mixture(
        self,
        latent: np.ndarray,
        components: np.ndarray,
        anchors: dict[int, np.ndarray] | None = None,
        latent_var: np.ndarray | None = None,
    ) -> None:
        """Place the mixture's components on cells, see :meth:`MixturePrior.initialize`."""
        self.prior.initialize(latent, components, anchors, latent_var)

    def placement_state(self) -> list[torch.nn.Module]:
        """Return the parts whose values placement sets: the condition parts and the prior."""
        return [*super().placement_state(), self.prior]

    @property
    def places_specific_effect(self) -> bool:
        """Whether placing the mixture also starts cluster-specific condition responses."""
        effect = self.condition_effect
        return (
            effect is not None
            and effect.specific is not None
            and self.n_conditions > 1
            and self.models_counts
        )

    def place_specific_effect(
        self, counts: torch.Tensor, libraries: torch.Tensor, n_cells: torch.Tensor
    ) -> None:
        """Start the cluster-specific responses from pseudo-bulk sums per (cluster, condition).

        See :meth:`~cgmvae.nn.ConditionEffect.place_specific`.
        """
        self.condition_effect.place_specific(counts, libraries, n_cells)

    @property
    def kl_ratio(self) -> float:
        """β / β_y, the inverse temperature of the closed-form q(y | x, c)."""
        return self.beta / self.beta_y if self.beta_y > 0 else 1.0

    def inference(
        self, x: torch.Tensor, condition: torch.Tensor, n_samples: int = 1
    ) -> dict[str, torch.Tensor | None]:
        """Encode, then add the per-component KLs and the posteriors q(j | x, c), q(y | x, c)."""
        outputs = super().inference(x, condition, n_samples)
        component_kl = self.prior.component_kl(
            outputs[MODULE_KEYS.QZM_KEY], outputs[MODULE_KEYS.QZV_KEY]
        )
        logits = self.prior.component_posterior_logits(component_kl, self.kl_ratio)
        component_probs = torch.softmax(logits, dim=-1)
        outputs[MODULE_KEYS.COMPONENT_KL_KEY] = component_kl
        outputs[MODULE_KEYS.COMPONENT_LOGITS_KEY] = logits
        outputs[MODULE_KEYS.COMPONENT_PROBS_KEY] = component_probs
        outputs[MODULE_KEYS.CLUSTER_PROBS_KEY] = self.prior.to_clusters(component_probs)
        return outputs

    def effect_cluster_probs(self, inference_outputs: dict) -> torch.Tensor | None:
        """q(y | x, c) once the mixture is placed (no gradient flows back to the clusters)."""
        if not bool(self.prior.initialized):
            return None
        return inference_outputs[MODULE_KEYS.CLUSTER_PROBS_KEY].detach()

    def cluster_targets(
        self, tensors: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Known cluster probabilities and a mask of labelled cells, or ``None``."""
        if REGISTRY_KEYS.LABEL_PROBS_KEY in tensors:
            probs = tensors[REGISTRY_KEYS.LABEL_PROBS_KEY].float()
            probs = torch.nn.functional.pad(probs, (0, self.prior.n_clusters - probs.shape[-1]))
            totals = probs.sum(-1, keepdim=True)
            return probs / totals.clamp_min(1e-12), totals.squeeze(-1) > 0
        if self.n_labels > 0 and REGISTRY_KEYS.LABELS_KEY in tensors:
            codes = tensors[REGISTRY_KEYS.LABELS_KEY].long().squeeze(-1)
            mask = codes < self.n_labels
            onehot = torch.nn.functional.one_hot(
                codes.clamp(max=self.n_labels - 1), self.prior.n_clusters
            )
            return onehot.float(), mask
        return None

    def latent_terms(
        self, inference_outputs: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]
    ) -> LatentCost:
        """β Σ_j q_j KL(q(z) || p(z | j)) + β_y KL(q(j) || π) (+ α CE on labelled cells).

        Until the prior's components are placed (:meth:`MixturePrior.initialize`), the
        latent is pre-trained as a (C)VAE with a standard normal prior, so that the latent
        the components are fitted to already leaves the condition to the decoder.
        """
        if not bool(self.prior.initialized):
            return super().latent_terms(inference_outputs, tensors)
        probs = inference_outputs[MODULE_KEYS.CLUSTER_PROBS_KEY]
        weights = inference_outputs[MODULE_KEYS.COMPONENT_PROBS_KEY]
        logits = inference_outputs[MODULE_KEYS.COMPONENT_LOGITS_KEY]
        other_terms, classification = {}, 0.0
        targets = self.cluster_targets(tensors)
        if targets is not None:
            known, mask = (t.to(probs.device) for t in targets)
            known_weights = self.prior.to_components(known, logits)
            weights = torch.where(mask[:, None], known_weights, weights)
            cross_entropy = -(known * probs.clamp_min(1e-12).log()).sum(-1) * mask
            classification = self.classification_weight * cross_entropy
            other_terms["classification_loss"] = cross_entropy
        kl_z = (weights * inference_outputs[MODULE_KEYS.COMPONENT_KL_KEY]).sum(-1)
        kl_y = self.prior.component_kl_to_weights(weights)
        kl_y_loss = kl_y
        if self.free_bits > 0 and kl_y.mean() < self.free_bits:
            kl_y_loss = kl_y.detach()
        penalty = self.beta * kl_z + self.beta_y * kl_y_loss
        return LatentCost({"kl_z": kl_z, "kl_y": kl_y}, penalty, classification, other_terms)

    def condition_penalties(
        self, inference_outputs: dict[str, torch.Tensor], condition: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Return the latent's penalty, plus equal cluster shares across conditions once placed."""
        penalties = super().condition_penalties(inference_outputs, condition)
        if bool(self.prior.initialized) and self.cluster_share_weight > 0:
            share = cluster_share_penalty(
                inference_outputs[MODULE_KEYS.CLUSTER_PROBS_KEY], condition, self.n_conditions
            )
            penalties["cluster_share"] = (self.cluster_share_weight, share)
        return penalties

    def diagnostics(self, inference_outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Effective number of clusters in the batch: exp(entropy of the mean q(y | x, c)).

        Logged once the mixture is placed; before that q(y | x, c) has no meaning.
        """
        if not bool(self.prior.initialized):
            return {}
        mean_probs = inference_outputs[MODULE_KEYS.CLUSTER_PROBS_KEY].mean(0).detach()
        entropy = -(mean_probs * mean_probs.clamp_min(1e-12).log()).sum()
        return {"cluster_usage": entropy.exp()}

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Log p(z) under the mixture (the standard normal until it is placed)."""
        if not bool(self.prior.initialized):
            return super().log_prior(z)
        return self.prior.log_prob(z)

    @torch.inference_mode()
    def draw_clusters(self, n_samples: int, cluster: int | None = None) -> torch.Tensor:
        """Draw clusters y ~ Cat(π), or repeat ``cluster``; shape ``(n_samples,)``."""
        if cluster is None:
            return torch.multinomial(self.prior.cluster_weights(), n_samples, replacement=True)
        return torch.full((n_samples,), cluster, device=self.device, dtype=torch.long)

    @torch.inference_mode()
    def sample_prior(self, n_samples: int, clusters: torch.Tensor | None = None) -> torch.Tensor:
        """Draw z from the mixture prior, from the given ``clusters`` if any."""
        if clusters is None:
            clusters = self.draw_clusters(n_samples)
        return self.prior.sample(clusters)
