"""Where datasets are cached, and downloading files into that cache (with pooch)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

#: Environment variable that overrides the data/cache directory.
DATA_DIR_ENV = "CGMVAE_DATA_DIR"


class DatasetNotAvailableError(RuntimeError):
    """A dataset has no offline copy and could not be downloaded."""


def data_dir() -> Path:
    """Return the directory where downloaded datasets are cached.

    Returns
    -------
    Path
        ``$CGMVAE_DATA_DIR`` when that variable is set and not empty, else
        ``~/.cache/cgmvae``. The directory is not created.
    """
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cgmvae"


def checkout_data_dir() -> Path | None:
    """Return ``<repo>/data`` when cgmvae runs from a source checkout, else ``None``.

    ``make data`` installs files there when it cannot install them system-wide.

    Returns
    -------
    Path or None
        The ``data`` directory beside the checkout's ``pyproject.toml``.
    """
    root = Path(__file__).resolve().parents[4]  # <repo>/src/cgmvae/data/datasets/_cache.py
    if (root / "pyproject.toml").is_file():
        return root / "data"
    return None


def md5sum(path: Path) -> str:
    """Return the hex MD5 digest of a file.

    Parameters
    ----------
    path
        File to hash.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, path: Path, *, md5: str | None = None) -> Path:
    """Download ``url`` to ``path`` with :func:`pooch.retrieve`, checking its hash.

    pooch writes to a temporary file and moves it into place only once the download is
    complete and its hash matches; a progress bar shows when stderr is a terminal.

    Parameters
    ----------
    url
        Source URL (``https://`` or ``http://``; ``ftp://`` and ``doi:`` also work).
    path
        Destination file; its parent directories are created.
    md5
        Expected hex MD5 digest; a mismatch raises and leaves no file behind. ``None``
        skips the check (pooch logs the file's SHA256 instead).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        If the download fails (``requests``' errors are ``OSError``).
    ValueError
        If the checksum does not match.
    """
    import pooch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    retrieved = pooch.retrieve(
        url,
        known_hash=None if md5 is None else f"md5:{md5}",
        fname=path.name,
        path=path.parent,
        progressbar=sys.stderr.isatty(),
    )
    return Path(retrieved)


def cached_download(name: str, urls: Sequence[str], path: Path, *, md5: str | None = None) -> Path:
    """Return ``path``, downloading it from the first working mirror if it is missing.

    Parameters
    ----------
    name
        File name appended to each mirror URL in ``urls``.
    urls
        Mirror base URLs, tried in order (each ends with ``/``).
    path
        Destination file in the cache.
    md5
        Expected hex MD5 digest of the file.

    Returns
    -------
    Path
        ``path``, which exists.

    Raises
    ------
    OSError
        If every mirror failed; the message lists each failure.
    """
    path = Path(path)
    if path.is_file():
        return path
    errors = []
    for base in urls:
        try:
            return download(base + name, path, md5=md5)
        except (OSError, ValueError) as error:
            errors.append(f"{base}{name}: {error}")
    raise OSError("download failed: " + "; ".join(errors))
