"""The base class every user-facing model derives from."""

from __future__ import annotations

import logging
import math
import signal
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import rich.pretty  # noqa: F401  scvi-tools 1.4.2's view_anndata_setup calls it, unimported
import torch
from anndata import AnnData
from scvi.data import AnnDataManager
from scvi.data.fields import (
    CategoricalJointObsField,
    CategoricalObsField,
    LabelsWithUnlabeledObsField,
    LayerField,
    NumericalJointObsField,
    ObsmField,
)
from scvi.dataloaders import DataSplitter
from scvi.model.base import BaseModelClass, RNASeqMixin, UnsupervisedTrainingMixin, VAEMixin

from cgmvae.constants import REGISTRY_KEYS
from cgmvae.models.query import QueryMixin
from cgmvae.models.safeguards import SafeguardsMixin, atomic_folder
from cgmvae.modules.base import AutoencoderModule
from cgmvae.nn.likelihood import get_likelihood
from cgmvae.train.blocks import BlockDataSplitter, block_loader
from cgmvae.train.checkpoints import LAST_CHECKPOINT, PeriodicCheckpoint
from cgmvae.train.plan import AutoencoderTrainingPlan, check_plan_kwargs
from cgmvae.train.quiet import quiet_lightning
from cgmvae.validation import (
    MatrixScan,
    check_anndata,
    check_covariates,
    check_finite,
    check_label_probs,
    check_layer,
    check_model_params,
    check_names,
    check_obs_complete,
    check_obs_key,
    check_summary_for_likelihood,
    check_trainable,
    data_location,
    report_label_counts,
    scan_matrix,
    warn_backed_layer,
    warn_empty_genes,
)

logger = logging.getLogger(__name__)


def default_max_epochs(n_obs: int) -> int:
    """Epochs such that small data sets get 400 epochs and larger ones ~8·10⁶ cell visits."""
    return int(np.clip(round(8e6 / max(n_obs, 1)), 20, 400))


