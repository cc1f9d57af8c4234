"""umap-learn's numba code is compiled once per machine, then loaded from numba's cache."""

import subprocess
import sys

import numba
import pytest
from numba.core.caching import NullCache

from cgmvae.cached_umap import numba_caching, quiet_numba_cache, umap_class


def test_functions_compiled_inside_the_block_are_cached_and_numba_is_restored():
    njit, jit = numba.njit, numba.jit
    with numba_caching():

        @numba.njit
        def bare(x):
            return x + 1

        @numba.njit(fastmath=True)
        def with_options(x):
            return x + 2

        @numba.jit(nopython=True, cache=False)
        def told_not_to(x):
            return x + 3

    assert (bare(1), with_options(1), told_not_to(1)) == (2, 3, 4)
    assert not isinstance(bare._cache, NullCache)
    assert not isinstance(with_options._cache, NullCache)
    assert isinstance(told_not_to._cache, NullCache)
    assert (numba.njit, numba.jit) == (njit, jit)


def test_a_function_numba_cannot_cache_is_compiled_as_before():
    source = "def made_at_runtime(x):\n    return 2 * x\n"  # no file: no cache folder
    namespace = {}
    exec(compile(source, "<string>", "exec"), namespace)
    with numba_caching():
        compiled = numba.njit(namespace["made_at_runtime"])
    assert compiled(4) == 8 and isinstance(compiled._cache, NullCache)


FIT_AND_COUNT = """
import sys, numpy as np
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher
from cgmvae.cached_umap import umap_class, quiet_numba_cache
latent = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
with quiet_numba_cache():
    embedding = umap_class()(n_components=3, min_dist=0.0, random_state=0,
                             n_jobs=1).fit_transform(latent)
cached = [f for name, module in list(sys.modules.items())
          if name.split(".")[0] in ("umap", "pynndescent")
          for f in vars(module).values()
          if isinstance(f, CPUDispatcher) and not isinstance(f._cache, NullCache)]
hits = sum(sum(f.stats.cache_hits.values()) for f in cached)
misses = sum(sum(f.stats.cache_misses.values()) for f in cached)
print(len(cached), hits, misses, *embedding[:3].ravel().tolist())
"""


def test_a_fresh_process_loads_umap_from_the_cache_with_the_same_embedding():
    """After one fit, a new process compiles none of the cached functions it runs again."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", FIT_AND_COUNT], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    first, second = ([float(value) for value in run] for run in runs)
    n_cached, hits, misses = second[:3]
    assert n_cached > 20 and hits > 20 and misses == 0
    assert second[3:] == first[3:]


def test_umap_class_is_umap_learns_estimator():
    umap = pytest.importorskip("umap")
    with quiet_numba_cache():
        assert umap_class() is umap.UMAP
