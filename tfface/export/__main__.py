"""`python -m tfface.export`: export a saved `.keras` embedding model for TF Serving.

Example:

    python -m tfface.export --model runs/exp1/model.keras --export_dir /models \
        --name faces --threshold 0.35
"""

import argparse
import os
import sys


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tfface.export",
        description="Export a .keras embedding model (images in 0-255 -> unit embeddings) as "
        "a TF Serving SavedModel at EXPORT_DIR/NAME/VERSION.",
    )
    parser.add_argument("--model", required=True, help="path of the .keras model file")
    parser.add_argument("--export_dir", required=True, help="base directory TF Serving polls")
    parser.add_argument("--name", default="tfface", help="model name (default: tfface)")
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="version number (default: one more than the largest existing version)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="calibrated cosine-similarity threshold for the `verify` signature; "
        "without it no `verify` signature is exported",
    )
    parser.add_argument(
        "--image_size",
        type=int,
        default=None,
        help="input size S (default: the model's fixed input size)",
    )
    parser.add_argument(
        "--warmup_batch_sizes",
        default="1",
        help="comma-separated batch sizes of the warmup requests (default: 1)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version directory"
    )
    args = parser.parse_args(argv)
    if not os.path.isfile(args.model):
        parser.error(f"--model must be an existing .keras file. Received: --model={args.model}")
    try:
        args.warmup_batch_sizes = [int(b) for b in args.warmup_batch_sizes.split(",")]
    except ValueError:
        parser.error(
            "--warmup_batch_sizes must be comma-separated integers. "
            f"Received: --warmup_batch_sizes={args.warmup_batch_sizes}"
        )
    return args


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)

    # Imported after argument parsing so `--help` answers without starting TensorFlow.
    import keras
    import tensorflow as tf

    import tfface  # noqa: F401  (registers tfface layers for deserialisation)
    from tfface.export import export_saved_model

    model = keras.saving.load_model(args.model)
    path = export_saved_model(
        model,
        args.export_dir,
        name=args.name,
        version=args.version,
        threshold=args.threshold,
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
