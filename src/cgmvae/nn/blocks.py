"""Encoder and decoder networks shared by every model of the package."""

from __future__ import annotations

import torch
from scvi.nn import FCLayers
from torch import nn
from torch.distributions import Distribution

from cgmvae.nn.likelihood import LikelihoodHead


def make_hidden_layers(
    n_in: int,
    n_hidden: int,
    n_layers: int,
    n_conditions: int,
    dropout_rate: float,
    linear: bool,
) -> FCLayers:
    """Build ``n_layers`` fully connected layers that take the condition as a one-hot input.

    With ``linear=True`` there is no activation, batch norm or dropout, so the block is an
    affine map (used by the linear autoencoder).
    """
    return FCLayers(
        n_in=n_in,
        n_out=n_hidden,
        n_cat_list=[n_conditions],
        n_layers=n_layers,
        n_hidden=n_hidden,
        dropout_rate=0.0 if linear else dropout_rate,
        use_batch_norm=not linear,
        use_activation=not linear,
        inject_covariates=True,
    )


class Encoder(nn.Module):
    """q(z | x, c): hidden layers, then a mean and (for variational models) a variance head.

    Parameters
    ----------
    n_input
        Number of observed features.
    n_latent
        Dimension of z.
    n_hidden, n_layers, n_conditions, dropout_rate, linear
        See :func:`make_hidden_layers`.
    variational
        Whether to output a diagonal variance (VAEs) or only a point (autoencoders).
    """

    def __init__(
        self,
        n_input: int,
        n_latent: int,
        n_hidden: int,
        n_layers: int,
        n_conditions: int,
        dropout_rate: float,
        linear: bool = False,
        variational: bool = True,
    ):
        super().__init__()
        self.hidden = make_hidden_layers(
            n_input, n_hidden, n_layers, n_conditions, dropout_rate, linear
        )
        self.mean = nn.Linear(n_hidden, n_latent)
        self.log_var = nn.Linear(n_hidden, n_latent) if variational else None

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the posterior mean and variance (``None`` for autoencoders)."""
        hidden = self.hidden(x, condition)
        mean = self.mean(hidden)
        if self.log_var is None:
            return mean, None
        return mean, self.log_var(hidden).clamp(-15.0, 15.0).exp() + 1e-4


class Decoder(nn.Module):
    """p(x | z, c): hidden layers followed by a :class:`~cgmvae.nn.LikelihoodHead`."""

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        n_hidden: int,
        n_layers: int,
        n_conditions: int,
        dropout_rate: float,
        likelihood: str,
        linear: bool = False,
        learn_scale: bool = True,
    ):
        super().__init__()
        self.hidden = make_hidden_layers(
            n_latent, n_hidden, n_layers, n_conditions, dropout_rate, linear
        )
        self.head = LikelihoodHead(n_hidden, n_output, likelihood, learn_scale=learn_scale)

    def forward(
        self, z: torch.Tensor, condition: torch.Tensor, library: torch.Tensor | None
    ) -> Distribution:
        """Return p(x | z, c) for every row of ``z`` (leading sample dimensions allowed)."""
        return self.head(self.hidden(z, condition), library)
