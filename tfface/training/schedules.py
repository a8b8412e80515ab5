"""Learning-rate schedules (linear warm-up + cosine / piecewise / constant) and optimizers."""

import keras

from tfface.api_export import tfface_export
from tfface.training.choices import OPTIMIZERS
from tfface.training.choices import SCHEDULES


@tfface_export("tfface.training.WarmupSchedule")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `learning_rate`, then cosine, piecewise or constant.

    Args:
        learning_rate: peak learning rate (after warm-up).
        total_steps: number of training steps (the cosine reaches `min_fraction` there).
        warmup_steps: steps of linear warm-up; 0 disables it.
        decay: `"cosine"`, `"piecewise"` or `"constant"`.
        boundaries: fractions of `total_steps` at which the piecewise schedule multiplies
            the rate by `decay_factor` (e.g. `(0.5, 0.75)`).
        decay_factor: piecewise multiplier.
        min_fraction: cosine floor as a fraction of `learning_rate`.

    Example:
    >>> s = WarmupSchedule(0.1, total_steps=100, warmup_steps=10)
    >>> round(float(s(5)), 3), round(float(s(10)), 3)
    (0.05, 0.1)
    """

    def __init__(
        self,
        learning_rate,
        total_steps,
        warmup_steps=0,
        decay="cosine",
        boundaries=(0.5, 0.75),
        decay_factor=0.1,
        min_fraction=0.0,
    ):
        if learning_rate <= 0:
            raise ValueError(
                f"`learning_rate` must be > 0. Received: learning_rate={learning_rate}"
            )
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be >= 1. Received: total_steps={total_steps}")
        if warmup_steps < 0 or (warmup_steps > 0 and warmup_steps >= total_steps):
            raise ValueError(
                "`warmup_steps` must be >= 0 and < total_steps. "
                f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        if decay not in SCHEDULES:
            raise ValueError(f"`decay` must be one of {SCHEDULES}. Received: decay={decay!r}")
        if any(not 0 < b < 1 for b in boundaries) or list(boundaries) != sorted(boundaries):
            raise ValueError(
                "`boundaries` must be increasing fractions in (0, 1). "
                f"Received: boundaries={boundaries}"
            )
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.boundaries = tuple(float(b) for b in boundaries)
        self.decay_factor = float(decay_factor)
        self.min_fraction = float(min_fraction)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        lr = keras.ops.convert_to_tensor(self.learning_rate, "float32")
        if self.decay == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            cosine = 0.5 * (1.0 + keras.ops.cos(3.141592653589793 * progress))
            decayed = lr * (self.min_fraction + (1.0 - self.min_fraction) * cosine)
        elif self.decay == "piecewise":
            decayed = lr
            for b in self.boundaries:
                decayed = keras.ops.where(
                    step >= b * self.total_steps, decayed * self.decay_factor, decayed
                )
        else:
            decayed = lr
        if self.warmup_steps > 0:
            warm = lr * step / self.warmup_steps
            decayed = keras.ops.where(step < self.warmup_steps, warm, decayed)
        return decayed

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "boundaries": self.boundaries,
            "decay_factor": self.decay_factor,
            "min_fraction": self.min_fraction,
        }


def make_optimizer(name, learning_rate, weight_decay=0.0, momentum=0.9, mixed_precision=False):
    """Builds a Keras optimizer; call it inside `strategy.scope()`.

    Args:
        name: `"sgd"` (with `momentum`), `"adam"` or `"adamw"`.
        learning_rate: a float or a `LearningRateSchedule`.
        weight_decay: decoupled weight decay applied by the optimizer; 0 means none.
        momentum: SGD momentum.
        mixed_precision: wrap in `keras.optimizers.LossScaleOptimizer`.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={name!r}")
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay}")
    wd = weight_decay or None
    if name == "sgd":
        opt = keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=wd)
    elif name == "adam":
        opt = keras.optimizers.Adam(learning_rate, weight_decay=wd)
    else:
        opt = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    if mixed_precision:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt
