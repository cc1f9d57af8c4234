"""Mapping new batches (donors, sequencing runs) onto a trained model, scArches-style."""

from __future__ import annotations

from pathlib import Path

from anndata import AnnData
from scvi.model.base import ArchesMixin, BaseModelClass

from cgmvae.models.safeguards import check_query_obs
from cgmvae.validation import check_anndata, check_names


def reference_registry(reference_model: str | Path | BaseModelClass) -> dict:
    """Return the data registry of a trained model, or of one saved in a folder."""
    if isinstance(reference_model, BaseModelClass):
        return reference_model.registry_
    folder = Path(reference_model)
    if not (folder / "model.pt").is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} holds no saved model (model.pt); pass a trained model or the "
            "folder model.save() wrote."
        )
    return BaseModelClass.load_registry(str(folder))


class QueryMixin(ArchesMixin):
    """:meth:`load_query_data`: new batches onto a trained reference (Lotfollahi et al. 2022)."""

    @classmethod
    def load_query_data(
        cls,
        adata: AnnData,
        reference_model: str | Path | BaseModelClass,
        *,
        freeze_batchnorm_decoder: bool = True,
        **kwargs,
    ):
        """Return a copy of ``reference_model`` that can learn ``adata``'s new batches.

        The reference must have been set up with ``batch_key``; ``adata`` has the same genes
        and columns, and may hold batches (donors, runs) the reference never saw. Its
        conditions and labels must be the reference's. The returned model gives each new
        batch its own decoder weights, starting fresh, and trains only those: the encoder,
        the mixture (clusters), the condition effect and every reference weight stay as they
        are, so the new cells are encoded into the reference's latent space and clusters.
        Call ``train()`` on it (a few dozen epochs), then the usual methods.

        Parameters
        ----------
        adata
            The query cells; registered by this call (as ``setup_anndata`` would).
        reference_model
            A trained model of this class, or the folder its ``save`` wrote.
        freeze_batchnorm_decoder
            Keep the decoder's batch normalisation as trained on the reference (default),
            so that only the new batches' weights change.
        **kwargs
            Passed to scvi-tools' :meth:`~scvi.model.base.ArchesMixin.load_query_data`
            (``accelerator``, ``device``, ``unfrozen``, ...).

        Raises
        ------
        ValueError
            The reference has no ``batch_key``, or ``adata`` has conditions or labels the
            reference did not see.
        """
        if isinstance(reference_model, Path):
            reference_model = str(reference_model)  # scvi-tools tells paths by isinstance str
        registry = reference_registry(reference_model)
        if registry["setup_args"].get("batch_key") is None:
            raise ValueError(
                f"The reference {cls.__name__} was set up without batch_key, so it has no "
                "batch weights to extend. Set up the reference with setup_anndata(..., "
                "batch_key=...) and train it again, or map the cells without training: "
                "reference.get_latent_representation(adata)."
            )
        check_anndata(adata)
        check_names(adata)
        check_query_obs(adata, registry, new_batches=True)
        model = super().load_query_data(
            adata, reference_model, freeze_batchnorm_decoder=freeze_batchnorm_decoder, **kwargs
        )
        # the encoder's only covariate is the condition, shared with the reference
        model.module.encoder.requires_grad_(False)
        # weight decay would move the reference weights the hooks hold still
        model._plan_defaults = {**model._plan_defaults, "weight_decay": 0.0}
        return model
