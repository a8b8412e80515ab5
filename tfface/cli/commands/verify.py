"""`tfface verify A B`: are the faces of two photos (or aligned crops) the same person?"""

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.image_files import InputError
from tfface.cli.image_files import expand_images


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_model(parser)
    arguments.add_detection(parser)
    parser.add_argument("image_a", help="first photo (or aligned crop with --aligned)")
    parser.add_argument("image_b", help="second photo (or aligned crop with --aligned)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine threshold (default: the model's calibrated threshold)",
    )
    arguments.add_policy(parser)


def check(args):
    arguments.check_model(args)
    arguments.check_detection(args)
    arguments.check_threshold(args)
    images = expand_images([args.image_a, args.image_b])
    if len(images) != 2:
        raise InputError("verify takes two image files, not folders.")
    return images


def run(args, images):
    recognizer = photos.recognizer(args)
    a, b = images
    # No face, several faces under --policy single, an unreadable file: the recognizer
    # raises, naming the photo, and main exits 1.
    result = recognizer.verify(a, b, policy=args.policy, aligned=args.aligned)
    payload = {"image_a": a, "image_b": b, **result.to_dict()}
    decision = {True: "same person", False: "different people", None: "no decision"}[
        result.same_person
    ]
    threshold = (
        "no threshold: the model is not calibrated; pass --threshold"
        if result.threshold is None
        else f"threshold {result.threshold:.4f}"
    )
    output.emit(args, payload, [f"{decision}: similarity {result.similarity:.4f} ({threshold})"])
    return EXIT_OK


COMMAND = Command(
    name="verify",
    help="are two faces the same person?",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