class BaseAutoencoderModel(
    SafeguardsMixin, QueryMixin, RNASeqMixin, VAEMixin, UnsupervisedTrainingMixin, BaseModelClass
):
    """AnnData front end shared by AE, VAE, CVAE, GMVAE and CGMVAE.

    Subclasses set ``_module_cls``, whether they take a condition (``_conditional``) and
    their training-plan defaults; their ``__init__`` lists the model's hyper-parameters and
    calls :meth:`_build` with its ``locals()``. Three hooks let a mixin add to the
    model without overriding ``__init__`` or ``train``: :meth:`_resolve_module_kwargs`
    (defaults that depend on other arguments), :meth:`_registry_module_kwargs` (module
    arguments read off the data) and :meth:`_training_callbacks`.
    scvi-tools' ``VAEMixin`` gives :meth:`get_elbo`, :meth:`get_reconstruction_error`,
    :meth:`get_marginal_ll` and :meth:`get_latent_representation`; its ``RNASeqMixin``
    gives :meth:`get_normalized_expression` and :meth:`differential_expression` (count
    likelihoods only).
    """

    _module_cls: type[AutoencoderModule] = AutoencoderModule
    _training_plan_cls = AutoencoderTrainingPlan
    _data_splitter_cls = BlockDataSplitter
    _data_loader_cls = staticmethod(block_loader)
    _conditional = False
    _supports_labels = False
    _plan_defaults: ClassVar[dict] = {"warmup_start": 0.0, "warmup_end": 0.5}

    def __init__(
        self, adata: AnnData | None = None, registry: dict | None = None, **module_kwargs
    ):
        module_kwargs = self._resolve_module_kwargs(module_kwargs)
        super().__init__(adata, registry)
        if adata is not None:
            scan = self._scan_registered_data(module_kwargs["likelihood"])
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            **self._covariate_sizes(),
            **module_kwargs,
            **self._registry_module_kwargs(module_kwargs),
        )
        if adata is not None:
            self.module.typical_library.fill_(float(np.median(scan.cell_totals)))
        self._hyperparameters = dict(module_kwargs)
        settings = ", ".join(f"{key}={value!r}" for key, value in module_kwargs.items())
        self._model_summary_string = f"{type(self).__name__}: {settings}"

    @property
    def name(self) -> str:
        """Lower-case model name used in AnnData keys (``X_<name>``)."""
        return type(self).__name__.lower()

    def _build(self, arguments: dict) -> None:
        """Build the model from its ``__init__``'s arguments (its ``locals()``), record them.

        Every model's ``__init__`` lists its hyper-parameters in its signature and calls this
        first, so that each name is written once.
        """
        hyperparameters = {
            name: value
            for name, value in arguments.items()
            if name not in ("self", "adata", "registry")
        }
        BaseAutoencoderModel.__init__(
            self, arguments["adata"], arguments["registry"], **hyperparameters
        )
        self.init_params_ = self._get_init_params(arguments)

    def _scan_registered_data(self, likelihood: str) -> MatrixScan:
        """Read the registered matrix once; return its totals per cell and gene.

        Checks its values against ``likelihood`` and, for count likelihoods, warns about
        genes that are zero in every cell on the way (constant pixels are ordinary in images).
        """
        data = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        location = data_location(self.registry_["setup_args"].get("layer"))
        scan = scan_matrix(data, location)
        check_summary_for_likelihood(scan.values, likelihood, location)
        if get_likelihood(likelihood).counts:
            warn_empty_genes(scan.gene_totals, self.adata.var_names, location)
        return scan

    @classmethod
    def _resolve_module_kwargs(cls, module_kwargs: dict) -> dict:
        """Check the hyper-parameters; return them with argument-dependent defaults filled in.

        Here: ``n_hidden``/``n_layers`` ``None`` become the likelihood's ``network_size``.
        """
        check_model_params(**module_kwargs)
        width, depth = get_likelihood(module_kwargs["likelihood"]).network_size
        resolved = dict(module_kwargs)
        if resolved["n_hidden"] is None:
            resolved["n_hidden"] = width
        if resolved["n_layers"] is None:
            resolved["n_layers"] = depth
        return resolved

    def _registry_module_kwargs(self, module_kwargs: dict) -> dict:
        """Return module arguments read off the data registry (none for this class)."""
        return {}

    def _training_callbacks(self, max_epochs: int) -> list:
        """Lightning callbacks this model adds to every training run (none for this class)."""
        return []

    def _earliest_stop(self, max_epochs: int) -> int:
        """Return the first epoch at which early stopping may end training."""
        return 0

    def _covariate_sizes(self) -> dict:
        """Categories of condition, batch and each covariate, as the module takes them."""
        stats = self.summary_stats
        fields = self.registry_["field_registries"]
        categorical = fields.get(REGISTRY_KEYS.CAT_COVS_KEY, {}).get("state_registry", {})
        return {
            "n_conditions": stats[f"n_{REGISTRY_KEYS.CONDITION_KEY}"],
            "n_batch": stats[f"n_{REGISTRY_KEYS.BATCH_KEY}"],
            "n_cats_per_cov": list(categorical.get("n_cats_per_key", [])),
            "n_continuous_cov": stats.get(f"n_{REGISTRY_KEYS.CONT_COVS_KEY}", 0),
        }

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        condition_key: str | None = None,
        batch_key: str | None = None,
        categorical_covariate_keys: list[str] | None = None,
        continuous_covariate_keys: list[str] | None = None,
        labels_key: str | None = None,
        unlabeled_category: str = "unknown",
        label_probs_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register ``adata`` for this model class.

        Parameters
        ----------
        adata
            Cells (or images) × features; not a view (pass ``adata[mask].copy()``).
        layer
            Layer holding the data to model; ``None`` uses ``.X``. Count likelihoods need
            raw counts.
        condition_key
            Conditional models: column of ``.obs`` with the condition (e.g. stimulation),
            given to encoder and decoder. It is what :meth:`predict_counterfactual` swaps and
            what the clusters must not depend on. ``None``: one condition for all cells.
        batch_key
            Column of ``.obs`` with the batch (a nuisance, e.g. sequencing run or donor),
            corrected in the decoder as in scVI; :meth:`get_normalized_expression`'s
            ``transform_batch`` swaps it.
        categorical_covariate_keys
            Further categorical nuisance columns of ``.obs``, given to the decoder.
        continuous_covariate_keys
            Numeric nuisance columns of ``.obs`` (e.g. percent mitochondrial counts), given
            to the decoder.
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
        cls._check_setup_roles(condition_key, labels_key, label_probs_key)
        check_anndata(adata)
        check_names(adata)
        check_layer(adata, layer)
        warn_backed_layer(adata, layer)
        for key, argument in ((condition_key, "condition_key"), (batch_key, "batch_key")):
            check_obs_key(adata, key, argument)
            check_obs_complete(adata, key, argument)
        check_obs_key(adata, labels_key, "labels_key")
        check_obs_complete(adata, labels_key, "labels_key")
        roles = {"condition_key": condition_key, "batch_key": batch_key, "labels_key": labels_key}
        if condition_key is not None and condition_key == batch_key:
            raise ValueError(
                f"adata.obs[{condition_key!r}] is given as both condition_key and batch_key. "
                "The condition is what counterfactuals swap and clusters ignore; the batch is "
                "a nuisance. Choose one role for it."
            )
        check_covariates(adata, categorical_covariate_keys, continuous_covariate_keys, roles)
        check_label_probs(adata, label_probs_key)
        check_finite(adata.X if layer is None else adata.layers[layer], data_location(layer))
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(REGISTRY_KEYS.CONDITION_KEY, condition_key),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, categorical_covariate_keys),
            NumericalJointObsField(REGISTRY_KEYS.CONT_COVS_KEY, continuous_covariate_keys),
        ]
        if labels_key is not None:
            fields.append(
                LabelsWithUnlabeledObsField(
                    REGISTRY_KEYS.LABELS_KEY, labels_key, unlabeled_category
                )
            )
        if label_probs_key is not None:
            fields.append(ObsmField(REGISTRY_KEYS.LABEL_PROBS_KEY, label_probs_key))
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        with warnings.catch_warnings():
            # scvi-tools warns by category code about classes of fewer than 3 cells
            warnings.filterwarnings("ignore", "Category .*_scvi_labels", UserWarning)
            adata_manager.register_fields(adata, **kwargs)
        if labels_key is not None:
            report_label_counts(adata, labels_key, unlabeled_category)
        cls.register_manager(adata_manager)

    @classmethod
    def _check_setup_roles(
        cls, condition_key: str | None, labels_key: str | None, label_probs_key: str | None
    ) -> None:
        """Refuse setup arguments this model class would ignore."""
        if condition_key is not None and not cls._conditional:
            raise ValueError(
                f"{cls.__name__} does not model conditions, so condition_key="
                f"{condition_key!r} would be ignored. Use the conditional model "
                f"(C{cls.__name__}), pass the column as batch_key if it is a nuisance, or "
                "drop condition_key."
            )
        if not cls._supports_labels and (labels_key or label_probs_key):
            raise ValueError(
                f"{cls.__name__} has no clusters to supervise; labels_key and label_probs_key "
                "are for GMVAE and CGMVAE."
            )

    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        train_size: float | None = None,
        early_stopping: bool = False,
        plan_kwargs: dict | None = None,
        checkpoint_every: int | None = None,
        checkpoint_dir: str = "checkpoints",
        block_size: int | None = None,
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
            ``warmup_end``, ``max_kl_weight``, ...); unknown names raise a ``ValueError``.
        checkpoint_every
            Write ``checkpoint_dir/last.ckpt`` every this many epochs (off by default).
            ``train(max_epochs=..., ckpt_path="checkpoints/last.ckpt")`` on a model built
            with the same arguments resumes from it.
        checkpoint_dir
            Folder of the checkpoints.
        block_size
            Minibatches are made of runs of this many cells that are neighbours in the
            AnnData (:class:`~cgmvae.train.BlockBatchSampler`), so that training from a backed
            AnnData reads stretches of the file instead of scattered rows. ``None``: 1 (cells
            drawn one by one) in memory; from a backed AnnData ``batch_size // 16`` between 1
            and 32, so that a minibatch holds at least 16 runs (8 at ``batch_size=128``, 32 at
            512). With ``strategy="ddp"`` cells are drawn one by one.
        **trainer_kwargs
            Passed to the Lightning trainer (``precision``, ``gradient_clip_val``,
            ``callbacks``, ``strategy``, ``ckpt_path``, ``enable_progress_bar``, ...).
        """
        plan_kwargs = {**self._plan_defaults, **(plan_kwargs or {})}
        check_plan_kwargs(plan_kwargs, self._misplaced_plan_kwargs())
        splitter_kwargs = trainer_kwargs.get("datasplitter_kwargs") or {}
        trainer_kwargs["datasplitter_kwargs"] = {"block_size": block_size, **splitter_kwargs}
        drop_last = splitter_kwargs.get("drop_last", False)
        n_train = self._training_set_size(train_size, batch_size, drop_last)
        check_trainable(self.adata.n_obs, n_train, batch_size, drop_last)
        max_epochs = max_epochs or default_max_epochs(self.adata.n_obs)
        # Lightning warns once per model when an epoch has fewer batches than this
        n_batches = max(1, math.ceil(n_train / batch_size))
        trainer_kwargs.setdefault("log_every_n_steps", min(10, n_batches))
        callbacks = list(trainer_kwargs.get("callbacks") or [])
        callbacks.extend(self._training_callbacks(max_epochs))
        if checkpoint_every is not None:
            callbacks.append(PeriodicCheckpoint(checkpoint_dir, checkpoint_every))
        trainer_kwargs["callbacks"] = callbacks
        earliest = min(max_epochs, self._earliest_stop(max_epochs))
        if early_stopping and earliest > 0:
            trainer_kwargs["min_epochs"] = max(trainer_kwargs.get("min_epochs") or 0, earliest)
        interrupt_handler = signal.getsignal(signal.SIGINT)
        try:
            with quiet_lightning():
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
        except (KeyboardInterrupt, SystemExit):
            # Lightning ignores Ctrl-C after an interrupt; give the session its handler back.
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, interrupt_handler)
            self._warn_interrupted(checkpoint_dir if checkpoint_every else None)
            raise

    def _warn_interrupted(self, checkpoint_dir: str | None) -> None:
        """Say what state an interrupted ``train`` left the model in."""
        state = (
            "It keeps the weights of its last step and its earlier training."
            if self.is_trained_
            else "It is marked untrained (is_trained_ is False): inference methods refuse it."
        )
        last = Path(checkpoint_dir or ".") / LAST_CHECKPOINT
        resume = (
            f" Resume with train(..., ckpt_path={str(last)!r})."
            if checkpoint_dir is not None and last.exists()
            else ""
        )
        warnings.warn(f"Training was interrupted. {state}{resume}", UserWarning, stacklevel=3)

    def _misplaced_plan_kwargs(self) -> dict[str, str]:
        """Hints for names that users put in ``plan_kwargs`` but that belong elsewhere."""
        return {}

    def _training_set_size(
        self, train_size: float | None, batch_size: int, drop_last: bool
    ) -> int:
        """Training cells as scvi-tools' data splitter will choose them for ``train``."""
        splitter = DataSplitter(
            self.adata_manager, train_size=train_size, batch_size=batch_size, drop_last=drop_last
        )
        return splitter.n_train

    @property
    def conditions(self) -> list[str]:
        """Condition categories seen in training, in the order of their codes."""
        state = self.registry_["field_registries"][REGISTRY_KEYS.CONDITION_KEY]["state_registry"]
        return [str(c) for c in state["categorical_mapping"]]

    def condition_code(self, condition) -> int:
        """Return the integer code of ``condition``; raise ``ValueError`` if it is unknown."""
        known = self.conditions
        if str(condition) not in known:
            raise ValueError(
                f"Unknown condition {condition!r}. The model was trained on the conditions "
                f"{', '.join(map(repr, known))}."
            )
        return known.index(str(condition))

    @torch.inference_mode()
    def sample(
        self,
        n_samples: int,
        condition: str | None = None,
        library_size: float | None = None,
    ) -> AnnData:
        """Generate observations from the prior.

        Parameters
        ----------
        n_samples
            Number of observations.
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
            ``.obs["condition"]`` says what they were decoded under.
        """
        self.module.eval()
        return self._decode_prior(self.module.sample_prior(n_samples), condition, library_size)

    def _decode_prior(
        self,
        z: torch.Tensor,
        condition: str | None,
        library_size: float | None,
        cluster_probs: torch.Tensor | None = None,
    ) -> AnnData:
        """Decode prior draws ``z`` into an AnnData of generated observations."""
        if condition is not None and not self._conditional:
            raise ValueError(f"{type(self).__name__} has no condition; use a conditional model.")
        condition = self.conditions[0] if condition is None else condition
        library = None
        if self.module.models_counts:
            library = library_size or float(self.module.typical_library)
        px = self.module.decode(z, self.condition_code(condition), library, cluster_probs)
        values = self.module.decoder.head.generate(px)
        result = AnnData(X=values.cpu().numpy().astype(np.float32))
        result.var_names = self.get_var_names()
        result.obs["condition"] = pd.Categorical([str(condition)] * len(z))
        return result

    def save(
        self,
        dir_path: str,
        overwrite: bool = False,
        save_anndata: bool = False,
        **kwargs,
    ) -> None:
        """Save the model (weights, parameters, data registry) to ``dir_path``.

        The files are written to a staging folder beside ``dir_path`` that replaces it only
        when complete: an interrupted save leaves ``dir_path`` as it was.

        Parameters
        ----------
        dir_path
            Folder to create.
        overwrite
            Replace an existing folder (else an existing ``dir_path`` raises ``ValueError``).
        save_anndata
            Also save the training AnnData, so that ``load(dir_path)`` needs no data
            (default ``False``, as in scvi-tools: pass the data to ``load``).
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.save`.
        """
        with atomic_folder(dir_path, overwrite) as staging:
            super().save(str(staging), overwrite=True, save_anndata=save_anndata, **kwargs)

    @torch.inference_mode()
    def _collect(
        self,
        step: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        adata: AnnData | None = None,
        indices: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Run ``step`` on every minibatch of ``adata`` (eval mode) and stack its outputs.

        The one inference loop of the package's own helpers; outputs with a leading
        sample dimension are stacked along the cells (axis ``-2``).
        """
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        self.module.eval()
        outputs = [step(tensors).cpu() for tensors in loader]
        axis = 0 if outputs[0].dim() < 3 else -2
        return torch.cat(outputs, dim=axis).numpy().astype(np.float32)

    def _inference(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return the module's inference outputs for one minibatch."""
        return self.module.inference(**self.module._get_inference_input(tensors))

    def _require_counts(self, method: str) -> None:
        if not self.module.models_counts:
            raise ValueError(
                f"{method} needs a count likelihood (e.g. 'nb', 'zinb' or 'poisson'); this model "
                f"uses {self.module.likelihood!r}, whose decoder has no normalised expression. "
                "Use sample() or predict_counterfactual() for its decoded means."
            )

    def get_normalized_expression(self, *args, **kwargs):
        """Return decoded expression normalised to ``library_size`` (count likelihoods).

        scvi-tools' :meth:`~scvi.model.base.RNASeqMixin.get_normalized_expression`:
        ``adata``, ``indices``, ``transform_batch`` (decode in another batch), ``gene_list``,
        ``library_size`` (a number or ``"latent"`` for the observed library),
        ``n_samples``, ``return_mean``, ``return_numpy``, ``batch_size``. Cells are
        decoded under their own condition; :meth:`predict_counterfactual` swaps it.
        """
        self._require_counts("get_normalized_expression")
        return super().get_normalized_expression(*args, **kwargs)

    def write_results(
        self,
        adata: AnnData | None = None,
        latent_key: str | None = None,
        key_added: str | None = None,
    ) -> None:
        """Write the latent and the model's parameters into ``adata`` in place.

        Writes ``.obsm["X_<key>"]`` (posterior means) and ``.uns["<key>"]``, ``<key>`` the
        lower-case model name unless ``key_added`` names it; nothing else of ``adata`` is
        touched.

        Parameters
        ----------
        adata
            Where to write; ``None`` uses the training AnnData.
        latent_key
            Key in ``.obsm``; default ``"X_<key>"``.
        key_added
            Prefix of every key written (as scanpy's ``key_added``), so that two models of
            one class can write into one AnnData; default the model's name.
        """
        latent = self.get_latent_representation(adata)
        self._write_latent_and_params(adata, latent_key, latent, key_added)

    def _write_latent_and_params(
        self,
        adata: AnnData | None,
        latent_key: str | None,
        latent: np.ndarray,
        key_added: str | None,
    ) -> tuple[AnnData, str]:
        """Write ``latent`` and ``.uns[key]``; return the AnnData written to and the key."""
        target = self.adata if adata is None else adata
        key = key_added or self.name
        target.obsm[latent_key or f"X_{key}"] = latent
        target.uns[key] = self._params_for_uns()
        return target, key

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
