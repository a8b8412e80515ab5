"""`python -m tfface.export`: export a saved embedding model (or a finished run) for TF Serving.

Examples:

    # a finished train.py run, re-exported under another name with a threshold at FAR 1e-3
    python -m tfface.export --model runs/triplet-semihard --name faces \
        --threshold_far 1e-3 --eval_data synthetic
    # any .keras embedding model, an explicit threshold, version 7
    python -m tfface.export --model model.keras --export_dir /models --name faces \
        --threshold 0.35 --version 7
    # the accuracy-maximising threshold on an insightface .bin pack
    python -m tfface.export --model model.keras --export_dir /models \
        --threshold_accuracy --eval_data bin:/data/lfw.bin

`--model` is a `.keras` file or a run directory holding `embedding_model.keras` (what
train.py saves); a run directory exports to `<run>/export` unless `--export_dir` says
otherwise. At most one of `--threshold`, `--threshold_far`, `--threshold_accuracy`; the
last two calibrate on `--eval_data` (`synthetic`, `bin:PATH` or
`lfw:PAIRS_TXT,IMAGES_DIR[,EXT]`, as train.py's `--eval_data`).
Flag errors exit 2, naming the flag, before TensorFlow is imported.
"""

import argparse
import math
import os
import sys

# NumPy only: the eval-data spec is checked before TensorFlow is imported.
from tfface.eval import pairs

RUN_MODEL_FILE = "embedding_model.keras"


