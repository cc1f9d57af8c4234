"""The training plan, the placement of mixtures and condition effects, checkpoints, DDP."""

from cgmvae.train.blocks import BlockBatchSampler, BlockDataSplitter
from cgmvae.train.checkpoints import PeriodicCheckpoint
from cgmvae.train.distributed import share_from_rank_zero
from cgmvae.train.epoch_metrics import EpochTotals
from cgmvae.train.learning_rate import ScaleLearningRate
from cgmvae.train.placement import (
    PlaceConditionEffect,
    PlaceMixture,
    cluster_latent,
    consensus_partition,
    cut_fraction,
    leiden_labels,
    leiden_with_k,
)
from cgmvae.train.plan import AutoencoderTrainingPlan

__all__ = [
    "AutoencoderTrainingPlan",
    "BlockBatchSampler",
    "BlockDataSplitter",
    "EpochTotals",
    "PeriodicCheckpoint",
    "PlaceConditionEffect",
    "PlaceMixture",
    "ScaleLearningRate",
    "cluster_latent",
    "consensus_partition",
    "cut_fraction",
    "leiden_labels",
    "leiden_with_k",
    "share_from_rank_zero",
]
