"""Rewriting an .h5ad for training from disk: same contents, X's rows read without chunks."""

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cgmvae.data import write_contiguous_h5ad


def written(tmp_path, x) -> anndata.AnnData:
    rng = np.random.default_rng(0)
    adata = anndata.AnnData(
        X=x,
        obs=pd.DataFrame({"condition": pd.Categorical(rng.choice(["a", "b"], 40))},
                         index=[f"c{i}" for i in range(40)]),
        layers={"counts": sp.csr_matrix(rng.poisson(1.0, (40, 30)).astype(np.float32))},
        uns={"note": "kept"},
    )  # fmt: skip
    adata.write_h5ad(tmp_path / "source.h5ad")
    return adata


def test_the_copy_holds_the_same_data_with_x_unchunked(tmp_path):
    counts = sp.random(40, 30, density=0.3, format="csr", dtype=np.float32, random_state=0)
    adata = written(tmp_path, counts)
    with h5py.File(tmp_path / "source.h5ad") as file:
        assert file["X"]["data"].chunks is not None  # what anndata writes
    target = write_contiguous_h5ad(tmp_path / "source.h5ad", tmp_path / "train.h5ad")
    with h5py.File(target) as file:
        assert file["X"]["data"].chunks is None and file["X"]["indices"].chunks is None
    copy = anndata.read_h5ad(target)
    assert (copy.X != adata.X).nnz == 0 and copy.X.dtype == np.float32
    assert (copy.layers["counts"] != adata.layers["counts"]).nnz == 0
    pd.testing.assert_frame_equal(copy.obs, adata.obs)
    assert copy.uns["note"] == "kept"
    backed = anndata.read_h5ad(target, backed="r")
    rows = np.array([3, 17, 39])
    assert (backed.X[rows] != adata.X[rows]).nnz == 0
    backed.file.close()


def test_a_dense_x_or_an_existing_target_is_refused(tmp_path):
    written(tmp_path, np.ones((40, 30), dtype=np.float32))
    with pytest.raises(ValueError, match=r"X of .* is stored as array, not a CSR.*csr_matrix"):
        write_contiguous_h5ad(tmp_path / "source.h5ad", tmp_path / "train.h5ad")
    assert not (tmp_path / "train.h5ad").exists()
    with pytest.raises(ValueError, match="exists; name a new file"):
        write_contiguous_h5ad(tmp_path / "source.h5ad", tmp_path / "source.h5ad")
