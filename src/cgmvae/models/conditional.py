"""Counterfactual prediction for models that see the condition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from cgmvae.constants import (
    MODULE_KEYS,
    REGISTRY_KEYS,
    check_condition_effect,
)
from cgmvae.nn.likelihood import get_likelihood
from cgmvae.train import PlaceConditionEffect
from cgmvae.train.placement.effect import MIN_EFFECT_GROUPS

COUNTERFACTUAL_SD_LAYER = "counterfactual_sd"


def scvi_columns(obs: pd.DataFrame) -> list[str]:
    """Return the ``.obs`` columns scvi-tools writes when it registers data (``_scvi_*``)."""
    return [column for column in obs.columns if str(column).startswith("_scvi_")]


class ConditionalMixin:
    """The condition's place in the decoder, and :meth:`predict_counterfactual`.

    The arguments :class:`~cgmvae.CVAE` and :class:`~cgmvae.CGMVAE` add to their unconditional
    model's:

    Parameters
    ----------
    condition_effect
        ``"additive"`` (the default for count likelihoods): the decoder's hidden layers do
        not see the condition; it adds a change of each output (log-expression for counts)
        that is shared by all cells plus, for mixture models, a change specific to each
        cluster, weighted by q(y | x, c). The specific changes are shrunk toward zero, so a
        (cluster, condition) pair never observed in training falls back to the shared
        change. ``"affine"`` (the default for ``"gaussian"`` and ``"bernoulli"``): each
        condition maps the observations of a base condition by ``a_c x + b_c`` (a contrast
        and an offset per feature, estimated from the data before training, see
        :class:`~cgmvae.nn.ConditionAdapter`); the encoder sees the inverse-mapped x and not
        the condition, so z cannot encode a change of that form. ``"injected"``: the
        condition is an input of every decoder layer (as scVI treats a batch), free to
        interact with z, which fits observed pairs but transfers less to unseen ones.
    specific_effect_scale
        Scale of the Laplace prior on the cluster-specific changes (smaller: more
        shrinkage toward the shared change).
    """

    _conditional = True

    def _resolve_module_kwargs(self, module_kwargs: dict) -> dict:
        """Check the condition arguments; ``condition_effect=None`` follows the likelihood."""
        resolved = super()._resolve_module_kwargs(module_kwargs)
        if resolved["condition_effect"] is None:
            counts = get_likelihood(resolved["likelihood"]).counts
            resolved["condition_effect"] = "additive" if counts else "affine"
        check_condition_effect(resolved["condition_effect"])
        scale = resolved["specific_effect_scale"]
        if not scale > 0:
            raise ValueError(f"specific_effect_scale must be positive, got {scale}.")
        return resolved

    def _training_callbacks(self, max_epochs: int) -> list:
        """Start an additive or affine condition effect from the data before training.

        See :class:`~cgmvae.train.PlaceConditionEffect`, with ``n_groups`` the number of
        clusters, at least :data:`~cgmvae.train.placement.effect.MIN_EFFECT_GROUPS`.
        """
        n_clusters = getattr(self.module, "n_clusters", 0)
        start = PlaceConditionEffect(
            n_groups=max(MIN_EFFECT_GROUPS, n_clusters), condition_names=self.conditions
        )
        return [start, *super()._training_callbacks(max_epochs)]

    @torch.inference_mode()
    def predict_counterfactual(
        self,
        target_condition: str | None = None,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        library_size: float | None = None,
        n_samples: int = 1,
        batch_size: int | None = None,
        relative_to_observed: bool | None = None,
    ) -> AnnData:
        """Predict each cell's expected expression had it been measured under ``target_condition``.

        Each cell is encoded with its own condition c, z ~ q(z | x, c), and decoded under
        the target c′ and under c, its batch and covariates kept. For count likelihoods the
        prediction is by default the cell's observed counts times the model's fold change,
        x ⊙ ρ(z, c′) / ρ(z, c) with ρ the normalised expression: what the model cannot
        reconstruct of the cell (its own noise and detail) is kept, and only the change is
        predicted. With ``relative_to_observed=False`` (and for other likelihoods) it is the
        decoded mean E[p(x | z, c′, s)]. With ``n_samples=1`` z is the posterior mean; with
        more, z is drawn and the predictions averaged.

        Parameters
        ----------
        target_condition
            One of :attr:`conditions`.
        adata
            Cells to transfer; ``None`` uses the training AnnData.
        indices
            Rows of ``adata`` to use; ``None`` uses all.
        library_size
            Count likelihoods: ``None`` keeps each cell's observed library size; a number
            gives normalised expression summing to it per cell (e.g. ``1e4``).
        n_samples
            Posterior draws of z per cell.
        batch_size
            Minibatch size for inference.
        relative_to_observed
            Apply the predicted fold change to the observed counts (count likelihoods; the
            default there) rather than return the decoded mean.

        Returns
        -------
        anndata.AnnData
            Same cells (``obs`` copied) and genes; ``.X`` holds the predicted means,
            ``.obs["counterfactual_condition"]`` the target and, for ``n_samples > 1``,
            ``.layers["counterfactual_sd"]`` the standard deviation of the prediction
            over the posterior draws.
        """
        code = self._target_condition_code(target_condition)
        if library_size is not None:
            self._require_counts("predict_counterfactual(library_size=...)")
        if relative_to_observed:
            self._require_counts("predict_counterfactual(relative_to_observed=True)")
        if relative_to_observed is None:
            relative_to_observed = self.module.models_counts
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")

        def decode_under_target(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
            inference = self.module.inference(
                **self.module._get_inference_input(tensors), n_samples=n_samples
            )
            decoder_input = self.module._get_generative_input(
                tensors, inference, use_mean=n_samples == 1
            )
            px = self.module.generative(**decoder_input, transform_condition=code)
            px = px[MODULE_KEYS.PX_KEY]
            if not relative_to_observed:
                return px.mean if library_size is None else px.scale * float(library_size)
            own = self.module.generative(**decoder_input)[MODULE_KEYS.PX_KEY]
            observed = tensors[REGISTRY_KEYS.X_KEY].to(px.scale.device)
            predicted = observed * px.scale / own.scale
            if library_size is None:
                return predicted
            return predicted / predicted.sum(-1, keepdim=True).clamp_min(1e-12) * library_size

        predictions = self._collect(decode_under_target, adata, indices, batch_size)
        source = self.adata if adata is None else adata
        rows = np.arange(source.n_obs) if indices is None else np.asarray(indices)
        result = AnnData(
            X=predictions if n_samples == 1 else predictions.mean(0),
            obs=source.obs.iloc[rows].drop(columns=scvi_columns(source.obs)),
            var=source.var.loc[self.get_var_names()].copy(),  # in the training order
        )
        if n_samples > 1:
            result.layers[COUNTERFACTUAL_SD_LAYER] = predictions.std(0)
        result.obs["counterfactual_condition"] = str(target_condition)
        return result

    def _target_condition_code(self, target_condition) -> int:
        """Code of the target condition; errors that say what to pass."""
        known = ", ".join(map(repr, self.conditions))
        if isinstance(target_condition, AnnData):
            raise TypeError(
                "The first argument of predict_counterfactual is the target condition, not an "
                f"AnnData. Call predict_counterfactual(<condition>, adata=adata), with the "
                f"condition one of {known}."
            )
        if target_condition is None:
            raise ValueError(f"Pass target_condition, one of {known}.")
        return self.condition_code(target_condition)
