"""`TrainConfig`: every knob of a training run, its defaults, the per-loss policy, its checks.

A run's configuration is resolved in the tensorflow/models order: the defaults below →
`--config=FILE` (JSON with the sections below; a run's own `config.json` is one) → the
command-line flags (`--flagfile` included). Fields left None are then filled by the
per-loss policy of the head table (`tfface.training.heads`): the default data, steps,
mining, head settings and model_dir. The flags are derived from the fields, one flag per
field with the field's name, plus the head flags `--scale`, `--margin`, `--margins`.

train.py writes the resolved config to `<model_dir>/config.json` (and the code revision to
`<model_dir>/revision.txt`); a resumed run whose config differs in a field that shapes the
trained weights is refused unless `--allow_config_change` names the field.
"""

import dataclasses
import json
import os
import subprocess

from tfface.training import heads
from tfface.training.objective import MINING
from tfface.training.objective import MINING_SCOPES
from tfface.training.schedules import OPTIMIZERS
from tfface.training.schedules import SCHEDULES
from tfface.training.strategy import STRATEGIES

SECTIONS = ("data", "model", "objective", "optimizer", "run", "evaluation", "export")
DEFAULT_STEPS = 300
DISTANCE_METRICS = ("L2", "squared-L2", "angular")
CONFIG_FILE = "config.json"
REVISION_FILE = "revision.txt"


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

    None means "the per-loss policy decides" and is filled on construction: `data` (a
    loss's default training data), `mining` ("semihard" for triplet), `steps`
    (`DEFAULT_STEPS` unless `epochs`), `model_dir` (runs/<loss>, runs/triplet-<mining>);
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
    mixed_precision: bool = _field(
        False, "model", "mixed_float16 with loss scaling (logits float32)."
    )
    # === objective ===
    loss: str = _field("triplet", "objective", "Training objective.", choices=heads.LOSSES)
    mining: str = _field(
        None, "objective", "Triplet mining (triplet loss only; default semihard).", MINING
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
    # === optimizer ===
    optimizer: str = _field("adam", "optimizer", "Optimizer.", OPTIMIZERS)
    learning_rate: float = _field(1e-3, "optimizer", "Peak learning rate.")
    lr_schedule: str = _field("cosine", "optimizer", "Decay after warm-up.", SCHEDULES)
    warmup_steps: int = _field(0, "optimizer", "Linear warm-up steps.")
    weight_decay: float = _field(0.0, "optimizer", "Decoupled weight decay.")
    momentum: float = _field(0.9, "optimizer", "SGD momentum.")
    # === run ===
    steps: int = _field(None, "run", f"Training steps (default {DEFAULT_STEPS} unless --epochs).")
    epochs: int = _field(0, "run", "Epochs over the training images (if --steps is unset).")
    strategy: str = _field("auto", "run", "tf.distribute strategy.", STRATEGIES, resume_free=True)
    model_dir: str = _field(
        None,
        "run",
        "Checkpoints, TensorBoard, reports, config.json (default runs/<loss>, "
        "runs/triplet-<mining> for triplet).",
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
    # === evaluation ===
    evaluate: bool = _field(
        True, "evaluation", "Run the held-out verification (needed for export).", resume_free=True
    )
    eval_data: str = _field(
        "synthetic",
        "evaluation",
        "Held-out pairs: synthetic (held-out synthetic identities), bin:PATH, "
        "lfw:PAIRS_TXT,IMAGES_DIR[,EXT] (EXT: image extension, default jpg).",
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
        if self.mining is None and self.loss == "triplet":
            self.mining = "semihard"
        if self.steps is None:
            self.steps = 0 if self.epochs else DEFAULT_STEPS
        if self.model_dir is None:
            name = self.loss + (f"-{self.mining}" if self.loss == "triplet" else "")
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
        if self.loss == "triplet" and self.mining is None:
            raise ValueError(f"`mining` must be one of {MINING} for loss='triplet'. Received: None")
        if self.loss != "triplet" and self.mining is not None:
            raise ValueError(
                f"`mining` applies to loss='triplet' only. Received: loss={self.loss!r}, "
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
        if not self.learning_rate > 0:
            raise ValueError(
                f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}"
            )
        if self.loss == "triplet":
            if self.images_per_identity < 2:
                raise ValueError(
                    "Triplet loss needs at least two images per identity in a batch. "
                    f"Received: images_per_identity={self.images_per_identity}"
                )
            if self.identities_per_batch < 2:
                raise ValueError(
                    "Triplet loss needs at least two identities per batch (a single identity "
                    "has no negatives). "
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
        if self.head_kwargs and not heads.HEADS[self.loss].margin_head:
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


def _fields_by_name():
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def read_sections(sections, source="config"):
    """{field: value} from a {section: {field: value}} dict; raises ValueError naming
    `source` and the unknown section or field."""
    fields = _fields_by_name()
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


# === Flags ===
_FLAG_TYPES = {bool: "bool", int: "integer", float: "float", str: "string"}


def define_flags(flag_values=None):
    """Defines one absl flag per config field (default None: "not given"), the head
    flags, `--config` and `--allow_config_change`."""
    from absl import flags

    fv = flag_values or flags.FLAGS
    for field in dataclasses.fields(TrainConfig):
        if not field.metadata["flag"]:
            continue
        meta = field.metadata
        default = field.default
        shown = "per-loss policy" if default is None else default
        help_text = f"[{meta['section']}] {meta['help']} (default: {shown})"
        if meta["choices"] is not None:
            flags.DEFINE_enum(field.name, None, list(meta["choices"]), help_text, flag_values=fv)
        else:
            define = getattr(flags, f"DEFINE_{_FLAG_TYPES[field.type]}")
            define(field.name, None, help_text, flag_values=fv)
    flags.DEFINE_float(
        "scale",
        None,
        "[objective] Margin-head scale s (normface/cosface/arcface/combined).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "margin",
        None,
        "[objective] Margin m: cosface/arcface additive, sphereface int m.",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "margins",
        None,
        "[objective] Combined margin m1,m2,m3 (cos(m1·θ + m2) − m3).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "config",
        None,
        "JSON config file ({section: {field: value}}, e.g. a run's config.json); flags "
        "given on the command line override it.",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "allow_config_change",
        [],
        "Fields that may differ from the config.json of the run being resumed (e.g. steps).",
        flag_values=fv,
    )


def config_from_flags(flag_values=None):
    """defaults → `--config` file → flags given; the resolved, validated `TrainConfig`."""
    from absl import flags

    fv = flag_values or flags.FLAGS
    values = load_config_file(fv.config) if fv.config else {}
    for field in dataclasses.fields(TrainConfig):
        if field.metadata["flag"] and fv[field.name].value is not None:
            values[field.name] = fv[field.name].value
    given = {name: fv[name].value for name in heads.HEAD_FLAGS}
    if any(v is not None for v in given.values()):
        loss = values.get("loss", TrainConfig.loss)
        from_flags = heads.head_kwargs_from_flags(loss, **given)
        values["head_kwargs"] = {**values.get("head_kwargs", {}), **from_flags}
    return TrainConfig(**values).validate()


# === Inputs on disk ===
def _check_pretrained(config, models):
    """--pretrained needs published weights for the backbone at their size and width."""
    if config.trainable_blocks is not None and not config.pretrained:
        raise ValueError(
            "--trainable_blocks applies to --pretrained runs only. "
            f"Received: --trainable_blocks={config.trainable_blocks}"
        )
    if not config.pretrained:
        return
    if config.backbone not in models.list_pretrained():
        raise ValueError(
            f"--pretrained: tfface has weights for {models.list_pretrained()} only. "
            f"Received: --backbone={config.backbone}"
        )
    spec = models.get_pretrained_spec(config.backbone)
    if (config.image_size, config.embedding_dim) != (spec.image_size, spec.embedding_dim):
        raise ValueError(
            f"--pretrained {config.backbone} takes --image_size={spec.image_size} "
            f"--embedding_dim={spec.embedding_dim}. Received: --image_size="
            f"{config.image_size} --embedding_dim={config.embedding_dim}"
        )
    blocks = config.trainable_blocks
    if blocks is not None and not 0 <= blocks <= spec.num_blocks:
        raise ValueError(
            f"--trainable_blocks must be in [0, {spec.num_blocks}] for {config.backbone}. "
            f"Received: --trainable_blocks={blocks}"
        )


def check_inputs(config):
    """Checks what the config names outside itself, cheaply and before any model exists:
    the backbone, the head settings, the data spec (and its identity count when it is
    known without reading images), the held-out pairs. Raises ValueError naming the flag.
    """
    from tfface import models

    if config.backbone not in models.list_backbones():
        raise ValueError(
            f"--backbone must be one of {models.list_backbones()}. "
            f"Received: --backbone={config.backbone}"
        )
    _check_pretrained(config, models)
    try:
        heads.check_head_kwargs(config.loss, config.head_kwargs)
    except ValueError as e:
        raise ValueError(
            f"--loss={config.loss} with head settings {config.head_kwargs}: {e}"
        ) from None
    from tfface.data.loader import check_spec

    try:
        kind, arg = check_spec(config.data)
    except ValueError as e:
        raise ValueError(f"--data={config.data}: {e}") from None
    check_identities(config, _count_identities(kind, arg))
    if config.evaluate:
        from tfface.eval.pairs import check_pair_spec

        try:
            check_pair_spec(config.eval_data)
        except ValueError as e:
            raise ValueError(f"--eval_data={config.eval_data}: {e}") from None


def _count_identities(kind, arg):
    """The identity count of a data spec when it is known without reading images, else None."""
    if kind == "synthetic":
        return int(arg) if arg else 10_000
    if kind == "folder":
        return sum(1 for e in os.scandir(arg) if e.is_dir() and any(os.scandir(e.path)))
    return None


def check_identities(config, num_identities):
    """Raises ValueError when the data has too few identities for a P×K batch."""
    if num_identities is None:
        return
    if num_identities < config.identities_per_batch:
        raise ValueError(
            f"--data={config.data} holds {num_identities} identities, fewer than "
            f"--identities_per_batch={config.identities_per_batch} (a P×K batch draws P "
            "distinct identities). Lower --identities_per_batch or add identities."
        )
    if num_identities < 2:
        raise ValueError(
            f"--data={config.data} holds {num_identities} identity; training needs at least "
            "two (a triplet batch needs negatives, a classifier two classes)."
        )


# === The run directory ===
def code_revision(path=None):
    """`git describe`-like revision text of the checkout holding `path`, or None."""
    root = path or os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True
        ).stdout

    try:
        head = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=no")
        diff = git("diff", "HEAD") if status else ""
    except (OSError, subprocess.SubprocessError):
        return None
    text = f"git hash: {head}\n"
    text += (
        "git status: clean\n" if not status else f"git status:\n{status}\ngit diff HEAD:\n{diff}"
    )
    return text


def changed_fields(old, new):
    """[(field, old, new)] of the fields in which two `TrainConfig`s differ."""
    return [
        (f.name, getattr(old, f.name), getattr(new, f.name))
        for f in dataclasses.fields(TrainConfig)
        if getattr(old, f.name) != getattr(new, f.name)
    ]


def check_resume(config, allow=()):
    """Compares `config` with `<model_dir>/config.json` of an earlier start, if any.

    Returns the accepted changes [(field, old, new)]. Raises ValueError naming every field
    that shapes the trained weights and differs, unless `allow` names it.
    """
    path = os.path.join(config.model_dir, CONFIG_FILE)
    fields = _fields_by_name()
    unknown = [name for name in allow if name not in fields]
    if unknown:
        raise ValueError(
            f"--allow_config_change names unknown fields {unknown}; fields: {sorted(fields)}"
        )
    if not os.path.exists(path):
        return []
    with open(path) as f:
        old = TrainConfig.from_dict(json.load(f), source=path)
    changes = changed_fields(old, config)
    refused = [c for c in changes if not fields[c[0]].metadata["resume_free"] and c[0] not in allow]
    if refused:
        listed = "; ".join(f"{name}: {a!r} → {b!r}" for name, a, b in refused)
        raise ValueError(
            f"{config.model_dir} holds a run started with a different config ({listed}). "
            "Use another --model_dir, or allow a deliberate change with "
            f"--allow_config_change={','.join(c[0] for c in refused)}."
        )
    return changes


def write_run_files(config):
    """Writes `<model_dir>/config.json` and, in a git checkout, `<model_dir>/revision.txt`."""
    os.makedirs(config.model_dir, exist_ok=True)
    tmp = os.path.join(config.model_dir, CONFIG_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config.to_dict(), f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(config.model_dir, CONFIG_FILE))
    revision = code_revision()
    if revision is not None:
        with open(os.path.join(config.model_dir, REVISION_FILE), "w") as f:
            f.write(revision)
