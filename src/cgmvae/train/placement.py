"""Where the mixture components start: a clustering of the pre-trained latent."""

from __future__ import annotations

import logging
import time

import numpy as np

from cgmvae.constants import PLACEMENT_METHODS, PlacementMethod, check_choice

logger = logging.getLogger(__name__)

#: Partitions whose cut fractions differ by less than this count as tied.
CUT_TOLERANCE = 0.01

#: Gaussian mixtures fitted to the UMAP embedding; their consensus is the placement.
GMM_RESTARTS = 10


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
) -> np.ndarray:
    """Cluster the rows of ``latent`` into ``n_clusters`` groups; returns one label per row.

    ``seed=None`` (``scvi.settings.seed`` unset) gives an unseeded placement.

    ``"umap"`` embeds the latent with UMAP (``n_components = n_clusters``, ``min_dist=0``)
    and fits a full-covariance Gaussian mixture there, the N2D recipe (McConville et al.,
    2020): the manifold embedding separates clusters whose shapes a diagonal Gaussian in
    the latent cannot follow. One mixture depends much on its initialisation, so
    :data:`GMM_RESTARTS` are fitted and their consensus (:func:`consensus_partition`) is
    kept. ``"kmeans"`` runs k-means (10 restarts) on the latent itself.
    ``"leiden"`` partitions the latent's neighbour graph into Leiden communities
    (:func:`leiden_labels`), falling back to k-means where no resolution gives exactly
    ``n_clusters``; it is not one of ``"auto"``'s candidates (it cuts the fewest edges by
    construction). ``"auto"`` computes the first two and keeps the one that cuts the
    fewest edges of the latent's ``n_neighbors``-nearest-neighbour graph
    (:func:`cut_fraction`); when both cut about as few (within :data:`CUT_TOLERANCE`), the
    one with the smaller within-cluster sum of squares. UMAP wins where clusters are curved
    (MNIST), k-means where they are compact blobs that UMAP breaks into fragments (small,
    well-separated cell types).
    """
    check_placement(method)
    start = time.perf_counter()
    if latent.shape[0] <= n_neighbors + 1:
        method = "kmeans"
    candidates = {}
    if method in ("auto", "kmeans"):
        candidates["kmeans"] = kmeans_labels(latent, n_clusters, seed)
    if method in ("auto", "umap"):
        candidates["umap"] = _umap_gmm_labels(latent, n_clusters, seed, n_neighbors)
    if method == "leiden":
        communities = leiden_labels(latent, n_clusters, seed, n_neighbors)
        if communities is not None:
            candidates["leiden"] = communities
        else:
            logger.info("No Leiden resolution gave %d groups; placing by k-means.", n_clusters)
            candidates["kmeans"] = kmeans_labels(latent, n_clusters, seed)
    chosen = _best_partition(latent, candidates, n_neighbors)
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
) -> np.ndarray | None:
    """Leiden communities of the rows of ``latent``, exactly ``n_clusters`` of them.

    Builds scanpy's neighbour graph of the latent and searches the resolution
    (:func:`leiden_with_k`). Returns ``None`` when no resolution gives ``n_clusters``.
    """
    import anndata
    import scanpy as sc

    graph = anndata.AnnData(np.asarray(latent, dtype=np.float32))
    sc.pp.neighbors(
        graph, n_neighbors=n_neighbors, use_rep="X", random_state=0 if seed is None else seed
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
    latent: np.ndarray,
    labels: np.ndarray,
    n_neighbors: int = 15,
    neighbours: np.ndarray | None = None,
) -> float:
    """Fraction of the edges of the ``n_neighbors``-nearest-neighbour graph whose ends differ.

    ``neighbours`` (rows: the neighbours of each cell) skips building the graph again.
    """
    if neighbours is None:
        neighbours = nearest_neighbours(latent, n_neighbors)
    return float((labels[neighbours] != labels[:, None]).mean())


def nearest_neighbours(latent: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Return the indices of each row's ``n_neighbors`` nearest other rows, ``(n, k)``."""
    from sklearn.neighbors import NearestNeighbors

    k = min(n_neighbors, latent.shape[0] - 1)
    return NearestNeighbors(n_neighbors=k + 1).fit(latent).kneighbors(latent)[1][:, 1:]


def within_sum_of_squares(latent: np.ndarray, labels: np.ndarray) -> float:
    """Sum over clusters of the squared distances of their cells to their mean."""
    return float(
        sum(
            ((latent[labels == k] - latent[labels == k].mean(0)) ** 2).sum()
            for k in np.unique(labels)
        )
    )


def _best_partition(latent: np.ndarray, candidates: dict, n_neighbors: int) -> str:
    if len(candidates) == 1:
        return next(iter(candidates))
    neighbours = nearest_neighbours(latent, n_neighbors)
    cuts = {
        name: cut_fraction(latent, labels, neighbours=neighbours)
        for name, labels in candidates.items()
    }
    tied = [name for name, cut in cuts.items() if cut <= min(cuts.values()) + CUT_TOLERANCE]
    return min(tied, key=lambda name: within_sum_of_squares(latent, candidates[name]))


def kmeans_labels(latent: np.ndarray, n_clusters: int, seed: int | None) -> np.ndarray:
    """k-means (10 restarts) labels of the rows of ``latent``."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(latent)


def _umap_gmm_labels(
    latent: np.ndarray, n_clusters: int, seed: int | None, n_neighbors: int
) -> np.ndarray:
    from sklearn.mixture import GaussianMixture
    from umap import UMAP

    embedding = UMAP(
        n_components=n_clusters,
        n_neighbors=n_neighbors,
        min_dist=0.0,
        random_state=seed,
        n_jobs=1,
    ).fit_transform(latent)
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
