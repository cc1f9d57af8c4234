"""The mixture models as LightningModules, for a plain DataLoader of tensors.

For an ML user with a :class:`torch.utils.data.DataLoader` of ``x``, ``(x, condition)`` or
``(x, condition, label)`` tensors (torchvision's MNIST, any image set) instead of an
AnnData::

    trainer = lightning.Trainer(max_epochs=100, precision="bf16-mixed")
    model = cgmvae.lightning.GMVAE(n_input=784, n_clusters=10, likelihood="bernoulli")
    trainer.fit(model, loader)
    clusters = model.cluster_probabilities(loader).argmax(1)

The module, the training plan (warm-up, logging, divergence checks) and the placement
callbacks are the AnnData models' own, with the same defaults; only the data path differs
(:func:`~cgmvae.train.batches.registry_batch`). Labels in the loader are never used for
training.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import ClassVar

import numpy as np
import torch

from cgmvae import models
from cgmvae.constants import MODULE_KEYS
from cgmvae.models.cluster import PLACEMENT_ARGUMENTS
from cgmvae.train.batches import registry_batch
from cgmvae.train.placement import PlaceConditionEffect
from cgmvae.train.placement.effect import MIN_EFFECT_GROUPS
from cgmvae.train.placement.mixture import mixture_callbacks
from cgmvae.train.plan import AutoencoderTrainingPlan


def model_arguments(model_cls: type, given: dict) -> dict:
    """Return ``model_cls``'s own defaults updated with ``given``; unknown names raise."""
    parameters = inspect.signature(model_cls).parameters
    names = [name for name in parameters if name not in ("adata", "registry")]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(
            f"{model_cls.__name__} has no argument {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(names)}, and {', '.join(PLACEMENT_ARGUMENTS)} as its train() does."
        )
    return defaults_of(model_cls, names, given)


def placement_arguments(model_cls: type, given: dict) -> dict:
    """Return the defaults of ``model_cls.train``'s placement arguments updated with ``given``."""
    return defaults_of(model_cls.train, PLACEMENT_ARGUMENTS, given)


def defaults_of(function: Callable, names: Iterable[str], given: dict) -> dict:
    """Return ``function``'s defaults of the arguments ``names``, updated with ``given``."""
    parameters = inspect.signature(function).parameters
    return {name: given.get(name, parameters[name].default) for name in names}


class LightningMixtureModel(AutoencoderTrainingPlan):
    """A mixture model of :mod:`cgmvae.models` as a LightningModule; see the module docs."""

    #: The AnnData model whose module, defaults and plan settings this one uses.
    model_cls: ClassVar[type]

    def __init__(
        self,
        n_input: int,
        *,
        n_conditions: int = 1,
        plan_kwargs: dict | None = None,
        **kwargs,
    ):
        placement = {name: kwargs.pop(name) for name in PLACEMENT_ARGUMENTS if name in kwargs}
        resolved = self.model_cls._resolve_module_kwargs(model_arguments(self.model_cls, kwargs))
        module = self.model_cls._module_cls(n_input=n_input, n_conditions=n_conditions, **resolved)
        super().__init__(module, **{**self.model_cls._plan_defaults, **(plan_kwargs or {})})
        self._placement_callbacks = list(
            mixture_callbacks(**placement_arguments(self.model_cls, placement))
        )
        if n_conditions > 1:
            start = PlaceConditionEffect(n_groups=max(MIN_EFFECT_GROUPS, module.n_clusters))
            self._placement_callbacks.insert(0, start)

    def configure_callbacks(self) -> list:
        """Return the placement callbacks the AnnData model's ``train`` adds."""
        return list(self._placement_callbacks)

    @torch.inference_mode()
    def cluster_probabilities(self, loader) -> np.ndarray:
        """q(y | x, c) of every observation ``loader`` yields, in its order."""
        return self._collect(loader, MODULE_KEYS.CLUSTER_PROBS_KEY)

    @torch.inference_mode()
    def latent_representation(self, loader) -> np.ndarray:
        """Posterior means of z of every observation ``loader`` yields, in its order."""
        return self._collect(loader, MODULE_KEYS.QZM_KEY)

    def _collect(self, loader, key: str) -> np.ndarray:
        was_training = self.module.training
        self.module.eval()
        outputs = []
        for batch in map(registry_batch, loader):
            inference = self.module.inference(**self.module._get_inference_input(batch))
            outputs.append(inference[key].cpu())
        self.module.train(was_training)
        return torch.cat(outputs).numpy()


class GMVAE(LightningMixtureModel):
    """:class:`cgmvae.GMVAE` as a LightningModule.

    Parameters
    ----------
    n_input
        Features per observation (784 for 28 × 28 images; images are flattened).
    n_conditions
        Condition codes in the loader (1: none given).
    plan_kwargs
        As for :meth:`cgmvae.GMVAE.train` (``lr``, ``warmup_end``, ...).
    **kwargs
        Any argument of :class:`cgmvae.GMVAE` (``n_clusters``, ``likelihood``, ...) and the
        placement arguments of :meth:`cgmvae.GMVAE.train` (``cluster_init``,
        ``cluster_placement``, ``placement_max_cells``, ``cluster_refine``, ``lr_scale``,
        ``lr_scale_at``), with their defaults there.
    """

    model_cls = models.GMVAE


class CGMVAE(LightningMixtureModel):
    """:class:`cgmvae.CGMVAE` as a LightningModule.

    Arguments as for :class:`GMVAE` here; the model's own are :class:`cgmvae.CGMVAE`'s
    (``condition_effect``, ...). The loader yields ``(x, condition)`` with integer codes.
    """

    model_cls = models.CGMVAE
