"""`TrainConfig`: every knob of a training run, its defaults, the per-loss policy, its checks.

A run's configuration is resolved in the tensorflow/models order: the defaults below →
`--config=FILE` (JSON with the sections below; a run's own `config.json` is one; read by
`load_config_file`) → the command-line flags (`tfface.training.flags`). Fields left None
are then filled by the per-loss policy of the head table (`tfface.training.heads`): the
default data, steps, mining, head settings and model_dir.

This module imports neither TensorFlow nor Keras: train.py resolves and checks the config
before TensorFlow loads. The checks here concern the config alone; what it names outside
itself (files, backbone, head layer) is checked by `tfface.training.preflight`, and the
run directory (config.json, resume) by `tfface.training.run_dir`.
"""

import dataclasses
import json
import os

from tfface.training import heads
from tfface.training.choices import DISTANCE_METRICS
from tfface.training.choices import MINING_SCOPES
from tfface.training.choices import OPTIMIZERS
from tfface.training.choices import SCHEDULES
from tfface.training.choices import STRATEGIES

SECTIONS = ("data", "model", "objective", "optimizer", "run", "evaluation", "export")
DEFAULT_STEPS = 300
DEFAULT_LEARNING_RATE = 1e-3
# Fine-tuning defaults (`--pretrained` runs that leave these unset), chosen by the sweep in
# BUILD_NOTES.md ("Fine-tuning defaults"): at 1e-3 the dlib model collapses in one step.
FINETUNE_LEARNING_RATE = 1e-5
FINETUNE_WARMUP_FRACTION = 0.1  # of the steps, linear warm-up
# `eval_data` of a run on the user's own data: an identity-disjoint split of it.
SPLIT_EVAL_DATA = "split"
# The losses that mine their pairs in the batch (the only ones `mining` applies to).
_MINING_LOSSES = tuple(spec for spec in heads.HEADS.values() if spec.mines)


