"""Gaussian-mixture VAE."""

from __future__ import annotations

from typing import ClassVar

from anndata import AnnData

from cgmvae.models.base import BaseAutoencoderModel
from cgmvae.models.cluster import ClusterMixin
from cgmvae.modules.gmvae import GMVAEModule


class GMVAE(ClusterMixin, BaseAutoencoderModel):
    """Gaussian-mixture VAE: y ~ Cat(π), z | y ~ N(μ_y, diag σ_y²), x ~ p(x | z).

    Each cluster is a union of ``components_per_cluster`` diagonal Gaussians, so it can
    follow a curved or elongated shape in z. q(y | x) is the closed-form optimum of the
    mixture terms (y and the components are marginalised exactly); the prior means and
    scales are learned. The model pre-trains as a VAE, then places the clusters on a
    partition of the latent (a Gaussian mixture on its UMAP embedding or k-means, whichever
    cuts fewer nearest-neighbour edges; ``train(cluster_placement=...)`` forces one), and
    trains on. Clusters are
    argmax_k q(y = k | x).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    registry
        A saved data registry, used by :meth:`load` when no AnnData is given.
    n_clusters
        Number of clusters.
    components_per_cluster
        Gaussian components per cluster: a cluster is their union, so it can take shapes
        one diagonal Gaussian cannot (see :class:`~cgmvae.nn.MixturePrior`).
    n_latent
        Dimension of z.
    n_hidden
        Width of the hidden layers; ``None``: 512 for ``"bernoulli"`` (images), else 128.
    n_layers
        Number of hidden layers in encoder and decoder; ``None``: 2 for ``"bernoulli"``,
        else 1.
    dropout_rate
        Dropout in the hidden layers.
    likelihood
        ``"nb"`` (default, raw counts), ``"zinb"``, ``"poisson"``, ``"gaussian"``,
        ``"bernoulli"``, or a name
        registered with :func:`~cgmvae.nn.register_likelihood`.
    beta
        Weight of the KL of z.
    beta_y
        Weight of the KL of y.
    free_bits
        Free nats on the KL of y (no gradient while its batch mean is below this).
    learn_cluster_weights
        Learn the mixture weights π (otherwise uniform).
    n_mc_samples
        Draws of z per observation in the reconstruction term.
    classification_weight
        Weight of the cross-entropy on labelled cells (semi-supervised training, see
        ``labels_key`` in :meth:`setup_anndata`).

    Examples
    --------
    >>> GMVAE.setup_anndata(adata, layer="counts")
    >>> model = GMVAE(adata, n_clusters=10)
    >>> model.train()
    >>> model.write_results(adata)  # X_gmvae, gmvae_cluster, gmvae_cluster_probs
    """

    _module_cls = GMVAEModule
    _plan_defaults: ClassVar[dict] = {"warmup_start": 0.0, "warmup_end": 0.4}

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        n_clusters: int = 10,
        components_per_cluster: int = 4,
        n_latent: int = 10,
        n_hidden: int | None = None,
        n_layers: int | None = None,
        dropout_rate: float = 0.1,
        likelihood: str = "nb",
        beta: float = 1.0,
        beta_y: float = 1.0,
        free_bits: float = 0.0,
        learn_cluster_weights: bool = False,
        n_mc_samples: int = 1,
        classification_weight: float = 100.0,
    ):
        self._build(locals())
