"""Partitions of a latent: the clustering methods every placement chooses from."""

from __future__ import annotations

import functools
import logging
import time
import warnings
from collections.abc import Callable

import numpy as np

from cgmvae.constants import PLACEMENT_METHODS, PlacementMethod, check_choice

logger = logging.getLogger(__name__)

#: ``"auto"`` leaves k-means for another partition only if that cuts at most this share of
#: the neighbour edges k-means cuts, and at least :data:`CUT_TOLERANCE` fewer. Between
#: partitions that cut about as many edges the choice would follow the last bits of the latent
#: (PBMC 68k-reduced: UMAP / k-means cut ratios 0.89–1.56 across CPU kernels, MNIST 0.47;
#: ``benchmarks/results/clustering_ablation.md``).
CUT_RATIO = 0.75

#: Cut fractions closer than this count as equal.
CUT_TOLERANCE = 0.01

#: k-means restarts of the placement; the one of least inertia is kept. Ten restarts found
#: different local optima on latents that differ only by CPU kernels, a hundred the same one.
KMEANS_RESTARTS = 100

#: Gaussian mixtures fitted to the UMAP embedding; their consensus is the placement.
GMM_RESTARTS = 10

#: From this many rows UMAP gets exact neighbours from scikit-learn (:func:`umap_neighbours`);
#: below it umap-learn computes them exactly itself.
UMAP_EXACT_FROM = 4096


def check_placement(method: str) -> str:
    """Return ``method`` if it is a known placement, else raise a ``ValueError``."""
    return check_choice(
        "cluster placement",
        method,
        PLACEMENT_METHODS,
        "'auto' (the better of the two others by the neighbour edges it cuts, the default), "
        "'umap' (a Gaussian mixture on a UMAP embedding of the latent) or 'kmeans' (k-means "
        "on the latent) or 'leiden' (Leiden communities of the latent's neighbour graph, "
        "resolution searched for n_clusters; the late second placement, cluster_refine).",
    )


def placement_rows(n_obs: int, max_cells: int, seed: int) -> np.ndarray:
    """Rows of the latent the placement clusters: all, or a random ``max_cells`` of them."""
    if n_obs <= max_cells:
        return np.arange(n_obs)
    return np.sort(np.random.default_rng(seed).choice(n_obs, max_cells, replace=False))


def cluster_latent(
    latent: np.ndarray,
    n_clusters: int,
    method: PlacementMethod = "auto",
    seed: int | None = 0,
    n_neighbors: int = 15,
    fallback: str | None = "kmeans",
) -> np.ndarray | None:
    """Cluster the rows of ``latent`` into ``n_clusters`` groups; returns one label per row.

    ``method`` names a row of :data:`PARTITIONS`, or ``"auto"``, which computes every method
    of :data:`AUTO_CANDIDATES` and keeps k-means unless the UMAP partition cuts clearly fewer
    edges of the latent's ``n_neighbors``-nearest-neighbour graph (:func:`cut_fraction`; at
    most :data:`CUT_RATIO` of k-means' cut, and by more than :data:`CUT_TOLERANCE`). UMAP
    wins where clusters are curved (MNIST), k-means where they are compact blobs that UMAP
    breaks into fragments (small, well-separated cell types) or where neither cuts clearly
    fewer (there the UMAP partition changes with the last bits of the latent, k-means with
    :data:`KMEANS_RESTARTS` starts does not). ``"leiden"`` is not one of ``"auto"``'s
    candidates: it cuts the fewest edges by construction.

    A method can find no partition with exactly ``n_clusters`` groups (Leiden); then
    ``fallback`` is used instead, or, with ``fallback=None``, ``None`` is returned.
    ``seed=None`` (``scvi.settings.seed`` unset) gives an unseeded placement.
    """
    check_placement(method)
    start = time.perf_counter()
    if latent.shape[0] <= n_neighbors + 1:
        method = "kmeans"
    names = AUTO_CANDIDATES if method == "auto" else (method,)
    logger.info(
        "Placing the mixture's %d clusters on %d cells by %s…",
        n_clusters,
        latent.shape[0],
        " and ".join(names),
    )
    table = functools.cache(functools.partial(neighbour_table, latent, n_neighbors + 1))
    candidates = {
        name: PARTITIONS[name](latent, n_clusters, seed, n_neighbors, table) for name in names
    }
    candidates = {name: labels for name, labels in candidates.items() if labels is not None}
    if not candidates:
        if fallback is None:
            return None
        logger.info("No %s partition has %d groups; placing by %s.", method, n_clusters, fallback)
        candidates[fallback] = PARTITIONS[fallback](latent, n_clusters, seed, n_neighbors, table)
    chosen = _best_partition(candidates, table)
    logger.info(
        "Placed the mixture's %d clusters by %s on %d cells in %.1f s.",
        n_clusters,
        chosen,
        latent.shape[0],
        time.perf_counter() - start,
    )
    return candidates[chosen]


