"""Where a model's mixture and condition effects start: placement from the data.

- :mod:`~cgmvae.train.placement.partition`: the clustering methods (one table,
  :data:`~cgmvae.train.placement.partition.PARTITIONS`) that the first placement
  (``cluster_placement``: ``"auto"``, ``"kmeans"``, ``"umap"``, ``"leiden"``) and the second
  (``cluster_refine``, by Leiden) share;
- :mod:`~cgmvae.train.placement.pseudo_bulk`: counts summed per (group, condition), from
  which the condition effects are estimated;
- the callbacks :class:`PlaceMixture` and :class:`PlaceConditionEffect`, which call the
  module's public placement methods only (``place_mixture``, ``place_shared_effect``, ...).
"""

from cgmvae.train.placement.effect import PlaceConditionEffect
from cgmvae.train.placement.mixture import PlaceMixture
from cgmvae.train.placement.partition import (
    PARTITIONS,
    check_placement,
    cluster_latent,
    consensus_partition,
    cut_fraction,
    kmeans_labels,
    leiden_labels,
    leiden_with_k,
    match_labelled_clusters,
    placement_rows,
    split_clusters,
    spread_labels,
    umap_gmm_labels,
)
from cgmvae.train.placement.pseudo_bulk import every_condition_observed, pool_groups

__all__ = [
    "PARTITIONS",
    "PlaceConditionEffect",
    "PlaceMixture",
    "check_placement",
    "cluster_latent",
    "consensus_partition",
    "cut_fraction",
    "every_condition_observed",
    "kmeans_labels",
    "leiden_labels",
    "leiden_with_k",
    "match_labelled_clusters",
    "placement_rows",
    "pool_groups",
    "split_clusters",
    "spread_labels",
    "umap_gmm_labels",
]
