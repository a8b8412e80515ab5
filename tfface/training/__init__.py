"""tfface.training: the custom training loop (strategy set-up, global mining, checkpoints).

- `make_strategy(name)`: "auto" | "one_device" | "mirrored" | "multi_worker".
- `TrainConfig`: every knob of a run; `Trainer(config)`: the loop; `train_and_evaluate`:
  train → held-out verification next to baselines → SavedModel export (what train.py runs).
- `Objective`: the per-replica loss (margin heads, center loss, triplet mining on the
  all-gathered global batch).
"""

from tfface.training.config import TrainConfig  # noqa: F401
from tfface.training.objective import LOSSES  # noqa: F401
from tfface.training.objective import Objective  # noqa: F401
from tfface.training.objective import all_gather_with_gradient  # noqa: F401
from tfface.training.pipeline import train_and_evaluate  # noqa: F401
from tfface.training.schedules import WarmupSchedule  # noqa: F401
from tfface.training.schedules import make_optimizer  # noqa: F401
from tfface.training.strategy import make_strategy  # noqa: F401
from tfface.training.trainer import NonFiniteLossError  # noqa: F401
from tfface.training.trainer import Trainer  # noqa: F401
