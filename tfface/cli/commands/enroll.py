"""`tfface enroll --gallery G PEOPLE/` or `--name NAME PHOTOS`: add people to a gallery.

PEOPLE/<name>/<photos> trees enrol one person per folder; `--name` enrols every photo as
one person. One face per photo (`--policy`). A person none of whose photos gave a face is
named as not enrolled; a run that enrolled nobody exits 1 and creates no gallery.
`--min_quality=X` skips faces whose quality score (the feature norm of an AdaFace/MagFace
model, `Face.quality["embedding_norm"]`) is below X, and reports them.

Each photo is committed as it is embedded, so Ctrl-C loses at most the photo in hand: the
run stops with one line ("interrupted: N photos enrolled, M left; rerun to continue",
exit 130). A rerun skips, before embedding them, the photos the gallery already holds for
that person: the same file (its absolute path, the row's source) or the same content at
another path (the SHA-256 of the file, kept in the row's metadata as `file_sha256`).
"""

import hashlib
import math
import os

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.command import CommandInterrupted
from tfface.cli.image_files import InputError
from tfface.cli.image_files import expand_images
from tfface.cli.image_files import identity_tree
from tfface.model_metadata import quality_scores_of
from tfface.recognition.model_source import resolve_model_argument


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_model(parser)
    arguments.add_detection(parser)
    arguments.add_gallery(parser, help="gallery file (created if missing) or URI")
    parser.add_argument(
        "--name",
        help="enrol all INPUTS as this one person (default: INPUTS are ROOT/<name>/<images> trees)",
    )
    parser.add_argument(
        "inputs", nargs="+", help="identity-tree roots, or images/folders with --name"
    )
    arguments.add_policy(parser)
    parser.add_argument(
        "--min_quality",
        type=float,
        default=None,
        help="skip faces whose embedding_norm quality score is below this (models trained "
        "with --loss=adaface or magface provide it)",
    )


def _check_min_quality(args):
    """--min_quality needs a model that provides the score, read from its metadata file
    (no TensorFlow)."""
    if args.min_quality is None:
        return
    if not math.isfinite(args.min_quality) or args.min_quality < 0:
        raise InputError(f"--min_quality must be a number >= 0. Received: {args.min_quality}")
    if args.aligned:
        raise InputError("--min_quality needs detected faces; it does not apply to --aligned.")
    if "embedding_norm" not in quality_scores_of(*resolve_model_argument(args.model)):
        raise InputError(
            f"--min_quality needs a model with a quality score (embedding_norm: trained with "
            f"--loss=adaface or magface); --model={args.model} has none."
        )


def _quality_filter(items, args, skipped):
    """The items whose face reaches --min_quality; the others join `skipped`."""
    if args.min_quality is None:
        return items
    kept = []
    for item in items:
        score = item[1]["quality"]["embedding_norm"]
        if score >= args.min_quality:
            kept.append(item)
        else:
            reason = f"face quality embedding_norm {score:.3f} < --min_quality {args.min_quality}"
            skipped.append({"path": item[0], "reason": reason})
    return kept


def check(args):
    """Returns [(name, [image paths])], one entry per person."""
    arguments.check_model(args)
    arguments.check_detection(args)
    _check_min_quality(args)
    if args.name is not None:
        if not args.name.strip() or "\x00" in args.name:
            raise InputError(f"--name must be a non-empty name. Received: {args.name!r}")
        people = [(args.name, expand_images(args.inputs))]
    else:
        people = [person for root in args.inputs for person in identity_tree(root)]
    arguments.check_gallery(args.gallery, must_exist=False)
    return people


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _enrolled_files(gallery):
    """{name: (sources, file digests)} of the rows a gallery holds."""
    known = {}
    for name, source, _, metadata in gallery.rows():
        sources, digests = known.setdefault(name, (set(), set()))
        if source is not None:
            sources.add(source)
        if metadata and metadata.get("file_sha256"):
            digests.add(metadata["file_sha256"])
    return known


