"""Encoder and decoder networks shared by every model of the package."""

from __future__ import annotations

import torch
from scvi.nn import FCLayers
from torch import nn
from torch.distributions import Distribution

from cgmvae.nn.likelihood import get_likelihood


def make_hidden_layers(
    n_in: int,
    n_hidden: int,
    n_layers: int,
    n_cat_list: list[int],
    dropout_rate: float,
    linear: bool,
) -> FCLayers:
    """Build ``n_layers`` fully connected layers that take categories as one-hot inputs.

    ``n_cat_list`` holds the number of categories of each categorical input (condition,
    batch, covariates); one with a single category adds nothing.

    With ``linear=True`` there is no activation, batch norm or dropout, so the block is an
    affine map (used by the linear autoencoder).
    """
    return FCLayers(
        n_in=n_in,
        n_out=n_hidden,
        n_cat_list=n_cat_list,
        n_layers=n_layers,
        n_hidden=n_hidden,
        dropout_rate=0.0 if linear else dropout_rate,
        use_batch_norm=not linear,
        use_activation=not linear,
        inject_covariates=True,
    )


def switch_by_condition(values: torch.Tensor, condition: torch.Tensor, n_conditions: int):
    """Return ``[v, v ⊗ onehot(c)]``: the input of a layer with a weight block per condition.

    A linear layer on the result computes ``(W + Δ_c) v``: a shared weight plus one block per
    condition. Leading sample dimensions of ``values`` are kept.
    """
    onehot = nn.functional.one_hot(condition.long().reshape(-1), n_conditions).to(values)
    onehot = onehot.expand(*values.shape[:-1], n_conditions)
    blocks = (onehot.unsqueeze(-1) * values.unsqueeze(-2)).flatten(-2)
    return torch.cat([values, blocks], dim=-1)


def zero_condition_blocks(layers: list[nn.Linear], n_shared: int) -> None:
    """Zero the per-condition weight blocks of ``layers``, which read :func:`switch_by_condition`.

    The first ``n_shared`` input columns are the shared weight; training then starts from the
    same map for every condition.
    """
    for layer in layers:
        with torch.no_grad():
            layer.weight[:, n_shared:] = 0.0


class Encoder(nn.Module):
    """q(z | x, c): hidden layers, then a mean and (for variational models) a variance head.

    Parameters
    ----------
    n_input
        Number of observed features.
    n_latent
        Dimension of z.
    n_hidden, n_layers, dropout_rate, linear
        See :func:`make_hidden_layers`.
    n_conditions
        Number of condition categories; the condition is the encoder's only covariate.
    variational
        Whether to output a diagonal variance (VAEs) or only a point (autoencoders).
    n_switched
        With two conditions or more, the first layer has a weight block per condition
        (:func:`switch_by_condition`), started equal; the condition is then not injected.
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
        n_switched: int = 1,
    ):
        super().__init__()
        self.n_switched = n_switched
        n_in = n_input * (1 + n_switched) if n_switched > 1 else n_input
        self.hidden = make_hidden_layers(
            n_in, n_hidden, n_layers, [n_conditions], dropout_rate, linear
        )
        if n_switched > 1:
            zero_condition_blocks([self.hidden.fc_layers[0][0]], n_input)
        self.mean = nn.Linear(n_hidden, n_latent)
        self.log_var = nn.Linear(n_hidden, n_latent) if variational else None

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the posterior mean and variance (``None`` for autoencoders)."""
        if self.n_switched > 1:
            x = switch_by_condition(x, condition, self.n_switched)
        hidden = self.hidden(x, condition)
        mean = self.mean(hidden)
        if self.log_var is None:
            return mean, None
        return mean, self.log_var(hidden).clamp(-15.0, 15.0).exp() + 1e-4


class Decoder(nn.Module):
    """p(x | z, c, s): hidden layers followed by a :class:`~cgmvae.nn.LikelihoodHead`.

    Parameters
    ----------
    n_latent
        Dimension of z.
    n_output
        Number of observed features.
    n_hidden, n_layers, dropout_rate, linear
        See :func:`make_hidden_layers`.
    n_cat_list
        Categories of each categorical input: the condition first, then batch and
        categorical covariates (scVI's decoder-side correction).
    likelihood
        Name of a registered observation model (:data:`~cgmvae.nn.likelihood.LIKELIHOODS`).
    learn_scale
        See :class:`~cgmvae.nn.LikelihoodHead`.
    n_continuous
        Number of continuous covariates, appended to z.
    n_switched
        With two conditions or more, the output layer has a weight block per condition
        (:func:`switch_by_condition`, started equal), selected by the first categorical input.
    """

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        n_hidden: int,
        n_layers: int,
        n_cat_list: list[int],
        dropout_rate: float,
        likelihood: str,
        linear: bool = False,
        learn_scale: bool = True,
        n_continuous: int = 0,
        n_switched: int = 1,
    ):
        super().__init__()
        self.n_switched = n_switched
        self.hidden = make_hidden_layers(
            n_latent + n_continuous, n_hidden, n_layers, n_cat_list, dropout_rate, linear
        )
        n_head = n_hidden * (1 + n_switched) if n_switched > 1 else n_hidden
        self.head = get_likelihood(likelihood)(n_head, n_output, learn_scale=learn_scale)
        if n_switched > 1:
            zero_condition_blocks(self.head.input_layers(), n_hidden)

    def forward(
        self,
        z: torch.Tensor,
        categorical: list[torch.Tensor],
        continuous: torch.Tensor | None,
        library: torch.Tensor | None,
        offset: torch.Tensor | None = None,
        affine: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Distribution:
        """Return p(x | z, c, s) for every row of ``z`` (leading sample dimensions allowed).

        ``categorical`` holds one ``(n_cells, 1)`` code tensor per entry of ``n_cat_list``;
        ``continuous`` is ``(n_cells, n_continuous)`` or ``None``; ``offset`` is added to the
        outputs before the link (see :class:`~cgmvae.nn.ConditionEffect`), ``affine`` maps the
        mean after it (see :class:`~cgmvae.nn.ConditionAdapter`).
        """
        if continuous is not None and continuous.shape[-1] > 0:
            z = torch.cat([z, continuous.expand(*z.shape[:-1], continuous.shape[-1])], dim=-1)
        hidden = self.hidden(z, *categorical)
        if self.n_switched > 1:
            hidden = switch_by_condition(hidden, categorical[0], self.n_switched)
        return self.head(hidden, library, offset, affine)
