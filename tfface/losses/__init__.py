"""tfface.losses: triplet losses (plain functions + thin Keras Loss classes) and distances."""

from tfface.losses import distances  # noqa: F401
from tfface.losses import mining  # noqa: F401
from tfface.losses.triplet_batch_all_loss import TripletBatchAllLoss  # noqa: F401
from tfface.losses.triplet_batch_all_loss import triplet_batch_all_loss  # noqa: F401
from tfface.losses.triplet_hard_loss import TripletHardLoss  # noqa: F401
from tfface.losses.triplet_hard_loss import triplet_hard_loss  # noqa: F401
from tfface.losses.triplet_semihard_loss import TripletSemiHardLoss  # noqa: F401
from tfface.losses.triplet_semihard_loss import triplet_semihard_loss  # noqa: F401