def _pending(name, paths, known):
    """[(absolute path, sha256)] of the photos not yet enrolled for `name`, and how many are."""
    sources, digests = known.get(name, ((), ()))
    pending = []
    for path in paths:
        source = os.path.abspath(path)
        if source in sources:
            continue
        digest = file_sha256(path)
        if digest not in digests:
            pending.append((path, source, digest))
    return pending, len(paths) - len(pending)


def run(args, people):
    import numpy as np

    from tfface.gallery import Gallery
    from tfface.gallery import GalleryNotFoundError

    recognizer = photos.recognizer(args)
    model_info = recognizer.model.model_info()
    # An existing gallery is opened (and its model checked) before any photo is read; a
    # new one is created with its first person, so a run that enrols nobody leaves none.
    try:
        gallery = Gallery.open(args.gallery, model_info=model_info, create=False)
    except GalleryNotFoundError:
        gallery = None
    known = {} if gallery is None else _enrolled_files(gallery)
    plan = [(name, paths, *_pending(name, paths, known)) for name, paths in people]
    left = sum(len(pending) for _, _, pending, _ in plan)
    report = {"gallery": args.gallery, "people": [], "skipped": [], "below_min_quality": 0}
    photos_enrolled = 0
    try:
        for name, paths, pending, already in plan:
            enrolled = added = 0
            # One photo at a time, each committed: an interruption keeps every photo before.
            for path, source, digest in output.progress(pending, args, f"enroll {name}"):
                items, skipped = photos.embed_items(recognizer, args, [path], f"enroll {name}")
                before = len(items)
                items = _quality_filter(items, args, skipped)
                report["below_min_quality"] += before - len(items)
                report["skipped"] += skipped
                if items:
                    if gallery is None:
                        gallery = Gallery.open(args.gallery, model_info=model_info, create=True)
                    added += gallery.enroll(
                        name,
                        np.stack([e for _, _, e in items]),
                        sources=[source] * len(items),
                        metadata=[{"file_sha256": digest}] * len(items),
                    )
                    enrolled += len(items)
                    photos_enrolled += 1
                left -= 1
            report["people"].append(
                {
                    "name": name,
                    "images": len(paths),
                    "already_enrolled": already,
                    "enrolled": enrolled,
                    "new": added,
                }
            )
        total = 0 if gallery is None else len(gallery.identities())
    except KeyboardInterrupt:
        raise CommandInterrupted(
            f"{photos_enrolled} photos enrolled, {left} left; rerun to continue"
        ) from None
    finally:
        if gallery is not None:
            gallery.close()
    enrolled = [p for p in report["people"] if p["enrolled"]]
    report["not_enrolled"] = [
        p["name"] for p in report["people"] if not p["enrolled"] and not p["already_enrolled"]
    ]
    report["already_enrolled"] = sum(p["already_enrolled"] for p in report["people"])
    report["gallery_people"] = total
    rows = [
        [p["name"], p["images"], p["already_enrolled"], p["enrolled"], p["new"]]
        for p in report["people"]
    ]
    lines = output.table(rows, ["name", "images", "already enrolled", "faces enrolled", "new"])
    lines.append(
        f"{sum(p['enrolled'] for p in enrolled)} face(s) of {len(enrolled)} people "
        f"enrolled into {args.gallery} ({total} people in it)."
    )
    if report["already_enrolled"]:
        lines.append(f"{report['already_enrolled']} already enrolled, skipped.")
    if args.min_quality is not None:
        lines.append(
            f"{report['below_min_quality']} face(s) below --min_quality {args.min_quality} "
            "(embedding_norm) skipped."
        )
    if report["not_enrolled"]:
        lines.append(
            f"{len(report['not_enrolled'])} not enrolled (no usable face in their photos): "
            + ", ".join(report["not_enrolled"])
            + "."
        )
    output.emit(args, report, lines + output.skipped_lines(report["skipped"]))
    if not enrolled and not report["already_enrolled"]:
        raise CommandError(
            "nothing enrolled: no usable face for "
            + ", ".join(report["not_enrolled"])
            + ("" if gallery is not None else f"; no gallery was created at {args.gallery}")
        )
    return EXIT_OK


COMMAND = Command(
    name="enroll",
    help="add people to a gallery: an identity folder tree, or --name and images",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
