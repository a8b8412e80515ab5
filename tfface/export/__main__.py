"""`python -m tfface.export`: export a saved embedding model (or a finished run) for TF Serving,
onnxruntime or LiteRT.

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
    # ONNX with float16 weights; LiteRT int8 calibrated on a folder of aligned crops
    python -m tfface.export --model model.keras --export_dir /models --format onnx \
        --quantize float16
    python -m tfface.export --model model.keras --export_dir /models --format litert \
        --quantize int8 --calibration_data aligned/

`--model` is a `.keras` file or a run directory holding `embedding_model.keras` (what
train.py saves); a run directory exports to `<run>/export` unless `--export_dir` says
otherwise. At most one of `--threshold`, `--threshold_far`, `--threshold_accuracy`; the
last two calibrate on `--eval_data` (`synthetic`, `bin:PATH` or
`lfw:PAIRS_TXT,IMAGES_DIR[,EXT]`, as train.py's `--eval_data`).

`--format onnx|litert` writes `EXPORT_DIR/NAME/VERSION/model.onnx|model.tflite` with
`tfface_model.json` beside it (see `tfface.export.export_onnx`); int8 is calibrated on
`--calibration_data` (a folder of aligned crops) or, by default, on synthetic faces aligned
on the model's template, and the output says which.

Flag errors, and a version directory that already exists, exit 2, naming the flag or
path, before TensorFlow is imported.
"""

import argparse
import importlib.util
import math
import os
import sys

# Neither imports TensorFlow: the eval-data spec, the export name and version, and the
# calibration folder are checked before it loads.
from tfface.eval import pairs
from tfface.export import calibration_crops
from tfface.export import layout

RUN_MODEL_FILE = "embedding_model.keras"
FORMATS = ("savedmodel", "onnx", "litert")
# Notices of the TFLite converter and interpreter (C++, straight to fd 2) on every export.
_CONVERTER_NOISE = ("fully_quantize: ", "Created TensorFlow Lite XNNPACK delegate")
# The packages each format needs beyond requirements.txt's core, and the extra naming them.
_FORMAT_PACKAGES = {
    "onnx": (("tf2onnx", "onnxruntime"), "onnx"),
    "litert": (("ai_edge_litert",), "litert"),
}


