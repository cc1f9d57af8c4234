"""Everything the Gaussian-mixture models add to a model: clusters, placement, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from cgmvae.constants import MODULE_KEYS, REGISTRY_KEYS, PlacementMethod
from cgmvae.train.placement.mixture import mixture_callbacks
from cgmvae.validation import check_n_clusters

PLACEMENT_ARGUMENTS = (
    "cluster_init",
    "cluster_placement",
    "placement_max_cells",
    "cluster_refine",
    "lr_scale",
    "lr_scale_at",
)


class ClusterMixin:
    """Adds the mixture's clusters to a model.

    Placement while training, posteriors, :meth:`predict`, generation per cluster and their
    AnnData keys.
    """

    _supports_labels = True

    @property
    def label_names(self) -> list[str]:
        """Known label classes registered for semi-supervised training (may be empty)."""
        fields = self.registry_["field_registries"]
        if REGISTRY_KEYS.LABELS_KEY in fields:
            state = fields[REGISTRY_KEYS.LABELS_KEY]["state_registry"]
            unlabeled = str(state.get("unlabeled_category"))
            return [str(c) for c in state["categorical_mapping"] if str(c) != unlabeled]
        if REGISTRY_KEYS.LABEL_PROBS_KEY in fields:
            state = fields[REGISTRY_KEYS.LABEL_PROBS_KEY]["state_registry"]
            return [str(c) for c in state["column_names"]]
        return []

    @property
    def cluster_names(self) -> list[str]:
        """Name of each cluster: its label where labels were given, else its index."""
        labels = self.label_names
        return labels + [str(k) for k in range(len(labels), self.module.prior.n_clusters)]

    def _registry_module_kwargs(self, module_kwargs: dict) -> dict:
        n_labels = len(self.label_names)
        n_clusters = module_kwargs["n_clusters"]
        if self.adata is not None:
            check_n_clusters(n_clusters, self.adata.n_obs, "adata has")
        if n_labels > n_clusters:
            raise ValueError(
                f"The labels name {n_labels} classes but n_clusters={n_clusters}; "
                f"use n_clusters >= {n_labels}."
            )
        return {"n_labels": n_labels}

    def train(
        self,
        max_epochs: int | None = None,
        *,
        cluster_init: float = 0.5,
        cluster_placement: PlacementMethod = "auto",
        placement_max_cells: int = 20_000,
        cluster_refine: float | None = None,
        lr_scale: float | None = None,
        lr_scale_at: float | None = 0.4,
        early_stopping: bool = False,
        **kwargs,
    ):
        """Train as a (C)VAE, place the mixture on the latent, and train on.

        Parameters
        ----------
        max_epochs
            Passes through the data; ``None`` derives it from the number of cells.
        cluster_init
            Fraction of the epochs after which the components are placed.
        cluster_placement
            How the latent is clustered to place them: ``"auto"`` (whichever of the two
            others cuts fewer nearest-neighbour edges), ``"umap"`` (a Gaussian mixture on a
            UMAP embedding, the N2D recipe) or ``"kmeans"``; see
            :func:`~cgmvae.train.placement.cluster_latent`.
        placement_max_cells
            Cluster at most this many randomly chosen training cells.
        cluster_refine
            Fraction of the epochs after which the components are placed a second time, by
            Leiden communities of the latent trained since; ``None`` (default) places them
            once. The second placement is all or nothing: which Leiden partition it finds
            can change with the last bits of the latent, so it made the clusters depend on
            the CPU (``benchmarks/results/stability.md``). Never with known labels.
        lr_scale
            Factor applied to every learning rate once, after ``lr_scale_at`` of the epochs;
            ``1.0`` keeps them. At the full step, training moved one seed's latent and
            clusters differently under each CPU's floating-point kernels
            (``benchmarks/results/stability.md``); a tenth lets the latent settle before the
            placement and the mixture phase refine the placed clusters. ``None`` (default):
            0.1 without known labels, 1.0 with labels registered by
            ``setup_anndata(labels_key=...)``, whose classification needs the full step (5 %
            labels on the simulator: ACC 0.887 at the full step, 0.805 with 0.1;
            ``benchmarks/results/clustering_ablation.md``).
        lr_scale_at
            Fraction of the epochs in [0, 1] after which the learning rates are scaled, by
            default shortly before the placement at ``cluster_init``; ``None`` scales them
            when the mixture is placed.
        early_stopping
            Stop when the validation ELBO stops improving, but never before the mixture
            has been placed and trained for a quarter of the remaining epochs.
        **kwargs
            Passed to :meth:`BaseAutoencoderModel.train` (``batch_size``, ``plan_kwargs``,
            trainer arguments, ...).
        """
        n_train = self._training_set_size(
            kwargs.get("train_size"),
            kwargs.get("batch_size", 128),
            (kwargs.get("datasplitter_kwargs") or {}).get("drop_last", False),
        )
        n_placed = min(n_train, placement_max_cells)
        check_n_clusters(self.module.n_clusters, n_placed, "the placement would use")
        self._mixture_callbacks = mixture_callbacks(
            cluster_init,
            cluster_placement,
            placement_max_cells,
            cluster_refine,
            lr_scale,
            lr_scale_at,
            labelled=bool(self.label_names),
        )
        return super().train(max_epochs, early_stopping=early_stopping, **kwargs)

    def _training_callbacks(self, max_epochs: int) -> list:
        """Add the mixture placement and learning-rate step that :meth:`train` set up."""
        return [*super()._training_callbacks(max_epochs), *self._mixture_callbacks]

    def _earliest_stop(self, max_epochs: int) -> int:
        """Return a quarter of the remaining epochs (at least one) after the placement."""
        placed = self._mixture_callbacks[0].placement_epoch(max_epochs)
        return placed + max(1, (max_epochs - placed) // 4)

    def _misplaced_plan_kwargs(self) -> dict[str, str]:
        return {
            name: f"pass it to train() itself (model.train({name}=...))."
            for name in PLACEMENT_ARGUMENTS
        }

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
        return self._collect(
            lambda tensors: self._inference(tensors)[MODULE_KEYS.CLUSTER_PROBS_KEY],
            adata,
            indices,
            batch_size,
        )

    def _latent_and_cluster_probs(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Posterior means and q(y | x, c) of one minibatch, side by side."""
        inference = self._inference(tensors)
        return torch.cat(
            [inference[MODULE_KEYS.QZM_KEY], inference[MODULE_KEYS.CLUSTER_PROBS_KEY]], dim=-1
        )

    def get_cluster_assignments(
        self,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Hard cluster assignments argmax_k q(y = k | x, c), shape ``(n_obs,)``."""
        return self.get_cluster_probabilities(adata, indices, batch_size).argmax(1)

    def predict(
        self,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        soft: bool = False,
        batch_size: int | None = None,
    ) -> np.ndarray | pd.DataFrame:
        """Cluster of each cell, by name (as scANVI's ``predict``).

        Parameters
        ----------
        adata
            Cells registered like the training data; ``None`` uses the training AnnData.
        indices
            Rows to use; ``None`` uses all.
        soft
            Return the probabilities q(y | x, c) instead of the most probable cluster.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        numpy.ndarray or pandas.DataFrame
            Cluster names, shape ``(n_obs,)``; with ``soft=True`` a DataFrame with one
            column per cluster name, indexed by the cells' names.
        """
        probs = self.get_cluster_probabilities(adata, indices, batch_size)
        names = np.asarray(self.cluster_names)
        if not soft:
            return names[probs.argmax(1)]
        cells = self._validate_anndata(adata).obs_names
        if indices is not None:
            cells = cells[np.asarray(indices)]
        return pd.DataFrame(probs, index=cells, columns=list(names))

    @torch.inference_mode()
    def sample(
        self,
        n_samples: int,
        cluster: int | str | None = None,
        condition: str | None = None,
        library_size: float | None = None,
    ) -> AnnData:
        """Generate observations from the mixture prior.

        Parameters
        ----------
        n_samples
            Number of observations.
        cluster
            Draw every observation from this cluster (name or index); ``None`` draws
            clusters from π.
        condition
            Conditional models: decode under this condition (default: the first one).
        library_size
            Count likelihoods: total count of each generated cell (default: the median of
            the training data).

        Returns
        -------
        anndata.AnnData
            As :meth:`BaseAutoencoderModel.sample`, with ``.obs["cluster"]`` naming the
            cluster each observation was drawn from.
        """
        self.module.eval()
        clusters = self.module.draw_clusters(n_samples, self._cluster_code(cluster))
        z = self.module.sample_prior(n_samples, clusters)
        probs = torch.nn.functional.one_hot(clusters, self.module.prior.n_clusters).float()
        result = self._decode_prior(z, condition, library_size, probs)
        names = np.asarray(self.cluster_names)[clusters.cpu().numpy()]
        result.obs["cluster"] = pd.Categorical(names, categories=self.cluster_names)
        # named by cluster, so that draws from several clusters concatenate without clashes
        result.obs_names = [f"{name}_{i}" for i, name in enumerate(names)]
        return result

    def write_results(
        self,
        adata: AnnData | None = None,
        latent_key: str | None = None,
        cluster_key: str | None = None,
        key_added: str | None = None,
    ) -> None:
        """Write latent, clusters and parameters into ``adata`` in place.

        Writes ``.obsm["X_<key>"]``, ``.obs["<key>_cluster"]`` (categorical strings, like
        :func:`scanpy.tl.leiden`), ``.obsm["<key>_cluster_probs"]`` (one column per cluster,
        named in ``.uns["<key>"]["cluster_names"]``) and ``.uns["<key>"]``; ``<key>`` is the
        lower-case model name unless ``key_added`` names it.

        Parameters
        ----------
        adata
            Where to write; ``None`` uses the training AnnData.
        latent_key
            Key in ``.obsm`` for the latent; default ``"X_<model>"``.
        cluster_key
            Key in ``.obs`` for the clusters; the probabilities go to
            ``.obsm[f"{cluster_key}_probs"]``. Default ``"<key>_cluster"``.
        key_added
            Prefix of every key written (as scanpy's ``key_added``), so that two models of
            one class can write into one AnnData; default the model's name.
        """
        outputs = self._collect(self._latent_and_cluster_probs, adata)  # one inference pass
        n_latent = self.module.n_latent
        target, key = self._write_latent_and_params(
            adata, latent_key, outputs[:, :n_latent], key_added
        )
        target.uns[key]["cluster_names"] = list(self.cluster_names)
        cluster_key = cluster_key or f"{key}_cluster"
        probs = outputs[:, n_latent:]
        names = np.asarray(self.cluster_names)
        present = np.unique(probs.argmax(1))
        target.obs[cluster_key] = pd.Categorical(
            names[probs.argmax(1)], categories=list(names[present])
        )
        target.obsm[f"{cluster_key}_probs"] = probs
