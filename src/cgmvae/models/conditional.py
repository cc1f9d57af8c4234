"""Counterfactual prediction for models that see the condition."""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData


class ConditionalMixin:
    """Adds :meth:`predict_counterfactual` to a model registered with a ``condition_key``."""

    _conditional = True

    @torch.inference_mode()
    def predict_counterfactual(
        self,
        adata: AnnData | None = None,
        target_condition: str | None = None,
        indices: np.ndarray | None = None,
        library_size: float | None = None,
        batch_size: int | None = None,
    ) -> AnnData:
        """Predict each cell's expected expression had it been measured under ``target_condition``.

        Each cell is encoded with its own condition, z = E[q(z | x, c)], and decoded with the
        target: x̂ = E[p(x | z, c′)].

        Parameters
        ----------
        adata
            Cells to transfer; ``None`` uses the training AnnData.
        target_condition
            One of :attr:`conditions`.
        indices
            Rows of ``adata`` to use; ``None`` uses all.
        library_size
            Count likelihoods: ``None`` keeps each cell's observed library size; a number
            gives normalised expression summing to it per cell (e.g. ``1e4``).
        batch_size
            Minibatch size for inference.

        Returns
        -------
        anndata.AnnData
            Same cells (``obs`` copied) and genes; ``.X`` holds the predicted means and
            ``.obs["counterfactual_condition"]`` the target.
        """
        if target_condition is None:
            raise ValueError(f"Pass target_condition, one of {', '.join(self.conditions)}.")
        code = self.condition_code(target_condition)
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        self.module.eval()
        means = []
        for tensors in loader:
            inference = self.module.inference(**self.module._get_inference_input(tensors))
            generative_input = self.module._get_generative_input(
                tensors, inference, target_condition=code, use_mean=True
            )
            if library_size is not None:
                generative_input["library"] = torch.full_like(
                    generative_input["library"], float(library_size)
                )
            means.append(self.module.generative(**generative_input)["px"].mean.cpu())
        rows = np.arange(adata.n_obs) if indices is None else np.asarray(indices)
        result = AnnData(
            X=torch.cat(means).numpy().astype(np.float32),
            obs=adata.obs.iloc[rows].copy(),
            var=adata.var.copy(),
        )
        result.obs["counterfactual_condition"] = str(target_condition)
        return result
