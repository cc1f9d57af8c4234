"""Tests of cgmvae.data.datasets' cache helpers: data directory, downloads, package files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import cgmvae
from cgmvae import data
from cgmvae.data.datasets import _cache
from cgmvae.data.datasets._packages import package_file


def test_package_file_finds_files_without_importing():
    assert package_file("numpy", "__init__.py") is not None
    assert package_file("no_such_package_cgmvae") is None
    assert package_file("numpy", "no", "such.file") is None
    if package_file("desc", "datasets", "pbmc.h5ad") is not None:
        assert "desc" not in sys.modules


def test_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(_cache.DATA_DIR_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.setenv(_cache.DATA_DIR_ENV, "  ")
    assert data.data_dir() == Path.home() / ".cache" / "cgmvae"
    monkeypatch.delenv(_cache.DATA_DIR_ENV)
    assert data.data_dir() == Path.home() / ".cache" / "cgmvae"


def test_checkout_data_dir_is_beside_pyproject():
    root = Path(cgmvae.__file__).resolve().parents[2]  # <repo>/src/cgmvae/__init__.py
    if not (root / "pyproject.toml").is_file():
        pytest.skip("cgmvae is not running from a source checkout")
    assert _cache.checkout_data_dir() == root / "data"


def test_download_checks_md5_and_leaves_nothing_on_mismatch(tmp_path, http_mirror):
    folder, url = http_mirror
    (folder / "source.bin").write_bytes(b"cgmvae")
    target = tmp_path / "cache" / "copy.bin"
    with pytest.raises(ValueError, match=r"(?i)md5"):
        _cache.download(url + "source.bin", target, md5="0" * 32)
    assert not target.exists() and not list(target.parent.iterdir())
    _cache.download(url + "source.bin", target, md5=_cache.md5sum(folder / "source.bin"))
    assert target.read_bytes() == b"cgmvae"


def test_cached_download_tries_mirrors_then_uses_the_cache(tmp_path, http_mirror):
    folder, url = http_mirror
    (folder / "good").mkdir()
    (folder / "good" / "file.txt").write_text("hello")
    mirrors = [url + "missing/", url + "good/"]
    target = tmp_path / "cache" / "file.txt"
    assert _cache.cached_download("file.txt", mirrors, target).read_text() == "hello"
    (folder / "good" / "file.txt").unlink()
    assert _cache.cached_download("file.txt", mirrors, target).read_text() == "hello"
    with pytest.raises(OSError, match=r"download failed.*404"):
        _cache.cached_download("file.txt", mirrors, tmp_path / "other.txt")