def resolve_model_path(path):
    """The `.keras` file named by `path` (a `.keras` file or a run directory), or None."""
    if os.path.isdir(path):
        path = os.path.join(path, RUN_MODEL_FILE)
    return path if path.endswith(".keras") and os.path.isfile(path) else None


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tfface.export",
        description="Export a .keras embedding model (images in 0-255 -> unit embeddings) or a "
        "finished run as a TF Serving SavedModel at EXPORT_DIR/NAME/VERSION.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, help=f"a .keras file or a run directory with {RUN_MODEL_FILE}"
    )
    parser.add_argument(
        "--export_dir",
        default=None,
        help="base directory TF Serving polls (default for a run directory: RUN/export)",
    )
    parser.add_argument("--name", default="tfface", help="model name")
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="version number (default: one more than the largest existing version)",
    )
    threshold = parser.add_mutually_exclusive_group()
    threshold.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine-similarity threshold in [-1, 1] for the `verify` signature "
        "(without any threshold flag no `verify` signature is exported)",
    )
    threshold.add_argument(
        "--threshold_far",
        type=float,
        default=None,
        help="calibrate the threshold on --eval_data for this false-accept rate, e.g. 1e-3",
    )
    threshold.add_argument(
        "--threshold_accuracy",
        action="store_true",
        help="calibrate the accuracy-maximising threshold on --eval_data",
    )
    parser.add_argument(
        "--eval_data",
        default=None,
        help=f"verification pairs for calibration: {pairs.PAIR_SPEC_FORMS}",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs")
    parser.add_argument(
        "--image_size",
        type=int,
        default=None,
        help="input size S (default: the model's fixed input size)",
    )
    parser.add_argument(
        "--warmup_batch_sizes",
        default="1",
        help="comma-separated batch sizes of the warmup requests",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version directory"
    )
    args = parser.parse_args(argv)

    model_path = resolve_model_path(args.model)
    if model_path is None:
        parser.error(
            f"--model must be an existing .keras file or a run directory holding "
            f"{RUN_MODEL_FILE}. Received: --model={args.model}"
        )
    if args.export_dir is None:
        if not os.path.isdir(args.model):
            parser.error("--export_dir is required when --model is a .keras file.")
        args.export_dir = os.path.join(args.model, "export")
    args.model = model_path
    if args.threshold is not None and not (
        math.isfinite(args.threshold) and -1.0 <= args.threshold <= 1.0
    ):
        parser.error(f"--threshold must be in [-1, 1]. Received: --threshold={args.threshold}")
    if args.threshold_far is not None and not 0.0 < args.threshold_far < 1.0:
        parser.error(
            f"--threshold_far must be in (0, 1). Received: --threshold_far={args.threshold_far}"
        )
    calibrating = args.threshold_far is not None or args.threshold_accuracy
    if calibrating and args.eval_data is None:
        parser.error("--threshold_far and --threshold_accuracy need --eval_data.")
    if args.eval_data is not None:
        if not calibrating:
            parser.error(
                "--eval_data is only used with --threshold_far or --threshold_accuracy. "
                f"Received: --eval_data={args.eval_data}"
            )
        try:
            pairs.check_pair_spec(args.eval_data)
        except ValueError as e:
            parser.error(f"--eval_data={args.eval_data}: {e}")
    if args.version is not None and args.version < 0:
        parser.error(f"--version must be >= 0. Received: --version={args.version}")
    if args.image_size is not None and args.image_size < 1:
        parser.error(f"--image_size must be >= 1. Received: --image_size={args.image_size}")
    try:
        sizes = [int(b) for b in args.warmup_batch_sizes.split(",")]
        if min(sizes) < 1:
            raise ValueError
        args.warmup_batch_sizes = sizes
    except ValueError:
        parser.error(
            "--warmup_batch_sizes must be comma-separated positive integers. "
            f"Received: --warmup_batch_sizes={args.warmup_batch_sizes}"
        )
    return args


def _calibrate(model, args, image_size):
    import keras

    from tfface.export import threshold

    pair_set = pairs.load_pair_set(args.eval_data, image_size, seed=args.seed)

    def embed_fn(x):
        return keras.ops.convert_to_numpy(model(x, training=False))

    scores = threshold.pair_scores(
        embed_fn,
        pair_set.images,
        pair_set.first,
        pair_set.second,
        flip=pair_set.flip,
    )
    return threshold.calibrate(scores, pair_set.issame, far_target=args.threshold_far)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)

    # Imported after argument parsing so `--help` answers without starting TensorFlow.
    import keras
    import tensorflow as tf

    from tfface.export import export_saved_model
    from tfface.models.keras_objects import register_keras_objects

    # tfface layers, losses and backbones resolve without custom_objects (`import tfface`
    # leaves them out when it starts a command: tfface/__init__.py).
    register_keras_objects()

    model = keras.saving.load_model(args.model, compile=False)
    # The archive's tfface_model.json (crop template, fingerprint) carries over to the export.
    from tfface import model_metadata

    metadata = model_metadata.read_keras_metadata(args.model)
    if metadata is not None:
        model.tfface_metadata = metadata
    threshold = args.threshold
    if args.threshold_far is not None or args.threshold_accuracy:
        shape = model.input_shape
        size = args.image_size or (shape[1] if len(shape) == 4 else None)
        if size is None:
            raise SystemExit("error: --image_size is needed: the model's input size is not fixed")
        calibration = _calibrate(model, args, size)
        print(f"{args.eval_data}: {calibration.summary()}")
        threshold = calibration.threshold
    path = export_saved_model(
        model,
        args.export_dir,
        name=args.name,
        version=args.version,
        threshold=threshold,
        image_size=args.image_size,
        overwrite=args.overwrite,
        warmup_batch_sizes=args.warmup_batch_sizes,
    )
    loaded = tf.saved_model.load(path)
    print(f"Exported {args.model} to {path}")
    for key in sorted(loaded.signatures):
        fn = loaded.signatures[key]
        inputs = ", ".join(
            f"{spec.name}: {spec.dtype.name} {spec.shape}"
            for spec in fn.structured_input_signature[1].values()
        )
        outputs = ", ".join(
            f"{k}: {spec.dtype.name} {spec.shape}" for k, spec in fn.structured_outputs.items()
        )
        print(f"  {key}({inputs}) -> {outputs}")
    return path


if __name__ == "__main__":
    main()
