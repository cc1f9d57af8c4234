"""Training from an AnnData backed by an .h5ad file: X stays on disk, read a block at a time."""

import anndata
import numpy as np
import pytest
import scipy.sparse as sp

from cgmvae import CGMVAE, GMVAE
from cgmvae.data import simulate
from cgmvae.metrics import cluster_scores


def written(tmp_path, matrix_format: str):
    """Four simulated cell types under two conditions, counts in X, saved and opened backed."""
    adata = simulate(n_obs=600, n_vars=80, n_clusters=4, n_conditions=2, seed=0)
    adata.X = sp.csr_matrix(adata.X)
    if matrix_format == "dense":
        adata.X = adata.X.toarray()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path, anndata.read_h5ad(path, backed="r")


@pytest.mark.quality
def test_a_cgmvae_trains_from_a_backed_h5ad_and_writes_its_results_beside_it(
    tmp_path, seeded, quiet
):
    path, backed = written(tmp_path, "csr")
    on_disk = path.read_bytes()
    CGMVAE.setup_anndata(backed, condition_key="condition")
    model = CGMVAE(backed, n_clusters=4)
    model.train(max_epochs=30, **quiet)
    model.write_results(backed)
    assert backed.isbacked and backed.obsm["X_cgmvae"].shape == (600, 10)
    assert cluster_scores(backed.obs["cluster"], backed.obs["cgmvae_cluster"])["ari"] >= 0.9
    assert abs(cluster_scores(backed.obs["condition"], backed.obs["cgmvae_cluster"])["ari"]) < 0.05
    predicted = model.predict_counterfactual(model.conditions[1], indices=np.arange(50))
    assert predicted.shape == (50, 80) and np.isfinite(predicted.X).all()
    backed.file.close()
    assert path.read_bytes() == on_disk  # results live in memory until the user writes them


def test_a_dense_matrix_on_disk_trains_too(tmp_path, seeded, quiet):
    _, backed = written(tmp_path, "dense")
    GMVAE.setup_anndata(backed)
    model = GMVAE(backed, n_clusters=4, likelihood="poisson")
    model.train(max_epochs=2, **quiet)
    assert model.get_latent_representation(backed).shape == (600, 10)
    backed.file.close()


def test_a_layer_of_a_backed_anndata_is_said_to_be_in_memory(tmp_path, logged):
    adata = simulate(n_obs=50, n_vars=60, n_clusters=2, counts_layer="counts", seed=0)
    adata.write_h5ad(tmp_path / "cells.h5ad")
    backed = anndata.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    GMVAE.setup_anndata(backed, layer="counts")
    assert any("layers into memory" in message and "layer=None" in message for message in logged)
    backed.file.close()


def test_an_entry_stored_twice_deep_in_a_backed_file_is_refused(tmp_path, monkeypatch):
    """Duplicates are found block by block, in the block that holds them."""
    adata = simulate(n_obs=60, n_vars=50, n_clusters=2, n_conditions=2, seed=0)
    counts = sp.csr_matrix(adata.X)
    start = counts.indptr[50]  # row 50 stores its first entry a second time
    indptr = counts.indptr.copy()
    indptr[51:] += 1
    adata.X = sp.csr_matrix(
        (np.insert(counts.data, start, counts.data[start]),
         np.insert(counts.indices, start, counts.indices[start]), indptr),
        shape=counts.shape,
    )  # fmt: skip
    adata.write_h5ad(tmp_path / "doubled.h5ad")
    backed = anndata.read_h5ad(tmp_path / "doubled.h5ad", backed="r")
    monkeypatch.setattr("cgmvae.validation.values.CHUNK_VALUES", 5 * 50)
    with pytest.raises(ValueError, match=r"adata.X is a sparse.*more than once.*sum_duplicates"):
        CGMVAE.setup_anndata(backed, condition_key="condition")
    backed.file.close()
