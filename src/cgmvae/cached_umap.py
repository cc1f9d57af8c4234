"""UMAP compiled once per machine: umap-learn imported with numba's on-disk cache.

umap-learn and pynndescent compile their numba functions at import and at the first fit of
every process (about 17 s of a small data set's placement) and cache none of them. Importing
them while ``numba.njit`` / ``numba.jit`` default to ``cache=True`` keeps the machine code in
numba's cache (beside their sources, or the user's cache folder where those are read-only), so
later processes load it instead of compiling it. The code and its results are the same.
A function that takes another compiled function as an argument (pynndescent's ``nn_descent``)
is compiled again all the same; the placement and :func:`cgmvae.pl.latent_umap` search
neighbours exactly instead of calling it.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager


@functools.cache
def umap_class() -> type:
    """Return ``umap.UMAP``, importing umap-learn with numba's cache on if not yet imported."""
    if "umap" not in sys.modules:
        with numba_caching(), quiet_numba_cache():
            import umap  # noqa: F401
    return sys.modules["umap"].UMAP


@contextmanager
def numba_caching():
    """Make ``numba.njit`` and ``numba.jit`` cache what they compile, inside the block."""
    import numba

    njit, jit = numba.njit, numba.jit
    numba.njit, numba.jit = _caching(njit), _caching(jit)
    try:
        yield
    finally:
        numba.njit, numba.jit = njit, jit


@contextmanager
def quiet_numba_cache():
    """Hide numba's notices about functions it cannot cache (they are compiled as before)."""
    from numba.core.errors import NumbaWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Cannot cache", NumbaWarning)
        yield


def _caching(decorator: Callable) -> Callable:
    """Wrap ``decorator`` (``numba.njit`` or ``numba.jit``) to default to ``cache=True``."""

    def decorate(*args, **options):
        if args and callable(args[0]):  # @numba.njit without arguments
            return _compile(decorator, args, options)
        return lambda function: _compile(decorator, args, options, function)

    return decorate


def _compile(decorator: Callable, args: tuple, options: dict, function=None):
    try:
        made = decorator(*args, **{"cache": True, **options})
        return made if function is None else made(function)
    except RuntimeError:  # numba found no writable cache folder: compile as the library asks
        made = decorator(*args, **options)
        return made if function is None else made(function)
