"""Train a face-embedding model, evaluate it on held-out identities, export a SavedModel.

    python train.py --loss=triplet --mining=semihard          # the default job, ~5 min on CPU
    python train.py --flagfile=experiments/arcface_synthetic.cfg
    python train.py --config=runs/arcface/config.json --steps=600 --allow_config_change=steps

The configuration is `tfface.training.TrainConfig`: defaults → `--config=FILE` → flags (one
per config field). The resolved config is written to `<model_dir>/config.json`; see
README.md (Training) for the flag table. Flag or data errors exit 2 before any model is
built; a non-finite loss exits 3.
"""

import os

# Before TensorFlow is imported: quiet its C++ start-up lines (see tfface/__init__.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import sys  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from tfface.training import config as config_lib  # noqa: E402

config_lib.define_flags()
flags.adopt_module_key_flags(config_lib)  # --help lists them as train.py's own
F = flags.FLAGS


def config_from_flags():
    """The resolved, validated `TrainConfig` of the command line."""
    return config_lib.config_from_flags(F)


def main(argv):
    # absl turns on TF's Python INFO logging (checkpoint sharding chatter); keep the
    # console to the progress lines.
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        config = config_from_flags()
        config_lib.check_inputs(config)
        changes = config_lib.check_resume(config, allow=F.allow_config_change)
    except ValueError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    for name, old, new in changes:
        print(f"Config change on resume: {name}: {old!r} → {new!r}", flush=True)
    config_lib.write_run_files(config)

    from tfface.training.strategy import make_strategy

    # First TF work of the process: MultiWorkerMirroredStrategy must configure collective
    # ops before the runtime starts.
    strategy = make_strategy(config.strategy)
    from tfface.training import pipeline
    from tfface.training.trainer import NonFiniteLossError
    from tfface.training.trainer import TrainingInterrupted

    try:
        source = pipeline.load_training_source(config)
    except ValueError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    try:
        pipeline.train_and_evaluate(
            config, strategy=strategy, source=source, log=lambda *a: print(*a, flush=True)
        )
    except NonFiniteLossError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 3
    except TrainingInterrupted as e:  # SIGINT/SIGTERM during training: saved, resumable
        print(f"train.py: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (evaluation, export)
        print("train.py: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    app.run(main)
