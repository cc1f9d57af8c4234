"""Counterfactual prediction for models that see the condition."""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData

from cgmvae.constants import MODULE_KEYS

COUNTERFACTUAL_SD_LAYER = "counterfactual_sd"


class ConditionalMixin:
    """Adds :meth:`predict_counterfactual` to a model registered with a ``condition_key``."""

    _conditional = True

    @torch.inference_mode()
    def predict_counterfactual(
        self,
        target_condition: str | None = None,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        library_size: float | None = None,
        n_samples: int = 1,
        batch_size: int | None = None,
    ) -> AnnData:
        """Predict each cell's expected expression had it been measured under ``target_condition``.

        Each cell is encoded with its own condition, and decoded with the target:
        x̂ = E[p(x | z, c′, s)], its batch and covariates kept. With ``n_samples=1`` z is the
        posterior mean; with more, z is drawn from q(z | x, c) and the predictions averaged.

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
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")

        def decode_under_target(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
            _, generative = self.module.forward(
                tensors,
                get_generative_input_kwargs={"use_mean": n_samples == 1},
                inference_kwargs={"n_samples": n_samples},
                generative_kwargs={"transform_condition": code},
                compute_loss=False,
            )
            px = generative[MODULE_KEYS.PX_KEY]
            return px.mean if library_size is None else px.scale * float(library_size)

        predictions = self._collect(decode_under_target, adata, indices, batch_size)
        source = self.adata if adata is None else adata
        rows = np.arange(source.n_obs) if indices is None else np.asarray(indices)
        result = AnnData(
            X=predictions if n_samples == 1 else predictions.mean(0),
            obs=source.obs.iloc[rows].copy(),
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
