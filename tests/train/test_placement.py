import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from cgmvae.metrics import clustering_accuracy
from cgmvae.nn.priors import MixturePrior
from cgmvae.train.placement import (
    check_placement,
    cluster_latent,
    consensus_partition,
    cut_fraction,
    leiden_labels,
    leiden_with_k,
    match_labelled_clusters,
    placement_rows,
    split_clusters,
    spread_labels,
)


def tilted_bars(n_per_bar: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three long parallel bars at 45°, closer to each other than they are long."""
    rng = np.random.default_rng(seed)
    bars = np.repeat(np.arange(3), n_per_bar)
    along = rng.uniform(0, 20, size=bars.size)
    across = 2.0 * bars + rng.normal(scale=0.15, size=bars.size)
    rotation = np.array([[1.0, -1.0], [1.0, 1.0]]) / np.sqrt(2)
    return np.stack([along, across], 1) @ rotation.T, bars


def test_manifold_placement_follows_elongated_clusters_that_kmeans_cuts():
    latent, bars = tilted_bars()
    by_kmeans = cluster_latent(latent, 3, "kmeans")
    by_umap = cluster_latent(latent, 3, "umap")
    assert clustering_accuracy(bars, by_kmeans) < 0.8
    assert clustering_accuracy(bars, by_umap) > 0.95


def test_placement_without_a_seed_works_when_scvi_settings_seed_is_unset():
    latent, bars = tilted_bars()
    assert clustering_accuracy(bars, cluster_latent(latent, 3, "umap", seed=None)) > 0.95


def test_auto_placement_keeps_kmeans_on_compact_blobs_and_umap_on_elongated_clusters():
    rng = np.random.default_rng(0)
    blobs = np.repeat(np.arange(4), 60)
    compact = np.eye(4)[blobs] * 20 + rng.normal(size=(240, 4))
    assert clustering_accuracy(blobs, cluster_latent(compact, 4, "auto")) == 1.0
    latent, bars = tilted_bars()
    assert clustering_accuracy(bars, cluster_latent(latent, 3, "auto")) > 0.95
    assert cut_fraction(latent, bars) < cut_fraction(latent, cluster_latent(latent, 3, "kmeans"))


def test_auto_placement_leaves_kmeans_only_for_a_partition_that_cuts_clearly_fewer_edges(
    monkeypatch,
):
    import cgmvae.train.placement.partition as partition

    latent, bars = tilted_bars()
    by_kmeans = cluster_latent(latent, 3, "kmeans")
    kmeans_cut, bars_cut = cut_fraction(latent, by_kmeans), cut_fraction(latent, bars)
    assert bars_cut < partition.CUT_RATIO * kmeans_cut

    def rival_cutting(target: float):
        """Labels that cut about ``target`` of the edges: the bars, some cells moved."""
        labels, rng = bars.copy(), np.random.default_rng(0)
        while cut_fraction(latent, labels) < target:
            labels[rng.integers(len(labels), size=5)] = rng.integers(3, size=5)
        return lambda *args, **kwargs: labels

    monkeypatch.setitem(partition.PARTITIONS, "kmeans", lambda *args, **kwargs: by_kmeans)
    monkeypatch.setitem(partition.PARTITIONS, "umap", rival_cutting(bars_cut))
    assert (cluster_latent(latent, 3, "auto") != by_kmeans).any()  # clearly fewer: the rival
    monkeypatch.setitem(partition.PARTITIONS, "umap", rival_cutting(0.9 * kmeans_cut))
    assert (cluster_latent(latent, 3, "auto") == by_kmeans).all()  # a near tie: k-means


def posterior_accuracy(prior: MixturePrior, latent: np.ndarray, truth: np.ndarray) -> float:
    z = torch.as_tensor(latent, dtype=torch.float32)
    kl = prior.component_kl(z, torch.full_like(z, 1e-3))
    probs = prior.to_clusters(torch.softmax(prior.component_posterior_logits(kl), -1))
    return clustering_accuracy(truth, probs.argmax(1).numpy())


def test_several_components_per_cluster_keep_the_placed_partition():
    latent, bars = tilted_bars()
    one, four = (MixturePrior(3, 2, components_per_cluster=m) for m in (1, 4))
    one.initialize(latent, bars)
    four.initialize(latent, split_clusters(latent, bars, 3, 4))
    assert posterior_accuracy(one, latent, bars) < 0.9
    assert posterior_accuracy(four, latent, bars) > 0.97


def test_placement_clusters_a_subsample_of_large_data():
    rows = placement_rows(1000, 100, seed=0)
    assert rows.shape == (100,) and np.unique(rows).size == 100 and rows.max() < 1000
    assert np.array_equal(placement_rows(50, 100, seed=0), np.arange(50))


def test_large_placements_use_exact_neighbours_not_pynndescent(monkeypatch):
    """pynndescent recompiles in every process; from 4,096 (UMAP) and 8,192 (scanpy) rows the
    placement hands both exact neighbours instead, and still finds the clusters."""
    import pynndescent

    from cgmvae.cached_umap import umap_class

    umap_class()  # umap-learn imported with numba's cache, as the placement does
    import umap.umap_

    def refuse(*args, **kwargs):
        raise AssertionError("pynndescent was used")

    monkeypatch.setattr(umap.umap_, "nearest_neighbors", refuse)
    monkeypatch.setattr(pynndescent, "PyNNDescentTransformer", refuse)
    blobs = np.repeat(np.arange(3), 2800)
    points = 10.0 * np.eye(3)[blobs] + np.random.default_rng(0).normal(size=(blobs.size, 3))
    assert adjusted_rand_score(blobs, leiden_labels(points, 3)) == 1.0
    half = slice(None, None, 2)
    assert adjusted_rand_score(blobs[half], cluster_latent(points[half], 3, "umap")) == 1.0


def test_leiden_placement_follows_elongated_clusters_with_exactly_k_groups():
    latent, bars = tilted_bars()
    by_leiden = cluster_latent(latent, 3, "leiden")
    assert np.unique(by_leiden).size == 3
    assert clustering_accuracy(bars, by_leiden) > 0.95
    assert cut_fraction(latent, by_leiden) <= cut_fraction(latent, bars) + 0.01


def test_leiden_without_a_resolution_for_k_says_so_and_placement_falls_back_to_kmeans():
    latent, _ = tilted_bars(n_per_bar=20)
    assert leiden_labels(latent, 50, seed=0) is None  # 60 points, 15 neighbours each
    fallback = cluster_latent(latent, 50, "leiden")
    assert np.array_equal(fallback, cluster_latent(latent, 50, "kmeans"))


def test_leiden_with_k_leaves_the_graph_anndata_as_it_was():
    import anndata
    import scanpy as sc

    latent, _ = tilted_bars()
    graph = anndata.AnnData(latent.astype(np.float32))
    sc.pp.neighbors(graph, use_rep="X")
    communities = leiden_with_k(graph, 3, seed=0)
    assert communities.nunique() == 3 and list(communities.index) == list(graph.obs_names)
    assert "leiden" not in graph.obs and "leiden" not in graph.uns


def test_unknown_placement_names_the_choices():
    with pytest.raises(ValueError, match=r"'auto'.*'umap'.*'kmeans'.*'leiden'"):
        check_placement("spectral")


def test_labelled_classes_take_the_group_nearest_to_their_cells():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 50)
    latent = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])[truth] + rng.normal(size=(150, 2))
    groups = np.array([2, 0, 1])[truth]  # the clustering numbers the groups differently
    labelled = np.zeros(150, dtype=bool)
    labelled[[0, 1, 50, 51]] = True  # a few labelled cells of classes 0 and 1 only
    targets = np.eye(3)[truth] * labelled[:, None]
    clusters, anchors = match_labelled_clusters(latent, groups, targets, labelled)
    assert np.array_equal(clusters, truth)
    assert set(anchors) == {0, 1}
    np.testing.assert_allclose(anchors[0], latent[[0, 1]].mean(0))


def test_consensus_keeps_the_grouping_most_partitions_agree_on():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 50)
    second_half = np.tile(np.arange(50) >= 25, 4)
    partitions = []
    for restart in range(7):
        names = rng.permutation(4)
        labels = names[truth]  # the same grouping under other names
        if restart % 2:  # three of seven restarts merge groups 0 and 1 and split group 3
            labels[truth == 1] = names[0]
            labels[(truth == 3) & second_half] = names[1]
        partitions.append(labels)
    consensus = consensus_partition(partitions, 4, seed=0)
    assert adjusted_rand_score(truth, consensus) == 1.0


def test_spread_labels_follow_the_labelled_classes_where_kmeans_cuts_across():
    latent, bars = tilted_bars()
    labelled = np.random.default_rng(0).random(len(bars)) < 0.05
    targets = np.eye(3)[bars] * labelled[:, None]
    assert (spread_labels(latent, targets, labelled) == bars).mean() > 0.97
    assert clustering_accuracy(bars, cluster_latent(latent, 3, "kmeans")) < 0.8
    unlabelled_class = np.pad(targets, ((0, 0), (0, 1)))  # a fourth class with no labels
    assert spread_labels(latent, unlabelled_class, labelled) is None
