"""`python -m tfface.data {inspect, convert, synth}`: look at, convert and create datasets.

python -m tfface.data inspect folder:/data/lfw --report lfw_report.json
python -m tfface.data convert folder:/data/lfw rec:/data/lfw_rec
python -m tfface.data convert rec:/data/faces_emore/train tfrecord:/data/ms1m/train --num_shards 64
python -m tfface.data inspect tfrecord:/data/ms1m/train     # the spec a writer got reads it back
python -m tfface.data synth folder:/tmp/faces --identities 100 --images_per_identity 10

Flag and spec errors exit 2 before any data is read and before TensorFlow loads (0.2 s);
bad data under --on_bad_image=fail exits 1.
"""

import argparse
import json
import sys

import numpy as np
import tqdm

# Only TensorFlow-free modules at the top: flags and specs are checked (exit 2) before
# TensorFlow loads; the readers and writers it needs load when a command runs.
from tfface.data.bad_input import BadInputError
from tfface.data.bad_input import BadInputReport
from tfface.data.loader import check_spec
from tfface.data.loader import check_writable
from tfface.data.loader import encode_image
from tfface.data.loader import iter_examples
from tfface.data.loader import load
from tfface.data.loader import write

# `synth` defaults: the first 1,000 identities of the `synthetic` training spec, 20 images
# each (SyntheticSource's images_per_identity), ~20k JPEGs: enough to train on, quick to write.
SYNTH_IDENTITIES = 1000
SYNTH_IMAGES_PER_IDENTITY = 20


def _progress(desc, total=None):
    bar = tqdm.tqdm(total=total, desc=desc, unit="img", file=sys.stderr, mininterval=0.5)
    return bar, bar.update


def _load(spec, args, desc="scan"):
    kwargs = {}
    if args.image_size is not None:
        kwargs["image_size"] = args.image_size
    if args.max_pixels is not None:
        kwargs["max_pixels"] = args.max_pixels
    for key in ("split", "data_dir"):
        if getattr(args, key, None) is not None:
            kwargs[key] = getattr(args, key)
    if not spec.startswith("synthetic"):
        bar, kwargs["progress"] = _progress(f"{desc} {spec}")
        try:
            return load(spec, on_bad_image=args.on_bad_image, **kwargs)
        finally:
            bar.close()
    return load(spec, on_bad_image=args.on_bad_image, **kwargs)


def _decode_pass(source):
    if not hasattr(source, "validate_decode"):
        return 0
    bar, update = _progress("decode", source.num_examples)
    try:
        return source.validate_decode(progress=update)
    finally:
        bar.close()


def _stats(source):
    manifest = source.manifest
    counts = manifest.counts
    stats = {
        "identities": manifest.num_identities,
        "images": manifest.num_images,
    }
    if len(counts):
        stats.update(
            images_per_identity_min=int(counts.min()),
            images_per_identity_median=float(np.median(counts)),
            images_per_identity_max=int(counts.max()),
            identities_with_one_image=int(np.sum(counts == 1)),
        )
    return stats


def cmd_inspect(args):
    source = _load(args.spec, args)
    if args.decode:
        _decode_pass(source)
    report = getattr(source, "report", None) or BadInputReport(args.spec)
    stats = _stats(source)
    for key, value in stats.items():
        print(f"{key}: {value}")
    print(report.summary())
    if args.report:
        out = dict(report.to_dict(), **stats, decoded=bool(args.decode))
        with open(args.report, "w") as f:
            json.dump(out, f, indent=2)
        print(f"report written to {args.report}")
    return 0


def _write_with_progress(examples, dst, num_shards, desc, total):
    """Writes `examples` to the `dst` spec, advancing a progress bar per example."""
    bar, update = _progress(desc, total)

    def tracked():
        for example in examples:
            update(1)
            yield example

    try:
        return write(tracked(), dst, num_shards=num_shards)
    finally:
        bar.close()


def cmd_convert(args):
    source = _load(args.src, args)
    if args.decode:
        _decode_pass(source)
    n = _write_with_progress(
        iter_examples(source, sort_by_label=True),
        args.dst,
        args.num_shards,
        f"write {args.dst}",
        source.num_examples,
    )
    print(f"wrote {n} images of {source.manifest.num_identities} identities to {args.dst}")
    _print_read_back(args.dst)
    report = getattr(source, "report", None)
    if report is not None:
        print(report.summary())
        if args.report:
            report.to_json(args.report)
            print(f"report written to {args.report}")
    return 0


