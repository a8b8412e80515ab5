"""`TrainConfig`: every knob of a training run, validated in one place."""

import dataclasses

from tfface.training.objective import LOSSES
from tfface.training.objective import MINING
from tfface.training.objective import MINING_SCOPES
from tfface.training.schedules import OPTIMIZERS
from tfface.training.schedules import SCHEDULES
from tfface.training.strategy import STRATEGIES


@dataclasses.dataclass
class TrainConfig:
    """Configuration of a training run (train.py builds one from its flags).

    `steps` wins over `epochs` when both are set; an epoch is
    ceil(num_training_images / global_batch) steps.
    """

    loss: str = "triplet"
    mining: str = "semihard"
    mining_scope: str = "global"
    triplet_margin: float = 0.2
    distance_metric: str = "squared-L2"
    head_kwargs: dict = dataclasses.field(default_factory=dict)
    center_weight: float = 0.01
    center_alpha: float = 0.5
    data: str = "synthetic"
    backbone: str = "small_cnn"
    embedding_dim: int = 128
    image_size: int = 64
    identities_per_batch: int = 32
    images_per_identity: int = 4
    augment: bool = True
    steps: int = 0
    epochs: int = 0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    momentum: float = 0.9
    mixed_precision: bool = False
    strategy: str = "auto"
    model_dir: str = "runs/default"
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 20
    seed: int = 0
    deterministic: bool = False

    def validate(self):
        """Raises `ValueError` naming the first invalid field."""
        choices = {
            "loss": LOSSES,
            "mining": MINING,
            "mining_scope": MINING_SCOPES,
            "optimizer": OPTIMIZERS,
            "lr_schedule": SCHEDULES,
            "strategy": STRATEGIES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}. Received: {name}={value!r}")
        positive = (
            "embedding_dim",
            "image_size",
            "identities_per_batch",
            "images_per_identity",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        for name in ("steps", "epochs", "warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")
        if self.steps == 0 and self.epochs == 0:
            raise ValueError("Set `steps` or `epochs` (> 0). Received: steps=0, epochs=0")
        if self.learning_rate <= 0:
            raise ValueError(
                f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}"
            )
        if self.loss == "triplet" and self.images_per_identity < 2:
            raise ValueError(
                "Triplet loss needs at least two images per identity in a batch. "
                f"Received: images_per_identity={self.images_per_identity}"
            )
        if self.triplet_margin < 0:
            raise ValueError(
                f"`triplet_margin` must be >= 0. Received: triplet_margin={self.triplet_margin}"
            )
        return self

    @property
    def global_batch_size(self):
        return self.identities_per_batch * self.images_per_identity
