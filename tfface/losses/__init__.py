"""tfface.losses: triplet losses (plain functions + thin Keras Loss classes) and distances."""

from tfface.losses import distances
from tfface.losses import mining
from tfface.losses.triplet_batch_all_loss import TripletBatchAllLoss
from tfface.losses.triplet_batch_all_loss import triplet_batch_all_loss
from tfface.losses.triplet_hard_loss import TripletHardLoss
from tfface.losses.triplet_hard_loss import triplet_hard_loss
from tfface.losses.triplet_semihard_loss import TripletSemiHardLoss
from tfface.losses.triplet_semihard_loss import triplet_semihard_loss

__all__ = [
    "TripletBatchAllLoss",
    "TripletHardLoss",
    "TripletSemiHardLoss",
    "distances",
    "mining",
    "triplet_batch_all_loss",
    "triplet_hard_loss",
    "triplet_semihard_loss",
]