def _field(default, section, help, choices=None, resume_free=False, flag=True):
    """A config field. `resume_free`: may change on resume (does not shape the weights)."""
    metadata = {
        "section": section,
        "help": help,
        "choices": choices,
        "resume_free": resume_free,
        "flag": flag,
    }
    if isinstance(default, dict):
        return dataclasses.field(default_factory=dict, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """Configuration of a training run (train.py builds one from `--config` and its flags).

    None means "the per-loss policy decides" and is filled on construction from the
    loss's `HeadSpec`: `data` (its default training data), `mining` (its default mining,
    "semihard" for triplet; None for the heads), `steps` (`DEFAULT_STEPS` unless
    `epochs`), `model_dir` (runs/<run name>: runs/<loss>, runs/triplet-<mining>);
    `head_kwargs` start from the loss's defaults. An epoch is
    ceil(num_training_images / global_batch) steps.
    """

    # === data ===
    data: str = _field(
        None,
        "data",
        "Training data: synthetic, synthetic:N, folder:PATH, tfrecord:GLOB, rec:PATH, "
        f"tfds:NAME. Default: {heads.TRIPLET_DATA} (10,000 identities) for triplet, "
        f"{heads.HEAD_DATA} for the others.",
    )
    identities_per_batch: int = _field(32, "data", "P identities per global batch.")
    images_per_identity: int = _field(4, "data", "K images per identity.")
    augment: bool = _field(True, "data", "Training augmentation.")
    # === model ===
    backbone: str = _field("small_cnn", "model", "Backbone name (tfface.models.list_backbones()).")
    embedding_dim: int = _field(128, "model", "Embedding size D.")
    image_size: int = _field(64, "model", "Square input size S.")
    pretrained: bool = _field(
        False,
        "model",
        "Start from the backbone's published weights (tfface.models.list_pretrained(); "
        "dlib_resnet_v1: --image_size=150 --embedding_dim=128).",
    )
    trainable_blocks: int = _field(
        None,
        "model",
        "With --pretrained: train only the last N residual blocks and the final layer "
        "(default: every layer).",
    )
    freeze_batchnorm: bool = _field(
        None,
        "model",
        "Run the backbone's BatchNormalization layers in inference mode with frozen "
        "statistics (default: True with --pretrained, else False).",
    )
    mixed_precision: bool = _field(
        False, "model", "mixed_float16 with loss scaling (logits float32)."
    )
    # === objective ===
    loss: str = _field("triplet", "objective", "Training objective.", choices=heads.LOSSES)
    mining: str = _field(
        None,
        "objective",
        "In-batch mining of "
        + ", ".join(f"--loss={s.name} (default {s.default_mining})" for s in _MINING_LOSSES)
        + "; an error with the other losses.",
        heads.MINING,
    )
    mining_scope: str = _field(
        "global",
        "objective",
        "Mine on the all-gathered global batch or per replica.",
        MINING_SCOPES,
    )
    triplet_margin: float = _field(
        0.2, "objective", "Triplet margin α (FaceNet: 0.2 on squared L2)."
    )
    distance_metric: str = _field("squared-L2", "objective", "Triplet distance.", DISTANCE_METRICS)
    head_kwargs: dict = _field(
        {},
        "objective",
        "Margin-head layer arguments over the loss's defaults (flags: --scale, --margin, "
        "--margins).",
        flag=False,
    )
    center_weight: float = _field(0.01, "objective", "Center loss weight λ (loss=center).")
    center_alpha: float = _field(0.5, "objective", "Center update rate α (loss=center).")
    partial_fc: float = _field(
        0.0,
        "objective",
        "Partial FC sampling rate r in (0, 1]: class centres sharded over the replicas, "
        "negatives sampled (margin heads; 0: the replicated head).",
    )
    # === optimizer ===
    optimizer: str = _field("adam", "optimizer", "Optimizer.", OPTIMIZERS)
    learning_rate: float = _field(
        None,
        "optimizer",
        f"Peak learning rate (default {DEFAULT_LEARNING_RATE:g}; {FINETUNE_LEARNING_RATE:g} "
        "with --pretrained).",
    )
    lr_schedule: str = _field("cosine", "optimizer", "Decay after warm-up.", SCHEDULES)
    warmup_steps: int = _field(
        None,
        "optimizer",
        "Linear warm-up steps (default 0; with --pretrained "
        f"{FINETUNE_WARMUP_FRACTION:.0%} of the steps).",
    )
    weight_decay: float = _field(0.0, "optimizer", "Decoupled weight decay.")
    momentum: float = _field(0.9, "optimizer", "SGD momentum.")
    accumulate_steps: int = _field(
        1,
        "optimizer",
        "Run each global batch as N sequential micro-batches per replica and apply their "
        "averaged gradients once (the update equals the whole batch's; BatchNorm statistics "
        "see micro-batches). Not with a mining loss.",
        resume_free=True,
    )
    clip_norm: float = _field(
        None,
        "optimizer",
        "Clip the update to this global norm: the gradient all-reduced over replicas, after "
        "loss-scale unscaling (default: no clipping).",
    )
    # === run ===
    steps: int = _field(None, "run", f"Training steps (default {DEFAULT_STEPS} unless --epochs).")
    epochs: int = _field(0, "run", "Epochs over the training images (if --steps is unset).")
    strategy: str = _field("auto", "run", "tf.distribute strategy.", STRATEGIES, resume_free=True)
    model_dir: str = _field(
        None,
        "run",
        "Checkpoints, TensorBoard, reports, config.json (default runs/<loss>, "
        "runs/<loss>-<mining> for a mining loss such as triplet).",
        resume_free=True,
    )
    checkpoint_every: int = _field(
        100, "run", "Save a checkpoint every N steps (and at the end).", resume_free=True
    )
    keep_checkpoints: int = _field(
        3, "run", "How many recent checkpoints to keep.", resume_free=True
    )
    log_every: int = _field(
        20, "run", "Console/TensorBoard logging interval in steps.", resume_free=True
    )
    seed: int = _field(0, "run", "Seed of initialisation, sampling, augmentation, held-out pairs.")
    deterministic: bool = _field(False, "run", "tf.config.experimental.enable_op_determinism.")
    jit: bool = _field(
        False,
        "run",
        "XLA-compile each replica's forward and backward pass (tf.function jit_compile).",
        resume_free=True,
    )
    # === evaluation ===
    evaluate: bool = _field(
        True, "evaluation", "Run the held-out verification (needed for export).", resume_free=True
    )
    eval_data: str = _field(
        None,
        "evaluation",
        "Held-out pairs: synthetic (held-out synthetic identities), split (an "
        "identity-disjoint split of --data, held out from training), bin:PATH, "
        "lfw:PAIRS_TXT,IMAGES_DIR[,EXT] (EXT: image extension, default jpg). Default: "
        "synthetic for synthetic --data, else split.",
        resume_free=True,
    )
    eval_every: int = _field(
        0,
        "evaluation",
        "Also evaluate every N steps (0: before and after only).",
        resume_free=True,
    )
    # === export ===
    export: bool = _field(True, "export", "Export a SavedModel at the end.", resume_free=True)
    export_dir: str = _field(
        None, "export", "SavedModel base dir (default <model_dir>/export).", resume_free=True
    )

    def __post_init__(self):
        # The per-loss policy; an unknown loss is left for validate() to report.
        spec = heads.HEADS.get(self.loss)
        if self.data is None:
            self.data = spec.data if spec else heads.HEAD_DATA
        if self.mining is None and spec is not None:
            self.mining = spec.default_mining
        if self.steps is None:
            self.steps = 0 if self.epochs else DEFAULT_STEPS
        if self.learning_rate is None:
            self.learning_rate = (
                FINETUNE_LEARNING_RATE if self.pretrained else DEFAULT_LEARNING_RATE
            )
        if self.warmup_steps is None:
            # Fine-tuning: the first updates meet a head/loss the features were not made
            # for; a warm-up keeps them small. Decided on the steps given (epochs: none).
            warm = int(FINETUNE_WARMUP_FRACTION * self.steps) if self.pretrained else 0
            self.warmup_steps = warm if _is_int(self.steps) and warm < self.steps else 0
        if self.freeze_batchnorm is None:
            self.freeze_batchnorm = bool(self.pretrained)
        if self.eval_data is None:
            synthetic = isinstance(self.data, str) and self.data.split(":")[0] == "synthetic"
            self.eval_data = "synthetic" if synthetic else SPLIT_EVAL_DATA
        if self.model_dir is None:
            name = spec.run_name(self.mining) if spec else self.loss
            self.model_dir = os.path.join("runs", name)
        if spec is not None and spec.margin_head:
            self.head_kwargs = {**spec.defaults, **(self.head_kwargs or {})}
        else:
            self.head_kwargs = dict(self.head_kwargs or {})

    def validate(self):
        """Raises `ValueError` naming the first invalid field; returns self."""
        for field in dataclasses.fields(self):
            allowed = field.metadata.get("choices")
            value = getattr(self, field.name)
            if allowed is not None and value is not None and value not in allowed:
                raise ValueError(
                    f"`{field.name}` must be one of {allowed}. Received: {field.name}={value!r}"
                )
        spec = heads.HEADS[self.loss]
        if spec.mines and self.mining not in spec.mining:
            raise ValueError(
                f"`mining` must be one of {tuple(spec.mining)} for loss={self.loss!r}. "
                f"Received: mining={self.mining!r}"
            )
        if not spec.mines and self.mining is not None:
            losses = " or ".join(f"loss={s.name!r}" for s in _MINING_LOSSES)
            raise ValueError(
                f"`mining` applies to {losses} only. Received: loss={self.loss!r}, "
                f"mining={self.mining!r}"
            )
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
            if not _is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        for name in ("steps", "epochs", "warmup_steps", "eval_every", "seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")
        if self.steps == 0 and self.epochs == 0:
            raise ValueError("Set `steps` or `epochs` (> 0). Received: steps=0, epochs=0")
        if self.steps and self.epochs:
            raise ValueError(
                f"Give `steps` or `epochs`, not both. Received: steps={self.steps}, "
                f"epochs={self.epochs}"
            )
        if not _is_int(self.accumulate_steps) or self.accumulate_steps < 1:
            raise ValueError(
                "`accumulate_steps` must be a positive int. "
                f"Received: accumulate_steps={self.accumulate_steps!r}"
            )
        if self.accumulate_steps > 1:
            if spec.mines:
                # The mining loss of the whole batch is not a sum over micro-batches: each
                # would mine only its own 1/N of the batch, a different (weaker) objective.
                raise ValueError(
                    f"`accumulate_steps` cannot be used with loss={self.loss!r}: its mining "
                    "would see only one micro-batch of the global batch, not the whole batch. "
                    f"Received: accumulate_steps={self.accumulate_steps}, loss={self.loss!r}"
                )
            if self.global_batch_size % self.accumulate_steps:
                raise ValueError(
                    "The global batch (identities_per_batch × images_per_identity = "
                    f"{self.global_batch_size}) must be divisible by `accumulate_steps`. "
                    f"Received: accumulate_steps={self.accumulate_steps}"
                )
        if self.clip_norm is not None and (
            isinstance(self.clip_norm, bool)
            or not isinstance(self.clip_norm, (int, float))
            or not 0 < self.clip_norm < float("inf")
        ):
            raise ValueError(
                f"`clip_norm` must be a finite number > 0. Received: clip_norm={self.clip_norm!r}"
            )
        big_batch = {
            "accumulate_steps": self.accumulate_steps > 1,
            "clip_norm": self.clip_norm is not None,
            "jit": self.jit,
        }
        used = [name for name, on in big_batch.items() if on]
        if self.partial_fc and used:
            # Partial FC updates its sampled centre rows apart from the other gradients (and
            # all-gathers in the forward pass): accumulation, the global norm and the
            # compiled replica function do not cover them yet.
            given = ", ".join(f"{name}={getattr(self, name)!r}" for name in used)
            raise ValueError(
                f"{', '.join(f'`{n}`' for n in used)}: not with `partial_fc` yet. "
                f"Received: partial_fc={self.partial_fc}, {given}"
            )
        if not self.learning_rate > 0:
            raise ValueError(
                f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}"
            )
        if spec.mines:
            # Mining draws positives and negatives from the batch itself.
            if self.images_per_identity < 2:
                raise ValueError(
                    f"loss={self.loss!r} needs at least two images per identity in a batch "
                    f"(no positives otherwise). Received: images_per_identity="
                    f"{self.images_per_identity}"
                )
            if self.identities_per_batch < 2:
                raise ValueError(
                    f"loss={self.loss!r} needs at least two identities per batch (a single "
                    "identity has no negatives). "
                    f"Received: identities_per_batch={self.identities_per_batch}"
                )
        if not self.triplet_margin >= 0:
            raise ValueError(
                f"`triplet_margin` must be >= 0. Received: triplet_margin={self.triplet_margin}"
            )
        if not self.center_weight >= 0:
            raise ValueError(
                f"`center_weight` must be >= 0. Received: center_weight={self.center_weight}"
            )
        if self.partial_fc:
            if isinstance(self.partial_fc, bool) or not 0 < self.partial_fc <= 1:
                raise ValueError(
                    "`partial_fc` must be a sampling rate in (0, 1] (0: off). "
                    f"Received: partial_fc={self.partial_fc!r}"
                )
            if not spec.margin_head:
                raise ValueError(
                    "`partial_fc` applies to margin heads only (it shards their class "
                    f"centres). Received: loss={self.loss!r}, partial_fc={self.partial_fc}"
                )
        elif self.partial_fc != 0:
            raise ValueError(f"`partial_fc` must be in (0, 1]. Received: {self.partial_fc!r}")
        if self.head_kwargs and not spec.margin_head:
            raise ValueError(
                f"`head_kwargs` apply to margin heads only. Received: loss={self.loss!r}, "
                f"head_kwargs={self.head_kwargs}"
            )
        if self.export and not self.evaluate:
            raise ValueError(
                "`export` needs `evaluate` (the threshold is calibrated on the held-out pairs). "
                "Received: export=True, evaluate=False"
            )
        return self

    @property
    def global_batch_size(self):
        return self.identities_per_batch * self.images_per_identity

    @property
    def export_path(self):
        """The SavedModel base directory: `export_dir`, or `<model_dir>/export`."""
        return self.export_dir or os.path.join(self.model_dir, "export")

    # === Files ===
    def to_dict(self):
        """The config as {section: {field: value}} (what `config.json` holds)."""
        out = {section: {} for section in SECTIONS}
        for field in dataclasses.fields(self):
            out[field.metadata["section"]][field.name] = getattr(self, field.name)
        return out

    @classmethod
    def from_dict(cls, sections, source="config"):
        """Field values {name: value} from {section: {field: value}}; checks every name."""
        return cls(**read_sections(sections, source))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def fields_by_name():
    """{name: dataclasses.Field} of every `TrainConfig` field."""
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def read_sections(sections, source="config"):
    """{field: value} from a {section: {field: value}} dict; raises ValueError naming
    `source` and the unknown section or field."""
    fields = fields_by_name()
    if not isinstance(sections, dict):
        raise ValueError(
            f"{source}: expected a JSON object of sections {SECTIONS}. "
            f"Received: {type(sections).__name__}"
        )
    values = {}
    for section, body in sections.items():
        if section not in SECTIONS:
            raise ValueError(f"{source}: unknown section {section!r}; expected some of {SECTIONS}.")
        if not isinstance(body, dict):
            raise ValueError(f"{source}: section {section!r} must be an object.")
        for name, value in body.items():
            field = fields.get(name)
            if field is None or field.metadata["section"] != section:
                known = [f.name for f in fields.values() if f.metadata["section"] == section]
                raise ValueError(
                    f"{source}: unknown field {section}.{name}; {section} holds {known}."
                )
            values[name] = value
    return values


def load_config_file(path):
    """{field: value} from a JSON config file (sections as in `TrainConfig.to_dict`)."""
    try:
        with open(path) as f:
            sections = json.load(f)
    except OSError as e:
        raise ValueError(f"--config={path}: cannot read it: {e.strerror}.") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--config={path}: not valid JSON: {e}.") from None
    return read_sections(sections, source=f"--config={path}")
