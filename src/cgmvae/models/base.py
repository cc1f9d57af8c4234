"""The base class every user-facing model derives from."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import (
    CategoricalObsField,
    LabelsWithUnlabeledObsField,
    LayerField,
    ObsmField,
)
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin

from cgmvae.constants import COUNT_LIKELIHOODS
from cgmvae.models.safeguards import SafeguardsMixin
from cgmvae.modules.base import AutoencoderModule
from cgmvae.modules.gmvae import LABEL_PROBS_KEY
from cgmvae.train.plan import AutoencoderTrainingPlan
from cgmvae.validation import (
    check_anndata,
    check_finite,
    check_label_probs,
    check_layer,
    check_model_params,
    check_obs_complete,
    check_obs_key,
    check_trainable,
    check_values_for_likelihood,
    data_location,
    make_actual,
)

logger = logging.getLogger(__name__)


def default_max_epochs(n_obs: int) -> int:
    """Epochs such that small data sets get 400 epochs and larger ones ~8·10⁶ cell visits."""
    return int(np.clip(round(8e6 / max(n_obs, 1)), 20, 400))


class BaseAutoencoderModel(SafeguardsMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """AnnData front end shared by AE, VAE, CVAE, GMVAE and CGMVAE.

    Subclasses set ``_module_cls``, whether they take a condition (``_conditional``) and
    their training-plan defaults; their ``__init__`` lists the model's hyper-parameters.
    """

    _module_cls: type[AutoencoderModule] = AutoencoderModule
    _training_plan_cls = AutoencoderTrainingPlan
    _conditional = False
    _supports_labels = False
    _plan_defaults: ClassVar[dict] = {"warmup_start": 0.0, "warmup_end": 0.5}

    def __init__(
        self, adata: AnnData | None = None, registry: dict | None = None, **module_kwargs
    ):
        check_model_params(**module_kwargs)
        super().__init__(adata, registry)
        if adata is not None:
            data = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
            location = data_location(self.registry_["setup_args"].get("layer"))
            check_values_for_likelihood(data, module_kwargs["likelihood"], location)
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            n_conditions=self.summary_stats.n_batch,
            **module_kwargs,
            **self._registry_module_kwargs(module_kwargs),
        )
        if adata is not None:
            libraries = np.asarray(data.sum(1)).ravel()
            self.module.typical_library.fill_(float(np.median(libraries)))
        settings = ", ".join(f"{key}={value!r}" for key, value in module_kwargs.items())
        self._model_summary_string = f"{type(self).__name__}: {settings}"

    @property
    def name(self) -> str:
        """Lower-case model name used in AnnData keys (``X_<name>``)."""
        return type(self).__name__.lower()

    def _registry_module_kwargs(self, module_kwargs: dict) -> dict:
        """Return module arguments read off the data registry (none for this class)."""
        return {}

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        condition_key: str | None = None,
        labels_key: str | None = None,
        unlabeled_category: str = "unknown",
        label_probs_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register ``adata`` for this model class.

        Parameters
        ----------
        adata
            Cells (or images) × features.
        layer
            Layer holding the data to model; ``None`` uses ``.X``. Count likelihoods need
            raw counts.
        condition_key
            Column of ``.obs`` with the observed condition (batch, treatment, patient).
            ``None`` means one condition for all cells. Only conditional models use it.
        labels_key
            Mixture models: ``.obs`` column of known cluster labels for semi-supervised
            training; label j becomes cluster j and names it.
        unlabeled_category
            Value of ``labels_key`` that marks cells without a label.
        label_probs_key
            Mixture models: ``.obsm`` key of known class probabilities (rows non-negative,
            summing to 1; all-zero rows mark unlabelled cells), instead of ``labels_key``.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        if condition_key is not None and not cls._conditional:
            raise ValueError(
                f"{cls.__name__} does not model conditions, so condition_key="
                f"{condition_key!r} would be ignored. Use the conditional model "
                f"(C{cls.__name__}) or drop condition_key."
            )
        if not cls._supports_labels and (labels_key or label_probs_key):
            raise ValueError(
                f"{cls.__name__} has no clusters to supervise; labels_key and label_probs_key "
                "are for GMVAE and CGMVAE."
            )
        check_anndata(adata)
        check_layer(adata, layer)
        check_obs_key(adata, condition_key, "condition_key")
        check_obs_key(adata, labels_key, "labels_key")
        check_obs_complete(adata, condition_key, "condition_key")
        check_obs_complete(adata, labels_key, "labels_key")
        check_label_probs(adata, label_probs_key)
        check_finite(adata.X if layer is None else adata.layers[layer], data_location(layer))
        make_actual(adata)
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, condition_key),
        ]
        if labels_key is not None:
            fields.append(
                LabelsWithUnlabeledObsField(
                    REGISTRY_KEYS.LABELS_KEY, labels_key, unlabeled_category
                )
            )
        if label_probs_key is not None:
            fields.append(ObsmField(LABEL_PROBS_KEY, label_probs_key))
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        train_size: float | None = None,
        early_stopping: bool = False,
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train with Lightning.

        Parameters
        ----------
        max_epochs
            Passes through the data; ``None`` derives it from the number of cells
            (:func:`default_max_epochs`).
        batch_size
            Minibatch size.
        accelerator, devices
            Lightning's hardware selection (``"auto"`` uses a GPU when there is one).
        train_size
            Fraction of cells used for training, the rest for validation (default 0.9).
        early_stopping
            Stop when the validation ELBO stops improving.
        plan_kwargs
            Passed to :class:`~cgmvae.train.AutoencoderTrainingPlan` (``lr``,
            ``warmup_end``, ``cluster_init``, ``max_kl_weight``, ...).
        **trainer_kwargs
            Passed to the Lightning trainer (``precision``, ``gradient_clip_val``,
            ``callbacks``, ``strategy``, ``enable_progress_bar``, ...).
        """
        splitter_kwargs = trainer_kwargs.get("datasplitter_kwargs") or {}
        check_trainable(
            self.adata.n_obs, train_size, batch_size, splitter_kwargs.get("drop_last", False)
        )
        max_epochs = max_epochs or default_max_epochs(self.adata.n_obs)
        plan_kwargs = {**self._plan_defaults, **(plan_kwargs or {})}
        return super().train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            accelerator=accelerator,
            devices=devices,
            train_size=train_size,
            early_stopping=early_stopping,
            plan_kwargs=plan_kwargs,
            **trainer_kwargs,
        )

    @property
    def conditions(self) -> list[str]:
        """Condition categories seen in training, in the order of their codes."""
        registry = self.registry_["field_registries"][REGISTRY_KEYS.BATCH_KEY]
        return [str(c) for c in registry["state_registry"]["categorical_mapping"]]

    def condition_code(self, condition) -> int:
        """Return the integer code of ``condition``; raise ``ValueError`` if it is unknown."""
        known = self.conditions
        if str(condition) not in known:
            raise ValueError(
                f"Unknown condition {condition!r}. The model was trained on the conditions "
                f"{', '.join(map(repr, known))}."
            )
        return known.index(str(condition))

    def _cluster_code(self, cluster) -> int | None:
        """Map a cluster name or index to its component; models without clusters take none."""
        if cluster is not None:
            raise ValueError(f"{type(self).__name__} has no clusters; use GMVAE or CGMVAE.")
        return None

    @torch.inference_mode()
    def sample(
        self,
        n_samples: int,
        cluster: int | str | None = None,
        condition: str | None = None,
        library_size: float | None = None,
    ) -> AnnData:
        """Generate observations from the prior.

        Parameters
        ----------
        n_samples
            Number of observations.
        cluster
            Mixture models: draw every observation from this cluster (name or index);
            ``None`` draws clusters from π.
        condition
            Conditional models: decode under this condition (default: the first one).
        library_size
            Count likelihoods: total count of each generated cell (default: the median of
            the training data).

        Returns
        -------
        anndata.AnnData
            ``n_samples`` × features: sampled counts for count likelihoods, pixel
            probabilities in [0, 1] for ``"bernoulli"``, draws for ``"gaussian"``;
            ``.obs["condition"]`` (and ``.obs["cluster"]``) say what they were drawn from.
        """
        if condition is not None and not self._conditional:
            raise ValueError(f"{type(self).__name__} has no condition; use a conditional model.")
        condition = self.conditions[0] if condition is None else condition
        code = self.condition_code(condition)
        library = None
        if self.module.likelihood in COUNT_LIKELIHOODS:
            library = library_size or float(self.module.typical_library)
        self.module.eval()
        px, clusters = self.module.sample(n_samples, code, library, self._cluster_code(cluster))
        values = px.mean if self.module.likelihood == "bernoulli" else px.sample()
        result = AnnData(X=values.cpu().numpy().astype(np.float32))
        result.var_names = self.get_var_names()
        result.obs["condition"] = pd.Categorical([str(condition)] * n_samples)
        if clusters is not None:
            names = np.asarray(self.cluster_names)[clusters.cpu().numpy()]
            result.obs["cluster"] = pd.Categorical(names, categories=self.cluster_names)
        return result

    def save(
        self,
        dir_path: str,
        overwrite: bool = False,
        save_anndata: bool = True,
        **kwargs,
    ) -> None:
        """Save the model (weights, parameters, data registry) to ``dir_path``.

        Parameters
        ----------
        dir_path
            Folder to create.
        overwrite
            Replace an existing folder.
        save_anndata
            Also save the training AnnData, so that ``load(dir_path)`` needs no data.
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.save`.
        """
        super().save(dir_path, overwrite=overwrite, save_anndata=save_anndata, **kwargs)

    @torch.inference_mode()
    def _inference_output(
        self,
        key: str,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Run the encoder over ``adata`` and stack one of its outputs."""
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        self.module.eval()
        outputs = [
            self.module.inference(**self.module._get_inference_input(tensors))[key].cpu()
            for tensors in loader
        ]
        return torch.cat(outputs).numpy().astype(np.float32)

    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Posterior means of z (the code, for autoencoders).

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
        return self._inference_output("z_mean", adata, indices, batch_size)

    def write_results(self, adata: AnnData | None = None, latent_key: str | None = None) -> None:
        """Write the latent and the model's parameters into ``adata`` in place.

        Writes ``.obsm["X_<model>"]`` (posterior means) and ``.uns["<model>"]``; nothing
        else of ``adata`` is touched.

        Parameters
        ----------
        adata
            Where to write; ``None`` uses the training AnnData.
        latent_key
            Key in ``.obsm``; default ``"X_<model>"``.
        """
        target = self.adata if adata is None else adata
        target.obsm[latent_key or f"X_{self.name}"] = self.get_latent_representation(adata)
        target.uns[self.name] = self._params_for_uns()

    def _params_for_uns(self) -> dict:
        """Model and setup parameters, with values h5ad can store."""
        params = {**self.init_params_["non_kwargs"], **self.init_params_["kwargs"]}
        setup = self.registry_["setup_args"]
        return {
            "model": type(self).__name__,
            "params": {key: value for key, value in params.items() if value is not None},
            "setup": {key: value for key, value in setup.items() if value is not None},
            "training_epochs": len(self.history.get("elbo_train", [])) if self.is_trained else 0,
        }
