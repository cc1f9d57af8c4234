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
    check_condition_invariance,
)
from cgmvae.nn import specific_support
from cgmvae.nn.invariance import CLUSTER_SHARE_WEIGHT, condition_groups
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
        change. ``"injected"`` (the default for ``"gaussian"`` and ``"bernoulli"``): the
        condition is an input of every encoder and decoder layer (as scVI treats a batch),
        free to interact with z; nothing is assumed about the form of the change, and the
        learned penalty (``condition_invariance``) keeps it out of z. ``"affine"``: each
        condition maps the observations of a base condition by ``a_c x + b_c`` (a contrast
        and an offset per feature, estimated from the data before training, see
        :class:`~cgmvae.nn.ConditionAdapter`); the encoder sees the inverse-mapped x and not
        the condition, so z cannot encode a change of that form (the best choice where the
        change is known to be of that form). ``"switched"``: the encoder's first and the
        decoder's last layer have a weight block per condition (started equal), so each
        condition can map its observations by its own linear map, and the layers between
        see no condition.
    specific_effect_scale
        Scale of the Laplace prior on the cluster-specific changes (smaller: more
        shrinkage toward the shared change).
    condition_invariance
        ``"mmd"`` (default), ``"adversarial"`` or ``None``: a learned penalty on the latent
        means that makes the conditions hard to tell apart from them, a kernel two-sample
        statistic (maximum mean discrepancy) between each condition's codes and the others'
        in every minibatch, or a condition classifier trained through a reversed gradient
        (:mod:`cgmvae.nn.invariance`). Both assume that the conditions hold the same mix of
        contents (a randomised experiment); neither assumes a form of the change. Where the
        conditions hold different contents (a cell type found in one condition only), the
        penalty pulls them together; set ``None`` there.
    invariance_weight
        Weight of that penalty, per observation (as the ELBO's terms).
    encode_condition
        ``True``: the encoder sees the condition, as an input of every layer with
        ``"injected"`` and ``"additive"``. ``False``: it encodes x alone (scVI's
        ``encode_covariates=False``), so a change can reach z only through x, and the
        penalty pairs the conditions' contents by how alike they look. ``None`` (default):
        ``True`` for count likelihoods and with ``"switched"`` (which cannot be combined with
        ``False``), ``False`` for the others. On MNIST (half the images changed, 30 epochs,
        5 seeds) ``False`` reads a higher digit accuracy on a contrast, a pattern and a blur
        with a smaller spread over seeds, and a lower one on a strong blur and an intensity
        curve; see the conditions page of the docs. ``"affine"`` encodes without the
        condition either way.
    """

    _conditional = True

    @classmethod
    def _resolve_module_kwargs(cls, module_kwargs: dict) -> dict:
        """Check the condition arguments; ``condition_effect=None`` follows the likelihood."""
        resolved = super()._resolve_module_kwargs(module_kwargs)
        counts = get_likelihood(resolved["likelihood"]).counts
        if resolved["condition_effect"] is None:
            resolved["condition_effect"] = "additive" if counts else "injected"
        check_condition_effect(resolved["condition_effect"])
        if resolved["encode_condition"] is None:
            switched = resolved["condition_effect"] == "switched"
            resolved["encode_condition"] = counts or switched
        scale = resolved["specific_effect_scale"]
        if not scale > 0:
            raise ValueError(f"specific_effect_scale must be positive, got {scale}.")
        check_condition_invariance(resolved["condition_invariance"])
        weight = resolved["invariance_weight"]
        if not weight >= 0:
            raise ValueError(f"invariance_weight must be zero or positive, got {weight}.")
        if "cluster_share_weight" in resolved:
            share = resolved["cluster_share_weight"]
            if share is None:
                resolved["cluster_share_weight"] = CLUSTER_SHARE_WEIGHT if counts else 0.0
            elif not share >= 0:
                raise ValueError(f"cluster_share_weight must be zero or positive, got {share}.")
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
        weight_by_support: bool = True,
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

        With cluster-specific changes (the CGMVAE's additive effect), each cluster's change
        between c and c′ is weighted by its support: the part of the cluster's content that
        training observed under both (:func:`~cgmvae.nn.specific_support`,
        from the training cells' cluster shares, one pass over them). A cluster that holds
        fewer of c′'s cells than of c's was fitted under c′ on other content (a cell type
        absent from c′ sharing a cluster with one present); the unsupported part falls back
        to the shared change.

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
        weight_by_support
            Weight the cluster-specific changes by their support (see above); ``False``
            applies each cluster's change in full.

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

        support = self._specific_support(code) if weight_by_support else None

        def decode_under_target(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
            decoder_input = self._counterfactual_input(
                tensors, n_samples, support, use_mean=n_samples == 1
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

    @torch.inference_mode()
    def counterfactual_differential_expression(
        self,
        target_condition: str,
        groupby: str | None = None,
        adata: AnnData | None = None,
        n_samples: int = 20,
        delta: float = 0.25,
        batch_size: int | None = None,
        weight_by_support: bool = True,
    ) -> pd.DataFrame:
        """Which genes each group's cells would change, had they been under ``target_condition``.

        The question a counterfactual answers, as a differential expression table: for every
        cell not already under the target, z is drawn from q(z | x, c) ``n_samples`` times and
        each draw decoded under the cell's own condition c and under the target c′, so that
        the two normalised expressions ρ differ only by the condition. Per gene and group,
        over its cells and draws, the log2 fold change ``log2 ρ(z, c′) − log2 ρ(z, c)`` gives,
        as scvi-tools' ``mode="change"`` does for two groups of cells: ``proba_de`` (the share
        with ``|LFC| >= delta``), ``bayes_factor`` (its log-odds), ``lfc_mean`` and ``lfc_std``
        (over cells and draws), and the mean expression ``scale_own`` / ``scale_target``.
        Normalised expression sums to 1 per cell, so a strong response of some genes moves
        every other gene's LFC by about the same amount; ``lfc_vs_median`` (``lfc_mean`` minus
        its median over the group's genes) removes that shift and ranks the responding genes
        first. Count likelihoods only.

        Parameters
        ----------
        target_condition
            One of :attr:`conditions`.
        groupby
            ``.obs`` column of the groups (e.g. cell types); ``None``: the model's clusters
            for mixture models, all cells as one group otherwise.
        adata
            Cells to use; ``None`` uses the training AnnData.
        n_samples
            Posterior draws of z per cell.
        delta
            Smallest |log2 fold change| that counts as a change.
        batch_size
            Minibatch size for inference.
        weight_by_support
            Weight the cluster-specific changes by their support, as
            :meth:`predict_counterfactual` does.

        Returns
        -------
        pandas.DataFrame
            One row per (group, gene), genes as the index; columns ``proba_de``,
            ``proba_not_de``, ``bayes_factor``, ``lfc_mean``, ``lfc_std``, ``lfc_vs_median``,
            ``scale_own``,
            ``scale_target``, ``n_cells``, ``group`` and ``comparison``, each group's genes by
            decreasing ``proba_de``.
        """
        self._require_counts("counterfactual_differential_expression")
        code = self._target_condition_code(target_condition)
        if n_samples < 1 or not delta >= 0:
            raise ValueError(f"Need n_samples >= 1 and delta >= 0, got {n_samples}, {delta}.")
        source = self._validate_anndata(adata)
        groups = self._counterfactual_groups(source, groupby)
        own = np.asarray(source.obs[self.registry_["setup_args"]["condition_key"]], dtype=str)
        rows = np.flatnonzero(own != str(target_condition))
        if not len(rows):
            raise ValueError(f"Every cell is already under {target_condition!r}; nothing changes.")
        names, codes = np.unique(groups[rows], return_inverse=True)
        totals = _ChangeTotals(len(names), source.n_vars, delta)
        support = self._specific_support(code) if weight_by_support else None
        offset = 0
        for tensors in self._make_data_loader(source, indices=rows, batch_size=batch_size):
            size = len(tensors[REGISTRY_KEYS.X_KEY])
            scales = self._paired_scales(tensors, code, n_samples, support)
            totals.add(*scales, codes[offset : offset + size])
            offset += size
        return totals.table(names, self.get_var_names(), str(target_condition))

    def _counterfactual_groups(self, source: AnnData, groupby: str | None) -> np.ndarray:
        if groupby is not None:
            if groupby not in source.obs:
                raise KeyError(f"groupby={groupby!r} is not a column of adata.obs.")
            return np.asarray(source.obs[groupby], dtype=str)
        if hasattr(self, "predict"):
            return np.asarray(self.predict(source), dtype=str)
        return np.full(source.n_obs, "all")

    def _paired_scales(
        self,
        tensors: dict[str, torch.Tensor],
        code: int,
        n_samples: int,
        support: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised expression of the same z draws under the own and the target condition."""
        self.module.eval()
        decoder_input = self._counterfactual_input(tensors, n_samples, support)
        own = self.module.generative(**decoder_input)[MODULE_KEYS.PX_KEY].scale
        target = self.module.generative(**decoder_input, transform_condition=code)
        scales = own, target[MODULE_KEYS.PX_KEY].scale
        if n_samples == 1:  # one draw: no sample dimension
            scales = tuple(scale.unsqueeze(0) for scale in scales)
        return tuple(scale.cpu() for scale in scales)

    def _counterfactual_input(
        self,
        tensors: dict[str, torch.Tensor],
        n_samples: int,
        support: torch.Tensor | None,
        use_mean: bool = False,
    ) -> dict[str, torch.Tensor | None]:
        """Return a minibatch's decoder inputs, the specific changes weighted by ``support``.

        ``support`` is :meth:`_specific_support`'s table for the target, ``(n_conditions,
        n_clusters)``; scaling q(y | x, c) scales the specific changes under both conditions,
        which enter the decoder linearly in it.
        """
        inference = self.module.inference(
            **self.module._get_inference_input(tensors), n_samples=n_samples
        )
        decoder_input = self.module._get_generative_input(tensors, inference, use_mean=use_mean)
        probs = decoder_input[MODULE_KEYS.CLUSTER_PROBS_KEY]
        if support is not None and probs is not None:
            source = tensors[REGISTRY_KEYS.CONDITION_KEY].long().reshape(-1).to(probs.device)
            decoder_input[MODULE_KEYS.CLUSTER_PROBS_KEY] = probs * support.to(probs)[source]
        return decoder_input

    def _specific_support(self, code: int) -> torch.Tensor | None:
        """Return the support of the specific changes from every condition to ``code``.

        ``(n_conditions, n_clusters)`` from the training cells' cluster shares per condition
        (:func:`~cgmvae.nn.specific_support`); ``None`` without
        cluster-specific changes.
        """
        effect = getattr(self.module, "condition_effect", None)
        if effect is None or effect.specific is None:
            return None

        def probs_and_condition(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
            probs = self._inference(tensors)[MODULE_KEYS.CLUSTER_PROBS_KEY]
            condition = tensors[REGISTRY_KEYS.CONDITION_KEY].to(probs).reshape(-1, 1)
            return torch.cat([probs, condition], dim=-1)

        collected = torch.as_tensor(self._collect(probs_and_condition), dtype=torch.float64)
        members, inside, _, _ = condition_groups(
            collected[:, -1], len(self.conditions), collected.dtype
        )
        shares = members.T @ collected[:, :-1] / inside.clamp_min(1)[:, None]
        return specific_support(shares)[:, code].float()

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


class _ChangeTotals:
    """Per-group running sums of the paired log2 fold changes (one pass, no draws kept)."""

    def __init__(self, n_groups: int, n_genes: int, delta: float):
        self.delta = delta
        self.draws = torch.zeros(n_groups, 1, dtype=torch.float64)
        self.cells = torch.zeros(n_groups, dtype=torch.long)
        shape = (n_groups, n_genes)
        self.lfc, self.lfc_squared, self.changed, self.own, self.target = (
            torch.zeros(shape, dtype=torch.float64) for _ in range(5)
        )

    def add(self, own: torch.Tensor, target: torch.Tensor, groups: np.ndarray) -> None:
        """Add a minibatch: scales ``(n_samples, n_cells, n_genes)`` and each cell's group."""
        lfc = (torch.log2(target + 1e-8) - torch.log2(own + 1e-8)).double()
        index = torch.as_tensor(groups, dtype=torch.long)
        n_samples = lfc.shape[0]
        self.lfc.index_add_(0, index, lfc.sum(0))
        self.lfc_squared.index_add_(0, index, (lfc**2).sum(0))
        self.changed.index_add_(0, index, (lfc.abs() >= self.delta).double().sum(0))
        self.own.index_add_(0, index, own.double().mean(0))
        self.target.index_add_(0, index, target.double().mean(0))
        ones = torch.ones(len(index), dtype=torch.long)
        self.cells.index_add_(0, index, ones)
        self.draws.index_add_(0, index, torch.full((len(index), 1), float(n_samples)).double())

    def table(self, names: np.ndarray, genes, target: str) -> pd.DataFrame:
        """One row per (group, gene), each group's genes by decreasing ``proba_de``."""
        mean = self.lfc / self.draws
        std = (self.lfc_squared / self.draws - mean**2).clamp_min(0).sqrt()
        proba = (self.changed / self.draws).clamp(1e-6, 1 - 1e-6)
        cells = self.cells.double().unsqueeze(1)
        frames = []
        for row, name in enumerate(names):
            frame = pd.DataFrame(
                {
                    "proba_de": proba[row].numpy(),
                    "proba_not_de": 1 - proba[row].numpy(),
                    "bayes_factor": torch.logit(proba[row]).numpy(),
                    "lfc_mean": mean[row].numpy(),
                    "lfc_std": std[row].numpy(),
                    "lfc_vs_median": (mean[row] - mean[row].median()).numpy(),
                    "scale_own": (self.own[row] / cells[row]).numpy(),
                    "scale_target": (self.target[row] / cells[row]).numpy(),
                    "n_cells": int(self.cells[row]),
                    "group": name,
                    "comparison": f"own condition to {target}",
                },
                index=pd.Index(genes, name="gene"),
            )
            frames.append(frame.sort_values("proba_de", ascending=False))
        return pd.concat(frames)