def leiden_labels(
    latent: np.ndarray,
    n_clusters: int,
    seed: int | None = 0,
    n_neighbors: int = 15,
    table: Callable[[], tuple] | None = None,
) -> np.ndarray | None:
    """Leiden communities of the rows of ``latent``, exactly ``n_clusters`` of them.

    Builds scanpy's neighbour graph of the latent from exact neighbours (scanpy's choice below
    8,192 rows; above, its approximate search would compile pynndescent in every process, see
    :func:`umap_neighbours`) and searches the resolution (:func:`leiden_with_k`). Returns
    ``None`` when no resolution gives ``n_clusters``. ``table`` is unused.
    """
    import anndata
    import scanpy as sc

    from cgmvae.cached_umap import quiet_numba_cache, umap_class

    umap_class()  # scanpy's graph runs umap-learn's code: import it with numba's cache first
    graph = anndata.AnnData(np.asarray(latent, dtype=np.float32))
    with quiet_numba_cache():
        sc.pp.neighbors(
            graph,
            n_neighbors=n_neighbors,
            use_rep="X",
            random_state=0 if seed is None else seed,
            transformer="sklearn",
        )
    communities = leiden_with_k(graph, n_clusters, seed)
    return None if communities is None else communities.cat.codes.to_numpy()


def leiden_with_k(adata, n_clusters: int, seed: int | None = 0, max_steps: int = 30):
    """Leiden communities on ``adata``'s neighbour graph, resolution bisected to give K.

    ``adata`` must hold a graph from :func:`scanpy.pp.neighbors`; it is left as it was.
    Returns the communities as a categorical :class:`pandas.Series` over ``adata.obs_names``,
    or ``None`` when ``max_steps`` bisection steps in resolution [0.01, 5] find none with
    exactly ``n_clusters``.
    """
    import scanpy as sc

    low, high = 0.01, 5.0
    for _ in range(max_steps):
        resolution = (low + high) / 2
        communities = sc.tl.leiden(
            adata, resolution=resolution, random_state=0 if seed is None else seed,
            flavor="igraph", n_iterations=2, directed=False, copy=True,
        ).obs["leiden"]  # fmt: skip
        found = communities.nunique()
        if found == n_clusters:
            return communities
        low, high = (resolution, high) if found < n_clusters else (low, resolution)
    return None