def synthetic_examples(identities, images_per_identity, image_size, seed, nuisance=1.0, chunk=256):
    """(JPEG bytes, label, identity) of rendered synthetic faces, grouped by identity."""
    from tfface.data.synthetic import SyntheticFaces

    faces = SyntheticFaces(image_size=image_size, seed=seed, nuisance=nuisance)
    ids = np.repeat(np.arange(identities, dtype=np.int64), images_per_identity)
    var = np.tile(np.arange(images_per_identity, dtype=np.int64), identities)
    for start in range(0, len(ids), chunk):
        images, _ = faces.render(ids[start : start + chunk], var[start : start + chunk])
        for image, label in zip(images, ids[start : start + chunk], strict=True):
            yield encode_image(image), int(label), f"synthetic_{label:06d}"


def _print_read_back(dst):
    """Prints the spec that reads `dst` back, after checking that it does."""
    check_spec(dst)
    print(f"read it back with the spec {dst} (python -m tfface.data inspect {dst})")


def cmd_synth(args):
    total = args.identities * args.images_per_identity
    examples = synthetic_examples(
        args.identities, args.images_per_identity, args.image_size, args.seed, args.nuisance
    )
    n = _write_with_progress(examples, args.dst, args.num_shards, f"synth {args.dst}", total)
    print(f"wrote {n} synthetic images of {args.identities} identities to {args.dst}")
    _print_read_back(args.dst)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tfface.data", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def reading(p):
        p.add_argument("--on_bad_image", choices=("skip", "fail"), default="skip")
        p.add_argument("--image_size", type=int, default=None, help="resize to S×S on decode")
        p.add_argument("--max_pixels", type=float, default=None, help="header size limit")
        p.add_argument("--split", default=None, help="tfds: split (default train)")
        p.add_argument("--data_dir", default=None, help="tfds: data directory")
        p.add_argument("--report", default=None, help="write the bad-input report as JSON")

    p = sub.add_parser("inspect", help="count identities, images and bad inputs")
    p.add_argument("spec")
    reading(p)
    p.add_argument("--no_decode", dest="decode", action="store_false", help="header checks only")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("convert", help="copy a dataset into another format")
    p.add_argument("src")
    p.add_argument("dst", help="folder:PATH, tfrecord:PREFIX or rec:PATH")
    reading(p)
    p.add_argument("--num_shards", type=int, default=1)
    p.add_argument("--decode", action="store_true", help="full decode pass before writing")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "synth",
        help="write synthetic faces (tfface.data.synthetic)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("dst", help="folder:PATH, tfrecord:PREFIX or rec:PATH")
    p.add_argument("--identities", type=int, default=SYNTH_IDENTITIES, help="identities")
    p.add_argument(
        "--images_per_identity",
        type=int,
        default=SYNTH_IMAGES_PER_IDENTITY,
        help="images of each identity",
    )
    p.add_argument("--image_size", type=int, default=112, help="image height and width")
    p.add_argument("--seed", type=int, default=0, help="synthetic world seed")
    p.add_argument("--nuisance", type=float, default=1.0, help="pose/light/noise strength")
    p.add_argument("--num_shards", type=int, default=1, help="tfrecord: number of shards")
    p.set_defaults(func=cmd_synth)
    return parser


def _check_args(parser, args):
    """Flag and spec errors, before anything is read or written (argparse exits 2)."""
    specs = {"inspect": ("spec",), "convert": ("src", "dst"), "synth": ("dst",)}[args.command]
    for flag in specs:
        spec = getattr(args, flag)
        try:
            if flag == "dst":
                check_writable(spec)
            else:
                check_spec(spec)
        except ValueError as e:
            parser.error(f"{flag}: {e}")
    positive = ["image_size", "num_shards", "identities", "images_per_identity"]
    for name in positive:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1. Received: --{name}={value}")
    max_pixels = getattr(args, "max_pixels", None)
    if max_pixels is not None and not max_pixels > 0:
        parser.error(f"--max_pixels must be > 0. Received: --max_pixels={max_pixels}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    from tfface import _startup

    # The commands' readers and writers import TensorFlow: first here, without its C++
    # start-up notices (a no-op when it is already imported).
    _startup.import_tensorflow()
    try:
        return args.func(args)
    except (BadInputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
