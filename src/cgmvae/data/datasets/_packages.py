"""Locate data files shipped inside installed Python packages, without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path | None:
    """Return a file inside an installed package, or ``None`` if it is not there.

    The package is found with :func:`importlib.util.find_spec`, so it is never imported
    (``desc``, for one, imports keras on import).

    Parameters
    ----------
    package
        Top-level import name, e.g. ``"desc"`` or ``"mnist"``.
    *parts
        Path components below the package directory.

    Returns
    -------
    Path or None
        The file, when the package is installed and the file exists.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location, *parts)
        if path.is_file():
            return path
    return None