def match_labelled_clusters(
    latent: np.ndarray, clusters: np.ndarray, targets: np.ndarray, labelled: np.ndarray
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Renumber ``clusters`` so that labelled class k gets the group nearest to its cells.

    ``targets`` holds known cluster probabilities and ``labelled`` marks the cells that have
    them. Each class with labelled cells takes, one to one (Hungarian matching), the group
    whose mean is nearest to its cells' weighted mean; the other groups keep the remaining
    numbers. Returns the renumbered clusters and, per labelled class, that weighted mean
    (the anchor its components are shifted onto).
    """
    from scipy.optimize import linear_sum_assignment

    n_clusters = targets.shape[1]
    weights = targets[labelled]
    seeded = np.flatnonzero(weights.sum(0) > 0)
    anchors = {int(k): np.average(latent[labelled], axis=0, weights=weights[:, k]) for k in seeded}
    centroids = np.stack(
        [latent[clusters == g].mean(0) if (clusters == g).any() else latent.mean(0)
         for g in range(n_clusters)]
    )  # fmt: skip
    label_means = np.stack([anchors[int(k)] for k in seeded])
    distances = ((label_means[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    _, matched = linear_sum_assignment(distances)
    group_of = np.full(n_clusters, -1)
    group_of[seeded] = matched
    group_of[group_of < 0] = np.setdiff1d(np.arange(n_clusters), matched)
    cluster_of_group = np.argsort(group_of)
    return cluster_of_group[clusters], anchors


def spread_labels(
    latent: np.ndarray, targets: np.ndarray, labelled: np.ndarray, n_neighbors: int = 15
) -> np.ndarray | None:
    """Give every cell a class by label spreading on the latent's nearest-neighbour graph.

    ``targets`` holds class probabilities and ``labelled`` marks the cells that have them;
    labelled cells count as their most probable class. Label spreading (Zhou et al., 2004)
    follows the latent's neighbourhoods, so the classes keep shapes a k-means partition
    cuts across. Returns ``None`` when a class has no labelled cell (spreading cannot find
    it; the placement then stays unsupervised and is matched to the labels).
    """
    from sklearn.semi_supervised import LabelSpreading

    n_classes = targets.shape[1]
    if len(np.unique(targets[labelled].argmax(1))) < n_classes:
        return None
    known = np.where(labelled, targets.argmax(1), -1)
    k = min(n_neighbors, len(latent) - 1)
    spreading = LabelSpreading(kernel="knn", n_neighbors=k, alpha=0.9, max_iter=1000)
    return spreading.fit(latent, known).transduction_.astype(int)


def split_clusters(
    latent: np.ndarray, clusters: np.ndarray, n_clusters: int, n_parts: int, seed: int = 0
) -> np.ndarray:
    """Split each cluster's cells by k-means into ``n_parts``; returns component labels.

    Cell i of cluster k gets a label in k·n_parts … k·n_parts + n_parts − 1, the layout of
    :class:`~cgmvae.nn.MixturePrior`'s components. A cluster with fewer than
    ``2 · n_parts`` cells is not split (all its cells take its first component).
    """
    from sklearn.cluster import KMeans

    components = clusters * n_parts
    if n_parts == 1:
        return components
    for k in range(n_clusters):
        members = np.flatnonzero(clusters == k)
        if len(members) >= 2 * n_parts:
            parts = KMeans(n_parts, n_init=3, random_state=seed).fit_predict(latent[members])
            components[members] += parts
    return components


def cut_fraction(
    latent: np.ndarray | None,
    labels: np.ndarray,
    n_neighbors: int = 15,
    neighbours: np.ndarray | None = None,
) -> float:
    """Fraction of the edges of the ``n_neighbors``-nearest-neighbour graph whose ends differ.

    ``neighbours`` (rows: the neighbours of each cell) skips building the graph of ``latent``.
    """
    if neighbours is None:
        neighbours = nearest_neighbours(latent, n_neighbors)
    return float((labels[neighbours] != labels[:, None]).mean())


def nearest_neighbours(latent: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Return the indices of each row's ``n_neighbors`` nearest other rows, ``(n, k)``."""
    k = min(n_neighbors, latent.shape[0] - 1)
    return neighbour_table(latent, k + 1)[1][:, 1:]


def neighbour_table(latent: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each row's ``n_neighbors`` nearest rows, itself first."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=n_neighbors).fit(latent).kneighbors(latent)


def _best_partition(candidates: dict, table: Callable[[], tuple]) -> str:
    """Name the first candidate, unless another cuts clearly fewer edges (:data:`CUT_RATIO`).

    ``table()`` returns the latent's :func:`neighbour_table` (each row first).
    """
    names = list(candidates)
    if len(names) == 1:
        return names[0]
    neighbours = table()[1][:, 1:]
    cuts = {
        name: cut_fraction(None, labels, neighbours=neighbours)
        for name, labels in candidates.items()
    }
    default, rival = names[0], min(names[1:], key=cuts.get)
    clearly_fewer = (
        cuts[rival] <= CUT_RATIO * cuts[default] and cuts[default] - cuts[rival] > CUT_TOLERANCE
    )
    logger.info(
        "Neighbour edges cut: %s.", ", ".join(f"{name} {cut:.1%}" for name, cut in cuts.items())
    )
    return rival if clearly_fewer else default


def kmeans_labels(
    latent: np.ndarray,
    n_clusters: int,
    seed: int | None,
    n_neighbors: int = 15,
    table: Callable[[], tuple] | None = None,
    restarts: int = 10,
) -> np.ndarray:
    """k-means labels of the rows of ``latent``, the best of ``restarts`` starts.

    ``n_neighbors`` and ``table`` are unused (the signature of :data:`PARTITIONS`).
    """
    from sklearn.cluster import KMeans

    return KMeans(n_clusters, n_init=restarts, random_state=seed).fit_predict(latent)


def placement_kmeans_labels(
    latent: np.ndarray,
    n_clusters: int,
    seed: int | None,
    n_neighbors: int = 15,
    table: Callable[[], tuple] | None = None,
) -> np.ndarray:
    """k-means labels for a placement: the best of :data:`KMEANS_RESTARTS` starts."""
    return kmeans_labels(latent, n_clusters, seed, restarts=KMEANS_RESTARTS)


def umap_gmm_labels(
    latent: np.ndarray,
    n_clusters: int,
    seed: int | None,
    n_neighbors: int = 15,
    table: Callable[[], tuple] | None = None,
) -> np.ndarray:
    """Cluster by a Gaussian mixture on a UMAP embedding of the latent (the N2D recipe).

    UMAP (``n_components = n_clusters``, ``min_dist=0``; McConville et al., 2020) separates
    clusters whose shapes a diagonal Gaussian in the latent cannot follow; a full-covariance
    mixture is fitted there :data:`GMM_RESTARTS` times and their consensus
    (:func:`consensus_partition`) kept, since one fit depends much on its initialisation.
    UMAP's compiled code is cached on disk
    (:func:`~cgmvae.cached_umap.umap_class`); ``table()``, where given, returns the latent's
    :func:`neighbour_table` with at least ``n_neighbors`` columns (:func:`umap_neighbours`).
    """
    from cgmvae.cached_umap import quiet_numba_cache, umap_class

    umap = umap_class()(
        n_components=n_clusters,
        n_neighbors=n_neighbors,
        min_dist=0.0,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=umap_neighbours(latent, n_neighbors, table),
    )
    with quiet_numba_cache(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "precomputed_knn", UserWarning)
        embedding = umap.fit_transform(latent)
    return gmm_consensus(embedding, n_clusters, seed)


def umap_neighbours(
    latent: np.ndarray, n_neighbors: int, table: Callable[[], tuple] | None = None
) -> tuple:
    """Exact nearest neighbours for UMAP's ``precomputed_knn`` from :data:`UMAP_EXACT_FROM` rows.

    Below that size UMAP computes exact distances itself (``(None, None)`` leaves it to). Above
    it would run pynndescent, whose ``nn_descent`` takes the distance function as an argument,
    which numba cannot cache: it compiled again in every process (9.6 s). scikit-learn's exact
    table (each row first, at distance 0, as pynndescent returns it) needs no compiling.
    """
    if latent.shape[0] < UMAP_EXACT_FROM:
        return (None, None)
    distances, indices = neighbour_table(latent, n_neighbors) if table is None else table()
    return indices[:, :n_neighbors], distances[:, :n_neighbors].astype(np.float32)


def gmm_consensus(embedding: np.ndarray, n_clusters: int, seed: int | None) -> np.ndarray:
    """Consensus of :data:`GMM_RESTARTS` full-covariance Gaussian mixtures on ``embedding``."""
    from sklearn.mixture import GaussianMixture

    seeds = [None if seed is None else seed + restart for restart in range(GMM_RESTARTS)]
    partitions = [
        GaussianMixture(n_clusters, covariance_type="full", random_state=state).fit_predict(
            embedding
        )
        for state in seeds
    ]
    return consensus_partition(partitions, n_clusters, seed)


def consensus_partition(
    partitions: list[np.ndarray], n_clusters: int, seed: int | None
) -> np.ndarray:
    """One partition that agrees most with several: k-means on the cells' memberships.

    Each cell is the concatenation of its one-hot cluster memberships in every partition;
    the squared distance between two cells is then twice the number of partitions that
    separate them, so k-means groups cells that the partitions put together most often
    (a co-association consensus, without the cells × cells matrix).
    """
    from sklearn.cluster import KMeans

    memberships = np.concatenate([np.eye(n_clusters)[labels] for labels in partitions], axis=1)
    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(memberships)


#: The clustering methods a placement can use, by name: each takes the latent, the number of
#: clusters, a seed, the neighbours of the graph and a function returning the latent's
#: :func:`neighbour_table` (computed once for all of them), and returns one label per row (or
#: ``None`` where it finds no partition of that size).
PARTITIONS: dict[str, Callable[..., np.ndarray | None]] = {
    "kmeans": placement_kmeans_labels,
    "umap": umap_gmm_labels,
    "leiden": leiden_labels,
}

#: The methods ``"auto"`` compares by the neighbour edges they cut.
AUTO_CANDIDATES: tuple[str, ...] = ("kmeans", "umap")
