"""tfface.training: the custom training loop (strategy set-up, global mining, checkpoints).

- `make_strategy(name)`: "auto" | "one_device" | "mirrored" | "multi_worker".
- `TrainConfig`: every knob of a run; `Trainer(config)`: the loop; `train_and_evaluate`:
  train → held-out verification next to baselines → SavedModel export (what train.py runs).
- `Objective`: the per-replica loss (margin heads, center loss, triplet mining on the
  all-gathered global batch).
"""

from tfface.training.config import TrainConfig
from tfface.training.objective import LOSSES
from tfface.training.objective import Objective
from tfface.training.objective import all_gather_with_gradient
from tfface.training.pipeline import train_and_evaluate
from tfface.training.schedules import WarmupSchedule
from tfface.training.schedules import make_optimizer
from tfface.training.strategy import make_strategy
from tfface.training.trainer import NonFiniteLossError
from tfface.training.trainer import Trainer

__all__ = [
    "LOSSES",
    "NonFiniteLossError",
    "Objective",
    "TrainConfig",
    "Trainer",
    "WarmupSchedule",
    "all_gather_with_gradient",
    "make_optimizer",
    "make_strategy",
    "train_and_evaluate",
]