def resolve_model_path(path):
    """The `.keras` file named by `path` (a `.keras` file or a run directory), or None."""
    if os.path.isdir(path):
        path = os.path.join(path, RUN_MODEL_FILE)
    return path if path.endswith(".keras") and os.path.isfile(path) else None


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tfface.export",
        description="Export a .keras embedding model (images in 0-255 -> unit embeddings) or a "
        "finished run as a TF Serving SavedModel, an ONNX file or a LiteRT file at "
        "EXPORT_DIR/NAME/VERSION.",
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
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the synthetic pairs and of the int8 calibration crops",
    )
    parser.add_argument(
        "--image_size",
        type=int,
        default=None,
        help="input size S (default: the model's fixed input size)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="savedmodel",
        help="savedmodel (TF Serving), onnx (model.onnx for onnxruntime) or litert "
        "(model.tflite for the LiteRT interpreter)",
    )
    parser.add_argument(
        "--quantize",
        choices=("float16", "int8"),
        default=None,
        help="onnx/litert only: float16 weights, or int8 post-training quantisation "
        "(default: float32)",
    )
    parser.add_argument(
        "--calibration_data",
        default=None,
        help="--quantize int8 only: a folder of aligned face crops (any layout; other sizes "
        "are resized to the model's). Default: synthetic faces aligned on the model's template",
    )
    parser.add_argument(
        "--calibration_count",
        type=int,
        default=None,
        help=f"--quantize int8 only: how many crops calibrate it (default "
        f"{calibration_crops.DEFAULT_COUNT})",
    )
    parser.add_argument(
        "--warmup_batch_sizes",
        default=None,
        help="savedmodel only: comma-separated batch sizes of the warmup requests (default 1)",
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
    _check_format_flags(parser, args)
    try:
        sizes = [int(b) for b in (args.warmup_batch_sizes or "1").split(",")]
        if min(sizes) < 1:
            raise ValueError
        args.warmup_batch_sizes = sizes
    except ValueError:
        parser.error(
            "--warmup_batch_sizes must be comma-separated positive integers. "
            f"Received: --warmup_batch_sizes={args.warmup_batch_sizes}"
        )
    try:
        layout.check_name(args.name)
    except ValueError:
        parser.error(
            "--name must be letters, digits, '.', '_' or '-', not starting with '.' or '-'. "
            f"Received: --name={args.name}"
        )
    if os.path.exists(args.export_dir) and not os.path.isdir(args.export_dir):
        parser.error(f"--export_dir must be a directory. Received: --export_dir={args.export_dir}")
    if args.version is not None and not args.overwrite:
        path = os.path.join(args.export_dir, args.name, str(args.version))
        if os.path.exists(path):
            parser.error(_exists_message(path))
    return args


def _exists_message(path):
    """What to do about a version directory that is already there."""
    model_dir = os.path.dirname(path)
    next_version = max(layout.existing_versions(model_dir), default=0) + 1
    return (
        f"{path} already exists. Pass --overwrite to replace it, or --version "
        f"{next_version} (or no --version: the next free version) to keep it."
    )


def _check_format_flags(parser, args):
    if args.format == "savedmodel":
        if args.quantize is not None:
            parser.error(
                f"--quantize applies to --format onnx or litert. Received: --quantize="
                f"{args.quantize} with --format=savedmodel"
            )
    else:
        if args.warmup_batch_sizes is not None:
            parser.error(
                "--warmup_batch_sizes applies to --format savedmodel only. "
                f"Received: --warmup_batch_sizes={args.warmup_batch_sizes} with "
                f"--format={args.format}"
            )
        modules, extra = _FORMAT_PACKAGES[args.format]
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            parser.error(
                f"--format={args.format} needs {', '.join(missing)}: pip install "
                f"'tfface[{extra}]' (pins in requirements.txt)."
            )
    if args.quantize != "int8":
        for flag in ("calibration_data", "calibration_count"):
            if getattr(args, flag) is not None:
                parser.error(
                    f"--{flag} is only used with --quantize int8. "
                    f"Received: --{flag}={getattr(args, flag)}"
                )
        return
    if args.calibration_count is None:
        args.calibration_count = calibration_crops.DEFAULT_COUNT
    if args.calibration_count < 1:
        parser.error(
            f"--calibration_count must be >= 1. Received: --calibration_count="
            f"{args.calibration_count}"
        )
    if args.calibration_data is not None:
        if not os.path.isdir(args.calibration_data):
            parser.error(
                "--calibration_data must be a folder of aligned face crops. "
                f"Received: --calibration_data={args.calibration_data}"
            )
        if not calibration_crops.list_crop_files(args.calibration_data):
            parser.error(
                f"--calibration_data holds no image files "
                f"({', '.join(calibration_crops.IMAGE_EXTENSIONS)}). "
                f"Received: --calibration_data={args.calibration_data}"
            )


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


def _export_portable(model, args, threshold):
    """ONNX or LiteRT export, its calibration data and a check against the Keras model."""
    import keras
    import numpy as np

    from tfface import _startup
    from tfface import model_metadata
    from tfface.export import PortableModel
    from tfface.export import export_litert
    from tfface.export import export_onnx
    from tfface.export.calibration_crops import folder_crops
    from tfface.export.calibration_crops import synthetic_crops
    from tfface.export.saved_model import _resolve_image_size

    size = _resolve_image_size(model, args.image_size)
    template = model_metadata.model_template(model)
    crops = None
    if args.quantize == "int8":
        if args.calibration_data is None:
            crops = synthetic_crops(size, template, count=args.calibration_count, seed=args.seed)
        else:
            crops = folder_crops(
                args.calibration_data, size, count=args.calibration_count, seed=args.seed
            )
            for path, reason in crops.skipped[:5]:
                print(f"  skipped {path}: {reason}", file=sys.stderr)
    export = export_onnx if args.format == "onnx" else export_litert
    # The converter's and the interpreter's C++ notices, written straight to fd 2.
    with _startup.filtered_stderr(_startup.NOISE + _CONVERTER_NOISE):
        path = export(
            model,
            args.export_dir,
            name=args.name,
            version=args.version,
            threshold=threshold,
            image_size=args.image_size,
            overwrite=args.overwrite,
            quantize=args.quantize,
            calibration=crops,
            seed=args.seed,
        )
        portable = PortableModel(path)
    meta = portable.metadata
    size_bytes = os.path.getsize(portable.path)
    size_text = f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 1e5 else f"{size_bytes / 1e3:.1f} kB"
    print(
        f"Exported {args.model} to {portable.path} ({args.format}, {meta['quantization']}, "
        f"{size_text})"
    )
    print(
        f"  images: float32 [N, {size}, {size}, 3] -> embeddings: float32 "
        f"[N, {meta['embedding_size']}]"
    )
    threshold_text = "none" if meta["threshold"] is None else f"{meta['threshold']:.4f}"
    print(
        f"  metadata (in the file and in {model_metadata.METADATA_FILE}): crop {size}, "
        f"template {meta['template']['name']}, threshold {threshold_text}"
    )
    if crops is not None:
        print(f"  int8 calibrated on {crops.description}")
    # Faces the calibration did not see (another synthetic world seed).
    check = synthetic_crops(size, template, count=16, seed=args.seed + 1)
    expected = keras.ops.convert_to_numpy(model(check.images, training=False))
    with _startup.filtered_stderr(_startup.NOISE + _CONVERTER_NOISE):
        got = portable.embed(check.images)  # the interpreter's first run applies XNNPACK
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    cosine = np.sum(expected * got, axis=1)
    print(
        f"  check: cosine to the Keras model on {check.description.split(' (')[0]} "
        f"(seed {args.seed + 1}): min {cosine.min():.5f}, median {np.median(cosine):.5f}"
    )
    return path


def _export_savedmodel(model, args, threshold):
    import tensorflow as tf

    from tfface.export import export_saved_model

    path = export_saved_model(
        model,
        args.export_dir,
        name=args.name,
        version=args.version,
        threshold=threshold,
        image_size=args.image_size,
        overwrite=args.overwrite,
        warmup_batch_sizes=args.warmup_batch_sizes,
        threshold_source=getattr(args, "threshold_source", None),
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


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)

    # Imported after argument parsing so `--help` and flag errors answer without starting
    # TensorFlow, and through `_startup`: TensorFlow's two shared libraries each print the
    # start-up banner, which a plain `import keras` here let through twice.
    from tfface import _startup

    _startup.import_tensorflow()
    import keras

    from tfface import model_metadata
    from tfface.models.keras_objects import register_keras_objects

    # tfface layers, losses and backbones resolve without custom_objects (`import tfface`
    # leaves them out when it starts a command: tfface/__init__.py).
    register_keras_objects()
    model = keras.saving.load_model(args.model, compile=False)
    # The archive's tfface_model.json (crop template, fingerprint) carries over to the export.

    metadata = model_metadata.read_keras_metadata(args.model)
    if metadata is not None:
        model.tfface_metadata = metadata
    threshold = args.threshold
    # What the export's metadata says the threshold was fitted on (SavedModel).
    args.threshold_source = None if threshold is None else "--threshold given to the export"
    if args.threshold_far is not None or args.threshold_accuracy:
        shape = model.input_shape
        size = args.image_size or (shape[1] if len(shape) == 4 else None)
        if size is None:
            raise SystemExit("error: --image_size is needed: the model's input size is not fixed")
        calibration = _calibrate(model, args, size)
        print(f"{args.eval_data}: {calibration.summary()}")
        threshold = calibration.threshold
        args.threshold_source = f"--eval_data={args.eval_data}: {calibration.summary()}"
    export = _export_savedmodel if args.format == "savedmodel" else _export_portable
    try:
        return export(model, args, threshold)
    except FileExistsError as e:
        if getattr(e, "path", None) is None:
            raise
        # Another export published this version while this one ran.
        print(f"python -m tfface.export: error: {_exists_message(e.path)}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
