"""The conditional Gaussian-mixture VAE."""

from __future__ import annotations

from cgmvae.models.conditional import ConditionalMixin
from cgmvae.models.gmvae import GMVAE


class CGMVAE(ConditionalMixin, GMVAE):
    """Conditional Gaussian-mixture VAE.

    y ~ Cat(π), z | y ~ N(μ_y, diag σ_y²), x ~ p(x | z, c) with the condition c given to
    encoder and decoder, so that the clusters need not encode it, and the condition can be
    swapped at decoding time (:meth:`predict_counterfactual`). By default the condition
    changes the decoder's outputs by a response shared by all cells plus one per cluster,
    shrunk toward the shared one (``condition_effect="additive"``, see
    :class:`~cgmvae.models.conditional.ConditionalMixin`), so that a cluster never seen
    under a condition gets the shared response. Parameters as :class:`GMVAE` plus
    ``condition_effect`` and ``specific_effect_scale``; training and cluster methods as
    :class:`GMVAE`; register the condition with ``setup_anndata(condition_key=...)``.

    Examples
    --------
    >>> CGMVAE.setup_anndata(adata, layer="counts", condition_key="stim")
    >>> model = CGMVAE(adata, n_clusters=8)
    >>> model.train()
    >>> model.write_results(adata)  # X_cgmvae, cgmvae_cluster, cgmvae_cluster_probs
    >>> stimulated = model.predict_counterfactual(target_condition="stim")
    """
