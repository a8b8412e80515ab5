"""`tfface embed PHOTOS [--output FILE.npz]`: unit embeddings of the faces of photos."""

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.image_files import expand_images


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_model(parser)
    arguments.add_detection(parser)
    arguments.add_images(parser)
    parser.add_argument("--output", help="write embeddings, paths and boxes to this .npz file")
    parser.add_argument(
        "--all_faces", action="store_true", help="embed every face, not one face per photo"
    )
    arguments.add_policy(parser)


def check(args):
    arguments.check_model(args)
    arguments.check_detection(args)
    images = expand_images(args.images)
    arguments.check_output_file(args)
    return images


def run(args, images):
    import numpy as np

    recognizer = photos.recognizer(args)
    model = recognizer.model
    items, skipped = photos.embed_items(recognizer, args, images, "embed")
    if items and args.output:  # nothing embedded: no file either
        np.savez(
            args.output,
            embeddings=np.stack([e for _, _, e in items]).astype(np.float32),
            paths=np.array([p for p, _, _ in items], dtype=str),
            boxes=np.array(
                [f["box"] if f else [np.nan] * 4 for _, f, _ in items], np.float32
            ).reshape(-1, 4),
        )
    payload = {
        "model": model.name,
        "embedding_size": model.embedding_size,
        "embeddings": [
            {"path": p, "face": f, "embedding": [float(v) for v in e]} for p, f, e in items
        ],
        "skipped": skipped,
    }
    rows = [
        [p, output.box(f["box"]) if f else "aligned", " ".join(f"{v:+.3f}" for v in e[:4]) + " …"]
        for p, f, e in items
    ]
    lines = output.table(rows, ["image", "face box", "embedding"])
    lines.append(
        f"{len(items)} embedding(s) of size {model.embedding_size} ({model.name})"
        + (f" written to {args.output}" if items and args.output else "")
        + "."
    )
    output.emit(args, payload, lines + output.skipped_lines(skipped))
    if not items:
        raise CommandError(f"nothing embedded: {photos.describe_skipped(skipped)}")
    return EXIT_OK


COMMAND = Command(
    name="embed",
    help="unit embeddings of the faces of photos",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
