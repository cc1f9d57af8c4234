"""Cluster methods shared by the Gaussian-mixture models."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scvi import REGISTRY_KEYS

from cgmvae.modules.gmvae import LABEL_PROBS_KEY


class ClusterMixin:
    """Adds cluster posteriors, hard assignments and their AnnData keys to a model."""

    _supports_labels = True

    @property
    def label_names(self) -> list[str]:
        """Known label classes registered for semi-supervised training (may be empty)."""
        fields = self.registry_["field_registries"]
        if REGISTRY_KEYS.LABELS_KEY in fields:
            state = fields[REGISTRY_KEYS.LABELS_KEY]["state_registry"]
            unlabeled = str(state.get("unlabeled_category"))
            return [str(c) for c in state["categorical_mapping"] if str(c) != unlabeled]
        if LABEL_PROBS_KEY in fields:
            return [str(c) for c in fields[LABEL_PROBS_KEY]["state_registry"]["column_names"]]
        return []

    @property
    def cluster_names(self) -> list[str]:
        """Name of each cluster: its label where labels were given, else its index."""
        labels = self.label_names
        return labels + [str(k) for k in range(len(labels), self.module.prior.n_clusters)]

    def _registry_module_kwargs(self, module_kwargs: dict) -> dict:
        n_labels = len(self.label_names)
        n_clusters = module_kwargs["n_clusters"]
        if n_labels > n_clusters:
            raise ValueError(
                f"The labels name {n_labels} classes but n_clusters={n_clusters}; "
                f"use n_clusters >= {n_labels}."
            )
        return {"n_labels": n_labels}

    def _cluster_code(self, cluster) -> int | None:
        if cluster is None:
            return None
        names = self.cluster_names
        if str(cluster) in names:
            return names.index(str(cluster))
        raise ValueError(f"Unknown cluster {cluster!r}; the clusters are {', '.join(names)}.")

    def get_cluster_probabilities(
        self,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Soft cluster assignments q(y | x, c).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_obs, n_clusters)``; each row sums to 1.
        """
        return self._inference_output("cluster_probs", adata, indices, batch_size)

    def get_cluster_assignments(
        self,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Hard cluster assignments argmax_k q(y = k | x, c), shape ``(n_obs,)``."""
        return self.get_cluster_probabilities(adata, indices, batch_size).argmax(1)

    def write_results(
        self,
        adata: AnnData | None = None,
        latent_key: str | None = None,
        cluster_key: str | None = None,
    ) -> None:
        """Write latent, clusters and parameters into ``adata`` in place.

        Writes ``.obsm["X_<model>"]``, ``.obs["<model>_cluster"]`` (categorical strings, like
        :func:`scanpy.tl.leiden`), ``.obsm["<model>_cluster_probs"]`` and ``.uns["<model>"]``.

        Parameters
        ----------
        adata
            Where to write; ``None`` uses the training AnnData.
        latent_key
            Key in ``.obsm`` for the latent; default ``"X_<model>"``.
        cluster_key
            Key in ``.obs`` for the clusters; the probabilities go to
            ``.obsm[f"{cluster_key}_probs"]``. Default ``"<model>_cluster"``.
        """
        super().write_results(adata, latent_key)
        target = self.adata if adata is None else adata
        cluster_key = cluster_key or f"{self.name}_cluster"
        probs = self.get_cluster_probabilities(adata)
        names = np.asarray(self.cluster_names)
        present = np.unique(probs.argmax(1))
        target.obs[cluster_key] = pd.Categorical(
            names[probs.argmax(1)], categories=list(names[present])
        )
        target.obsm[f"{cluster_key}_probs"] = probs
