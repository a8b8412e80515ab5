"""Train a face-embedding model, evaluate it on held-out identities, export a SavedModel.

    python train.py --loss=triplet --mining=semihard          # the default job, ~5 min on CPU
    python train.py --flagfile=experiments/arcface_synthetic.cfg

Flags are absl flags; experiments/*.cfg are flagfiles whose comment lines give the command
and the result measured. See README.md (Training) for the flag table.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from tfface.training.config import TrainConfig
from tfface.training.objective import LOSSES
from tfface.training.objective import MINING
from tfface.training.objective import MINING_SCOPES
from tfface.training.schedules import OPTIMIZERS
from tfface.training.schedules import SCHEDULES
from tfface.training.strategy import STRATEGIES

# Per-loss defaults, chosen by measurement on the synthetic faces (BENCHMARKS.md, per-loss table):
# scale s and margin m suited to ~10^2–10^3 identities and 128-D embeddings; the papers' s=64 is
# for 10^4–10^5 identities and saturates the softmax here.
HEAD_DEFAULTS = {
    "normface": {"scale": 16.0},
    "cosface": {"scale": 16.0, "margin": 0.2},
    "arcface": {"scale": 16.0, "margin": 0.3},
    "combined": {"scale": 16.0, "m1": 1.0, "m2": 0.2, "m3": 0.1},
    "sphereface": {},
}
DEFAULT_STEPS = 300
# Classification heads learn one weight vector per identity, so each identity must come
# back many times in DEFAULT_STEPS batches: 300 steps × 32 identities over 200 identities
# is ~48 visits each (over the 10,000 default identities it would be ~1). Measured for
# ArcFace: synthetic:200 0.818 vs synthetic:500 0.723 held-out accuracy (BENCHMARKS.md).
# Triplet losses have no per-identity weights and profit from more identities.
DEFAULT_DATA = {"triplet": "synthetic"}
DEFAULT_HEAD_DATA = "synthetic:200"

F = flags.FLAGS
flags.DEFINE_enum("loss", "triplet", LOSSES, "Training objective.")
flags.DEFINE_enum("mining", None, MINING, "Triplet mining (triplet loss only; default semihard).")
flags.DEFINE_enum(
    "mining_scope", "global", MINING_SCOPES, "Mine on the all-gathered global batch or per replica."
)
flags.DEFINE_float("triplet_margin", 0.2, "Triplet margin α (FaceNet: 0.2 on squared L2).")
flags.DEFINE_enum(
    "distance_metric", "squared-L2", ["L2", "squared-L2", "angular"], "Triplet distance."
)
flags.DEFINE_float("scale", None, "Margin-head scale s (normface/cosface/arcface/combined).")
flags.DEFINE_float("margin", None, "Margin m: cosface/arcface additive, sphereface int m.")
flags.DEFINE_list("margins", None, "Combined margin m1,m2,m3 (cos(m1·θ + m2) − m3).")
flags.DEFINE_float("center_weight", 0.01, "Center loss weight λ (loss=center).")
flags.DEFINE_float("center_alpha", 0.5, "Center update rate α (loss=center).")
flags.DEFINE_string(
    "data",
    None,
    "Training data: synthetic, synthetic:N, folder:PATH, tfrecord:GLOB, rec:PATH, tfds:NAME. "
    f"Default: synthetic (10,000 identities) for triplet, {DEFAULT_HEAD_DATA} for the others.",
)
flags.DEFINE_string(
    "eval_data",
    "synthetic",
    "Held-out pairs: synthetic (held-out synthetic identities), bin:PATH, "
    "lfw:PAIRS_TXT,IMAGES_DIR.",
)
flags.DEFINE_integer("eval_every", 0, "Also evaluate every N steps (0: before and after only).")
flags.DEFINE_bool("evaluate", True, "Run the held-out verification (needed for export).")
flags.DEFINE_string("backbone", "small_cnn", "Backbone name (tfface.models.list_backbones()).")
flags.DEFINE_integer("embedding_dim", 128, "Embedding size D.")
flags.DEFINE_integer("image_size", 64, "Square input size S.")
flags.DEFINE_integer("identities_per_batch", 32, "P identities per global batch.")
flags.DEFINE_integer("images_per_identity", 4, "K images per identity.")
flags.DEFINE_bool("augment", True, "Training augmentation.")
flags.DEFINE_integer("steps", None, f"Training steps (default {DEFAULT_STEPS} unless --epochs).")
flags.DEFINE_integer("epochs", None, "Epochs over the training images (if --steps is unset).")
flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")
flags.DEFINE_enum("lr_schedule", "cosine", SCHEDULES, "Decay after warm-up.")
flags.DEFINE_integer("warmup_steps", 0, "Linear warm-up steps.")
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_bool("mixed_precision", False, "mixed_float16 with loss scaling (logits float32).")
flags.DEFINE_enum("strategy", "auto", STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string(
    "model_dir",
    None,
    "Checkpoints, TensorBoard, reports (default runs/<loss>, runs/triplet-<mining> for triplet).",
)
flags.DEFINE_string("export_dir", None, "SavedModel base dir (default <model_dir>/export).")
flags.DEFINE_bool("export", True, "Export a SavedModel at the end.")
flags.DEFINE_integer("checkpoint_every", 100, "Save a checkpoint every N steps (and at the end).")
flags.DEFINE_integer("log_every", 20, "Console/TensorBoard logging interval in steps.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, sampling, augmentation, held-out pairs.")
flags.DEFINE_bool("deterministic", False, "tf.config.experimental.enable_op_determinism.")


def head_kwargs(loss, scale, margin, margins):
    """Margin-head keyword arguments from the flags and the per-loss defaults."""
    kwargs = dict(HEAD_DEFAULTS.get(loss, {}))
    if loss in ("softmax", "center", "triplet"):
        for name, value in (("scale", scale), ("margin", margin), ("margins", margins)):
            if value is not None:
                raise ValueError(f"--{name} applies to margin heads only. Received: --loss={loss}")
        return kwargs
    if margins is not None and loss != "combined":
        raise ValueError(f"--margins applies to --loss=combined only. Received: --loss={loss}")
    if scale is not None:
        if loss == "sphereface":
            raise ValueError("--scale does not apply to sphereface (its scale is ‖x‖).")
        kwargs["scale"] = scale
    if margin is not None:
        if loss in ("normface", "combined"):
            raise ValueError(
                f"--margin does not apply to --loss={loss}"
                + (" (use --margins=m1,m2,m3)." if loss == "combined" else ".")
            )
        if loss == "sphereface":
            if margin != int(margin):
                raise ValueError(
                    f"SphereFace's margin is an integer m. Received: --margin={margin}"
                )
            margin = int(margin)
        kwargs["margin"] = margin
    if margins is not None:
        if len(margins) != 3:
            raise ValueError(f"--margins needs three values m1,m2,m3. Received: {margins}")
        try:
            kwargs.update(zip(("m1", "m2", "m3"), (float(m) for m in margins), strict=True))
        except ValueError:
            raise ValueError(f"--margins must be numbers. Received: {margins}") from None
    return kwargs


def config_from_flags():
    if F.mining is not None and F.loss != "triplet":
        raise ValueError(f"--mining applies to --loss=triplet only. Received: --loss={F.loss}")
    if F.steps is not None and F.epochs is not None:
        raise ValueError(f"Give --steps or --epochs, not both. Received: {F.steps}, {F.epochs}")
    steps = F.steps if F.steps is not None else (0 if F.epochs else DEFAULT_STEPS)
    mining = F.mining or "semihard"
    model_dir = F.model_dir or os.path.join(
        "runs", F.loss + (f"-{mining}" if F.loss == "triplet" else "")
    )
    return TrainConfig(
        loss=F.loss,
        mining=mining,
        mining_scope=F.mining_scope,
        triplet_margin=F.triplet_margin,
        distance_metric=F.distance_metric,
        head_kwargs=head_kwargs(F.loss, F.scale, F.margin, F.margins),
        center_weight=F.center_weight,
        center_alpha=F.center_alpha,
        data=F.data or DEFAULT_DATA.get(F.loss, DEFAULT_HEAD_DATA),
        backbone=F.backbone,
        embedding_dim=F.embedding_dim,
        image_size=F.image_size,
        identities_per_batch=F.identities_per_batch,
        images_per_identity=F.images_per_identity,
        augment=F.augment,
        steps=steps,
        epochs=F.epochs or 0,
        optimizer=F.optimizer,
        learning_rate=F.learning_rate,
        lr_schedule=F.lr_schedule,
        warmup_steps=F.warmup_steps,
        weight_decay=F.weight_decay,
        momentum=F.momentum,
        mixed_precision=F.mixed_precision,
        strategy=F.strategy,
        model_dir=model_dir,
        checkpoint_every=F.checkpoint_every,
        log_every=F.log_every,
        seed=F.seed,
        deterministic=F.deterministic,
    ).validate()


def main(argv):
    # absl turns on TF's Python INFO logging (checkpoint sharding chatter); keep the
    # console to the progress lines.
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        config = config_from_flags()
        if F.export and not F.evaluate:
            raise ValueError("--export needs --evaluate (the threshold is calibrated on it).")
    except ValueError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    from tfface.training.strategy import make_strategy

    # First TF work of the process: MultiWorkerMirroredStrategy must configure collective
    # ops before the runtime starts.
    strategy = make_strategy(config.strategy)
    from tfface.training.pipeline import train_and_evaluate
    from tfface.training.trainer import NonFiniteLossError

    export_dir = (F.export_dir or os.path.join(config.model_dir, "export")) if F.export else None
    try:
        train_and_evaluate(
            config,
            eval_data=F.eval_data,
            export_dir=export_dir,
            evaluate=F.evaluate,
            eval_every=F.eval_every,
            strategy=strategy,
            log=lambda *a: print(*a, flush=True),
        )
    except NonFiniteLossError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
