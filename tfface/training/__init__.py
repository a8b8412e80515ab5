"""tfface.training: the custom training loop (strategy set-up, global mining, checkpoints).

- `make_strategy(name)`: "auto" | "one_device" | "mirrored" | "multi_worker".
- `TrainConfig`: every knob of a run; `Trainer(config)`: the loop; `train_and_evaluate`:
  train → held-out verification next to baselines → SavedModel export (what train.py runs).
- `Objective`: the per-replica loss (margin heads, center loss, triplet mining on the
  all-gathered global batch); `LOSSES`: the losses of the head table (`heads`).
- `PartialFC`: a margin head sharded over the replicas with negative sampling
  (`train.py --partial_fc=r`).

Modules, TF-free first (train.py checks its flags, config and data with them before
TensorFlow loads): `choices` (the names of strategies, optimizers, schedules, mining
scopes, distances), `heads` (the head table), `schema` (`TrainConfig`), `flags` (train.py's
absl flags), `preflight` (the checks before any work), `run_dir` (config.json,
revision.txt, resume rules), `errors`. With TensorFlow: `strategy`, `schedules`,
`objective`, `partial_fc`, `signals`, `checkpoints`, `trainer` (the loop), `pipeline`
(`train_and_evaluate`).
"""

from tfface._lazy import lazy_getattr

# Names load on first access, so that importing `tfface.training.schema` (train.py's
# flag checks) does not import TensorFlow.
_EXPORTS = {
    "LOSSES": "heads",
    "NonFiniteLossError": "errors",
    "Objective": "objective",
    "PartialFC": "partial_fc",
    "TrainConfig": "schema",
    "Trainer": "trainer",
    "TrainingInterrupted": "errors",
    "WarmupSchedule": "schedules",
    "all_gather_with_gradient": "objective",
    "make_optimizer": "schedules",
    "make_strategy": "strategy",
    "train_and_evaluate": "pipeline",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
