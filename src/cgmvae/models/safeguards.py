"""Checks that protect the user's AnnData when a trained model meets new data or a folder."""

from __future__ import annotations

import pickle
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from anndata import AnnData

from cgmvae.constants import REGISTRY_KEYS
from cgmvae.validation import (
    align_var_names,
    check_anndata,
    check_covariates,
    check_known_categories,
    check_layer,
    check_names,
    check_obs_complete,
    check_obs_key,
    check_values_for_likelihood,
    data_location,
)

MODEL_FILE = "model.pt"


def training_genes(registry: dict) -> np.ndarray:
    """Names of the genes (features) a model was trained on, in their order."""
    return registry["field_registries"][REGISTRY_KEYS.X_KEY]["state_registry"]["column_names"]


def _registered_columns(registry: dict) -> list[tuple[str, str, list]]:
    """``(column, setup argument, categories seen in training)`` of each categorical column."""
    setup = registry["setup_args"]
    fields = registry["field_registries"]
    columns = []
    for argument, registry_key in (
        ("condition_key", REGISTRY_KEYS.CONDITION_KEY),
        ("batch_key", REGISTRY_KEYS.BATCH_KEY),
        ("labels_key", REGISTRY_KEYS.LABELS_KEY),
    ):
        if setup.get(argument) is not None:
            state = fields[registry_key]["state_registry"]
            columns.append((setup[argument], argument, list(state["categorical_mapping"])))
    for key in setup.get("categorical_covariate_keys") or []:
        mappings = fields[REGISTRY_KEYS.CAT_COVS_KEY]["state_registry"]["mappings"]
        columns.append((key, "categorical_covariate_keys", list(mappings[key])))
    return columns


def check_query_obs(adata: AnnData, registry: dict, new_batches: bool = False) -> None:
    """Check the ``.obs``/``.obsm`` keys a model was set up with against a new AnnData.

    Raises ``KeyError`` for a missing key and ``ValueError`` for missing values or
    categories unseen in training, naming the key and the known categories; with
    ``new_batches`` (query mapping) unseen batches are allowed.
    """
    setup = registry["setup_args"]
    for key, argument, known in _registered_columns(registry):
        hint = f" The model was set up with {argument}={key!r}; new data need that column too."
        if argument == "labels_key":
            hint += f" Mark unlabelled cells with {setup.get('unlabeled_category')!r}."
        check_obs_key(adata, key, argument, hint)
        check_obs_complete(adata, key, argument)
        if not (new_batches and argument == "batch_key"):
            check_known_categories(adata, key, argument, known)
    continuous = setup.get("continuous_covariate_keys")
    for key in continuous or []:
        hint = f" The model was set up with continuous_covariate_keys including {key!r}."
        check_obs_key(adata, key, "continuous_covariate_keys", hint)
    check_covariates(adata, None, continuous, {})
    probs_key = setup.get("label_probs_key")
    if probs_key is not None and probs_key not in adata.obsm:
        raise KeyError(
            f"The model was set up with label_probs_key={probs_key!r}, which is not in "
            f"adata.obsm; add it (all-zero rows for unlabelled cells)."
        )


def check_query(adata: AnnData, registry: dict, likelihood: str | None = None) -> AnnData:
    """Check a new AnnData against a model's registry before scvi-tools registers it.

    Returns ``adata``, or a copy with the genes reordered to the training order; ``adata``
    itself is never modified. With ``likelihood`` the data are also checked against its
    support (:func:`~cgmvae.validation.check_values_for_likelihood`).
    """
    check_anndata(adata)
    check_names(adata)
    layer = registry["setup_args"].get("layer")
    check_layer(adata, layer)
    check_query_obs(adata, registry)
    if likelihood is not None:
        data = adata.X if layer is None else adata.layers[layer]
        check_values_for_likelihood(data, likelihood, data_location(layer))
    aligned = align_var_names(adata, training_genes(registry))
    if aligned is not adata:
        # scvi-tools recognises a registered AnnData by an id it keeps in .uns; the copy
        # must be registered afresh, not taken for the user's AnnData.
        aligned.uns = {}
    return aligned


def check_model_dir(dir_path, prefix: str | None = None) -> Path:
    """Return the path of the saved model file; ``FileNotFoundError`` naming what is missing."""
    path = Path(dir_path)
    if not path.exists():
        raise FileNotFoundError(
            f"No saved model at {str(path)!r}: the directory does not exist. Pass the folder "
            "given to model.save()."
        )
    if not path.is_dir():
        raise FileNotFoundError(
            f"{str(path)!r} is a file; pass the folder given to model.save() instead."
        )
    model_file = path / f"{prefix or ''}{MODEL_FILE}"
    if not model_file.is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise FileNotFoundError(
            f"{str(path)!r} is not a complete saved model: {model_file.name} is missing "
            f"(found: {found}). Save the model again with model.save({str(path)!r}, "
            "overwrite=True)."
        )
    return model_file


