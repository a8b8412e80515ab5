"""Command line: evaluate a saved embedding model on LFW `pairs.txt` or a `.bin` pack.

    python -m tfface.eval lfw --pairs pairs.txt --images lfw_aligned/ --model m.keras --out DIR
    python -m tfface.eval bin --pack lfw.bin --model export/1 --out DIR
    python -m tfface.eval ijb --root IJB/IJBC --dataset IJBC --model m.keras --out DIR

`ijb` (IJB-B / IJB-C 1:1 template verification) is described in `tfface.eval.ijb_cli`.

`--model` is a `.keras` file (tfface layers resolve without `custom_objects`) or a
SavedModel directory whose `serving_default` signature takes one float32 image tensor
[N, S, S, 3] with pixels 0–255 and returns the embedding. Each run writes
`DIR/<name>.json` (all metrics, per fold) and `DIR/<name>_roc.png`, and prints the
one-line summary. Arguments (paths included) are checked before TensorFlow is imported: a
bad one exits 2, naming it.
"""

import argparse
import os
import sys

from tfface.eval import bin_pack
from tfface.eval import embed
from tfface.eval import ijb_cli
from tfface.eval import lfw
from tfface.eval import verification


def load_embed_fn(model_path):
    """Loads `model_path` and returns (embed_fn, image_size or None).

    `embed_fn` maps float32 [N, S, S, 3] (0–255) to numpy embeddings [N, D].
    """
    model_path = os.fspath(model_path)
    # `python -m tfface.eval` defers TensorFlow until its arguments are checked: the first
    # import happens here, without TF's C++ start-up notices (a no-op once imported).
    from tfface import _startup

    _startup.import_tensorflow()
    if model_path.endswith(".keras"):
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"--model: no such .keras file: {model_path!r}")
        import keras

        from tfface.models.keras_objects import register_keras_objects

        register_keras_objects()  # tfface layers resolve without custom_objects
        model = keras.saving.load_model(model_path, compile=False)
        shape = model.input_shape
        if isinstance(shape, list) or len(shape) != 4:
            raise ValueError(
                f"--model {model_path!r} must take one image input [N, S, S, 3]. "
                f"Received input shape: {shape}"
            )

        def keras_fn(x):
            y = model(x, training=False)
            if isinstance(y, (list, tuple, dict)):
                raise ValueError(f"--model {model_path!r} must return one embedding tensor.")
            return keras.ops.convert_to_numpy(y)

        return keras_fn, shape[1]
    if os.path.isfile(os.path.join(model_path, "saved_model.pb")):
        import tensorflow as tf

        loaded = tf.saved_model.load(model_path)
        if "serving_default" not in loaded.signatures:
            raise ValueError(
                f"SavedModel {model_path!r} has no 'serving_default' signature. "
                f"Signatures: {sorted(loaded.signatures)}"
            )
        sig = loaded.signatures["serving_default"]
        _, inputs = sig.structured_input_signature
        specs = list(inputs.items())
        if (
            len(specs) != 1
            or specs[0][1].dtype != tf.float32
            or specs[0][1].shape.rank not in (None, 4)
        ):
            raise ValueError(
                f"SavedModel {model_path!r}: serving_default must take one float32 image "
                f"tensor [N, S, S, 3] (0–255). Received inputs: {inputs}"
            )
        name, spec = specs[0]
        outputs = sig.structured_outputs
        if len(outputs) == 1:
            out_key = next(iter(outputs))
        elif "embeddings" in outputs:
            out_key = "embeddings"
        else:
            raise ValueError(
                f"SavedModel {model_path!r}: cannot tell which serving_default output is the "
                f"embedding (none is named 'embeddings'). Outputs: {sorted(outputs)}"
            )

        def saved_model_fn(x):
            return sig(**{name: tf.constant(x, dtype=tf.float32)})[out_key].numpy()

        size = spec.shape[1] if spec.shape.rank == 4 else None
        return saved_model_fn, size
    raise ValueError(
        f"--model must be a .keras file or a SavedModel directory (with saved_model.pb). "
        f"Received: {model_path!r}"
    )


def _image_size(args, model_size):
    if args.image_size is not None:
        if model_size is not None and model_size != args.image_size:
            raise ValueError(
                f"--image_size={args.image_size} but the model takes {model_size}×{model_size} "
                "images."
            )
        return args.image_size
    if model_size is None:
        raise ValueError("The model does not fix its input size: pass --image_size.")
    return int(model_size)


