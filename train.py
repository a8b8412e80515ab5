"""Train a face-embedding model, evaluate it on held-out identities, export a SavedModel.

    python train.py --loss=triplet --mining=semihard          # the default job, ~5 min on CPU
    python train.py --flagfile=experiments/arcface_synthetic.cfg
    python train.py --config=runs/arcface/config.json --steps=600 --allow_config_change=steps

The configuration is `tfface.training.TrainConfig`: defaults → `--config=FILE` → flags (one
per config field). The resolved config is written to `<model_dir>/config.json`; see
README.md (Training) for the flag table. Flag, config and data errors exit 2 before any
model is built, and before TensorFlow loads except the backbone, pretrained-weights and
head-layer checks, whose rules are Keras code (`tfface.training.preflight`); a non-finite
loss exits 3, a run whose embeddings collapse exits 4.
"""

import os

# Before TensorFlow is imported: quiet its C++ start-up lines (see tfface/_startup.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# A tfface command: `import tfface` stays light until the flags are checked
# (tfface._startup.starting_command).
TFFACE_COMMAND = True

import sys  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

# TF-free: the flags, the config and the checks before any work.
from tfface.training import flags as train_flags  # noqa: E402
from tfface.training import preflight  # noqa: E402
from tfface.training import run_dir  # noqa: E402

train_flags.define_flags()
flags.adopt_module_key_flags(train_flags)  # --help lists them as train.py's own
F = flags.FLAGS
EXIT_USAGE = 2
EXIT_COLLAPSE = 4  # the embeddings collapsed (tfface.training.errors.EmbeddingCollapseError)


def _error(message):
    print(f"train.py: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def parse_flags(argv):
    """absl's flag parsing, but a malformed or unknown flag exits 2 (a usage error, as
    every other check of the command line) instead of absl's 1."""
    try:
        return F(argv)
    except flags.Error as e:
        sys.exit(_error(f"{e} (python train.py --helpfull lists the flags)"))


def config_from_flags():
    """The resolved, validated `TrainConfig` of the command line."""
    return train_flags.config_from_flags(F)


def main(argv):
    # absl turns on TF's Python INFO logging (checkpoint sharding chatter); keep the
    # console to the progress lines.
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        return _error(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
    try:
        config = config_from_flags()
        preflight.check_before_tensorflow(config)
        changes = run_dir.check_resume(config, allow=F.allow_config_change)
    except ValueError as e:
        return _error(e)
    from tfface import _startup

    # The first TensorFlow import, without its C++ start-up notices (a no-op in a process
    # that already has it). Nothing here touches the runtime yet: see make_strategy below.
    _startup.import_tensorflow()
    try:
        preflight.check_model(config)  # the backbone registry and head layers are Keras
    except ValueError as e:
        return _error(e)
    for name, old, new in changes:
        print(f"Config change on resume: {name}: {old!r} → {new!r}", flush=True)
    run_dir.write_run_files(config)

    from tfface.training.strategy import make_strategy

    # First TF work of the process: MultiWorkerMirroredStrategy must configure collective
    # ops before the runtime starts.
    strategy = make_strategy(config.strategy)
    from tfface.training import pipeline
    from tfface.training.trainer import check_replicas

    try:  # what depends on the replica count, before the data and the model
        check_replicas(config, strategy.num_replicas_in_sync)
    except ValueError as e:
        return _error(e)
    from tfface.training.errors import EmbeddingCollapseError
    from tfface.training.errors import NonFiniteLossError
    from tfface.training.errors import TrainingInterrupted

    try:
        source = pipeline.load_training_source(config)
    except ValueError as e:
        return _error(e)
    try:
        pipeline.train_and_evaluate(
            config, strategy=strategy, source=source, log=lambda *a: print(*a, flush=True)
        )
    except NonFiniteLossError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 3
    except EmbeddingCollapseError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return EXIT_COLLAPSE
    except TrainingInterrupted as e:  # SIGINT/SIGTERM during training: saved, resumable
        print(f"train.py: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (evaluation, export)
        print("train.py: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