@contextmanager
def atomic_folder(dir_path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder that replaces ``dir_path`` only once it is complete.

    The staging folder lies beside ``dir_path`` (same file system, so the final rename is
    atomic). If the body raises, or the process is stopped, ``dir_path`` keeps what it held
    before (nothing, or the previous save) and the staging folder is removed.
    """
    target = Path(dir_path)
    if target.exists() and not overwrite:
        raise ValueError(
            f"{str(target)!r} already exists. Pass overwrite=True to replace it, or choose "
            "another folder."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".saving", dir=target.parent)
    )
    try:
        yield staging
        _replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_folder(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; a previous ``target`` is removed only afterwards."""
    if not target.exists():
        source.rename(target)
        return
    previous = target.with_name(f".{target.name}.{source.name}.previous")
    target.rename(previous)
    try:
        source.rename(target)
    except BaseException:
        previous.rename(target)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def forget_instance_registration(model, adata: AnnData) -> None:
    """Drop ``model``'s registration of ``adata`` so that the AnnData can be freed.

    The one private name of scvi-tools the package uses (scvi-tools is capped below 1.5
    for it): ``deregister_manager`` only finds AnnData registered through
    ``setup_anndata``, not those a model registered itself when given new data, which is
    how the reordered copies of :func:`check_query` are registered.
    """
    store = model._per_instance_manager_store.get(model.id, {})
    store.pop(adata.uns.get("_scvi_uuid"), None)


class SafeguardsMixin:
    """Checks every AnnData given to a trained model, and every folder given to ``load``.

    A new AnnData whose genes are the training genes in another order is reordered on a
    copy; one whose genes differ, or whose conditions or labels were not seen in training,
    is refused with an error naming them, before scvi-tools writes anything into it.
    """

    def _validate_anndata(self, adata: AnnData | None = None, copy_if_view: bool = True):
        if adata is not None and adata is not self.adata:
            checked = check_query(adata, self.registry_, self.module.likelihood)
            if checked is not adata:
                self._forget_aligned_copy()
                adata = checked
                self._aligned_copy = adata
        return super()._validate_anndata(adata, copy_if_view)

    def _forget_aligned_copy(self) -> None:
        """Drop the registration of the previous reordered copy, so it can be freed."""
        previous = getattr(self, "_aligned_copy", None)
        if previous is not None:
            forget_instance_registration(self, previous)
            self._aligned_copy = None

    @classmethod
    def load(cls, dir_path: str, adata: AnnData | None = None, **kwargs):
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        dir_path
            Folder written by :meth:`save`.
        adata
            Data with the training genes in the training order and the setup's
            ``.obs`` columns; ``None`` uses the AnnData saved with the model, if any.
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load` (``accelerator``,
            ``device``, ``prefix``, ...).

        Raises
        ------
        FileNotFoundError
            ``dir_path`` does not exist or lacks the model file.
        ValueError
            The folder holds another model class, or ``adata`` does not match the training
            genes or categories.
        """
        if kwargs.get("backup_url") is None:  # else scvi-tools downloads the files first
            cls._check_saved_model(dir_path, adata, kwargs)
        return super().load(dir_path, adata=adata, **kwargs)

    @classmethod
    def _check_saved_model(cls, dir_path, adata: AnnData | None, kwargs: dict) -> None:
        """Check the folder, the saved class and ``adata`` before scvi-tools reads them."""
        check_model_dir(dir_path, kwargs.get("prefix"))
        registry = cls._saved_registry(dir_path, kwargs.get("prefix"))
        saved = registry.get("model_name", cls.__name__)
        if saved != cls.__name__ and saved not in (kwargs.get("allowed_classes_names_list") or []):
            raise ValueError(
                f"{str(dir_path)!r} holds a saved {saved}, not a {cls.__name__}; load it with "
                f"{saved}.load({str(dir_path)!r})."
            )
        if adata is not None and adata is not False and check_query(adata, registry) is not adata:
            raise ValueError(
                "adata has the training genes in another order, and the loaded model would "
                f"hold a reordered copy of it. Load without adata ({cls.__name__}.load("
                f"{str(dir_path)!r})) and pass adata to the inference methods, which reorder "
                "a copy themselves; or reorder adata to the training genes first."
            )

    @classmethod
    def _saved_registry(cls, dir_path, prefix: str | None) -> dict:
        try:
            return cls.load_registry(str(dir_path), prefix=prefix)
        except (EOFError, RuntimeError, pickle.UnpicklingError, KeyError) as error:
            raise ValueError(
                f"The model file in {str(dir_path)!r} cannot be read ({error}); it is "
                "truncated or not a saved model. Save the model again."
            ) from error