def _run_lfw(args, embed_fn, image_size):
    pairs = lfw.read_pairs(args.pairs)
    if pairs.num_sets < 2:
        raise ValueError(
            f"--pairs {args.pairs!r} holds {pairs.num_sets} set; the protocol's folds are the "
            "file's sets, so it needs >= 2 (LFW view 2 pairs.txt has 10)."
        )
    paths1, paths2, issame = lfw.pair_paths(pairs, args.images, ext=args.ext)
    unique = list(dict.fromkeys(paths1 + paths2))
    index = {p: i for i, p in enumerate(unique)}
    emb = embed.embed_images(
        embed_fn,
        lambda i: embed.decode_image(unique[i], image_size, source=unique[i]),
        len(unique),
        batch_size=args.batch_size,
        flip=not args.no_flip,
        progress=True,
    )
    return verification.evaluate(
        emb[[index[p] for p in paths1]],
        emb[[index[p] for p in paths2]],
        issame,
        num_folds=pairs.num_sets,
        far_target=args.far_target,
        metric=args.metric,
    )


def _run_bin(args, embed_fn, image_size):
    return bin_pack.evaluate_bin(
        embed_fn,
        args.pack,
        image_size=image_size,
        batch_size=args.batch_size,
        flip=not args.no_flip,
        num_folds=args.folds,
        far_target=args.far_target,
        metric=args.metric,
        progress=True,
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tfface.eval", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", required=True, help=".keras file or SavedModel directory")
    common.add_argument("--out", required=True, help="output directory for JSON + ROC PNG")
    common.add_argument("--name", default=None, help="report file stem (default: lfw / pack)")
    common.add_argument("--image_size", "--image-size", type=int, default=None)
    common.add_argument("--batch_size", "--batch-size", type=int, default=64)
    common.add_argument(
        "--no_flip",
        "--no-flip",
        action="store_true",
        help="do not add the flipped image's embedding",
    )
    common.add_argument("--metric", choices=verification.METRICS, default="cosine")
    common.add_argument("--far_target", "--far-target", type=float, default=1e-3)
    p = sub.add_parser("lfw", parents=[common], help="LFW pairs.txt + image folder")
    p.add_argument("--pairs", required=True, help="pairs.txt; its sets are the folds")
    p.add_argument("--images", required=True, help="root of <name>/<name>_<n:04d>.<ext>")
    p.add_argument("--ext", default="jpg")
    b = sub.add_parser("bin", parents=[common], help="insightface .bin verification pack")
    b.add_argument("--pack", required=True)
    b.add_argument("--folds", type=int, default=10)
    ijb_cli.add_parser(sub)
    return parser


def check_args(parser, args):
    """Exits 2 (`parser.error`) naming the first argument that cannot work; reads only the
    filesystem, so it runs before TensorFlow loads."""
    model = os.fspath(args.model)
    if model.endswith(".keras"):
        if not os.path.isfile(model):
            parser.error(f"--model: no such .keras file: {model!r}")
    elif not os.path.isfile(os.path.join(model, "saved_model.pb")):
        parser.error(
            "--model must be a .keras file or a SavedModel directory (with saved_model.pb). "
            f"Received: --model={model}"
        )
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out}: exists and is not a directory")
    if args.image_size is not None and args.image_size < 1:
        parser.error(f"--image_size must be >= 1. Received: --image_size={args.image_size}")
    if args.batch_size < 1:
        parser.error(f"--batch_size must be >= 1. Received: --batch_size={args.batch_size}")
    if not 0.0 <= args.far_target <= 1.0:
        parser.error(f"--far_target must be in [0, 1]. Received: --far_target={args.far_target}")
    if args.command == "lfw":
        if not os.path.isfile(args.pairs):
            parser.error(f"--pairs {args.pairs}: no such file")
        if not os.path.isdir(args.images):
            parser.error(f"--images {args.images}: no such directory")
    else:
        if not os.path.isfile(args.pack):
            parser.error(f"--pack {args.pack}: no such file")
        if args.folds < 2:
            parser.error(f"--folds must be >= 2. Received: --folds={args.folds}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ijb":
        return ijb_cli.main(args)
    check_args(parser, args)
    embed_fn, model_size = load_embed_fn(args.model)
    image_size = _image_size(args, model_size)
    if args.command == "lfw":
        result = _run_lfw(args, embed_fn, image_size)
        name = args.name or "lfw"
    else:
        result = _run_bin(args, embed_fn, image_size)
        name = args.name or os.path.splitext(os.path.basename(args.pack))[0]
    json_path = os.path.join(args.out, f"{name}.json")
    png_path = os.path.join(args.out, f"{name}_roc.png")
    verification.write_report(result, json_path, png_path)
    print(f"{name}: {verification.format_result(result)}")
    print(f"wrote {json_path} and {png_path}", file=sys.stderr)
    return 0
