"""Deterministic autoencoder (linear ≈ PCA, denoising)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from anndata import AnnData

from cgmvae.constants import MODULE_KEYS
from cgmvae.models.base import BaseAutoencoderModel
from cgmvae.modules.base import AutoencoderModule


class AE(BaseAutoencoderModel):
    """Autoencoder x̂ = D(E(x)), trained on the reconstruction error.

    With ``linear=True`` encoder and decoder are affine maps; on centred data the latent then
    spans the top-``n_latent`` principal subspace (Plaut 2018). With ``noise_sd > 0`` it is a
    denoising autoencoder: the encoder sees x + ε, ε ~ N(0, noise_sd²), the loss targets x.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    registry
        A saved data registry, used by :meth:`load` when no AnnData is given.
    n_latent
        Dimension of the code.
    n_hidden
        Width of the hidden layers; ``None``: 512 for ``"bernoulli"`` (images), else 128.
    n_layers
        Number of hidden layers in encoder and decoder; ``None``: 2 for ``"bernoulli"``,
        else 1.
    dropout_rate
        Dropout in the hidden layers (ignored when ``linear``).
    likelihood
        ``"gaussian"`` (default: squared error), ``"bernoulli"``, ``"poisson"``, ``"nb"``,
        ``"zinb"``, or a name
        registered with :func:`~cgmvae.nn.register_likelihood`.
    linear
        Remove every non-linearity.
    noise_sd
        Standard deviation of the input noise of a denoising autoencoder.

    Examples
    --------
    >>> AE.setup_anndata(adata)
    >>> model = AE(adata, n_latent=10, linear=True)
    >>> model.train()
    >>> model.write_results(adata)  # .obsm["X_ae"]
    """

    _module_cls = AutoencoderModule
    _plan_defaults: ClassVar[dict] = {}

    def __init__(
        self,
        adata: AnnData | None = None,
        registry: dict | None = None,
        n_latent: int = 10,
        n_hidden: int | None = None,
        n_layers: int | None = None,
        dropout_rate: float = 0.1,
        likelihood: str = "gaussian",
        linear: bool = False,
        noise_sd: float = 0.0,
    ):
        self._build(locals())

    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Return the code E(x) of each observation.

        Parameters
        ----------
        adata
            Data registered like the training data; ``None`` uses the training AnnData.
        indices
            Rows to use; ``None`` uses all.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_obs, n_latent)``, float32.
        """
        return self._collect(
            lambda tensors: self._inference(tensors)[MODULE_KEYS.QZM_KEY],
            adata,
            indices,
            batch_size,
        )
