"""The flags several commands share, each with its check; no TensorFlow.

`add_*` functions add flags to a command's parser; `check_*` functions check them (and the
paths they name) from the filesystem alone, raising `InputError` or `ModelLoadError`
with a message that names the flag and the value (exit 2 before TensorFlow loads).
"""

import argparse
import os

from tfface.cli.image_files import InputError
from tfface.gallery.registry import store_class
from tfface.recognition.model_source import DEFAULT_MODEL
from tfface.recognition.model_source import resolve_model_argument


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help shows every default and keeps the description's line breaks."""


# --- flags ---------------------------------------------------------------------------------
def add_output(parser):
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--no_progress", action="store_true", help="no progress bar on multi-image runs"
    )


def add_model(parser):
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a tfface SavedModel directory (or a TF Serving model directory), a .keras "
        "file or a pretrained model name; its metadata sets the crop size and template",
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="inputs are already-aligned face crops: skip detection and alignment",
    )


def add_detection(parser):
    parser.add_argument(
        "--min_confidence",
        type=float,
        default=0.9,
        help="detector score below which a detection is not a face",
    )
    parser.add_argument(
        "--min_face_size", type=float, default=20, help="smallest face side (px) detected"
    )
    parser.add_argument(
        "--max_detect_side",
        type=int,
        default=1600,
        help="larger photos are downscaled to this longer side for detection only",
    )


def add_policy(parser):
    parser.add_argument(
        "--policy",
        choices=("largest", "single"),
        default="largest",
        help="photos with several faces: use the largest, or fail naming the count",
    )


def add_images(parser):
    parser.add_argument("images", nargs="+", help="image files or folders (searched recursively)")


def add_gallery(parser, help="gallery file or URI"):
    parser.add_argument("--gallery", required=True, help=help)


# --- checks --------------------------------------------------------------------------------
def check_model(args):
    """`--model` names a SavedModel, a .keras file or a pretrained name."""
    resolve_model_argument(args.model)


def check_detection(args):
    if not 0.0 <= args.min_confidence <= 1.0:
        raise InputError(f"--min_confidence must be in [0, 1]. Received: {args.min_confidence}")
    if args.min_face_size < 12:
        raise InputError(f"--min_face_size must be >= 12. Received: {args.min_face_size}")
    if args.max_detect_side < 64:
        raise InputError(f"--max_detect_side must be >= 64. Received: {args.max_detect_side}")


def check_threshold(args):
    if args.threshold is not None and not -1.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be a cosine in [-1, 1]. Received: {args.threshold}")


def check_gallery(location, must_exist):
    """A gallery file: not a folder, existing when `must_exist`, in an existing folder.
    Locations of other stores (`milvus://`...) are checked when they are opened."""
    if not store_class(location).location_is_path:
        return
    if os.path.isdir(location):
        raise InputError(f"--gallery {location}: is a folder; a gallery is a file.")
    if must_exist and not os.path.isfile(location):
        raise InputError(f"--gallery {location}: no such gallery (create it with `enroll`).")
    parent = os.path.dirname(os.path.abspath(location))
    if not os.path.isdir(parent):
        raise InputError(f"--gallery {location}: folder {parent} does not exist.")


def check_draw(args, n_images):
    """`--draw` is an image file for one photo, a folder for several."""
    if args.draw is None:
        return
    draw = args.draw
    many = n_images > 1
    if many and os.path.isfile(draw):
        raise InputError(f"--draw {draw}: several photos need a folder, not a file.")
    if not many and os.path.isdir(draw):
        raise InputError(f"--draw {draw}: is a folder; give an output image file.")
    parent = draw if many else os.path.dirname(os.path.abspath(draw))
    if not many and not os.path.isdir(parent):
        raise InputError(f"--draw {draw}: folder {parent} does not exist.")
    if getattr(args, "aligned", False):
        raise InputError("--draw needs photos; it cannot be used with --aligned.")


def check_output_file(args):
    if args.output is not None:
        parent = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(parent):
            raise InputError(f"--output {args.output}: folder {parent} does not exist.")
