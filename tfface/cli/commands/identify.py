"""`tfface identify --gallery G PHOTOS [--draw OUT]`: who is each face? (top-k matches)

The open-set threshold (a best match below it is "unknown") is, first found: `--threshold`,
the gallery's calibrated one (`tfface calibrate --gallery G`), the model's exported 1:1
threshold. The run says which one it used.
"""

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.commands.calibrate import IDENTIFY_THRESHOLD
from tfface.cli.image_files import InputError
from tfface.cli.image_files import expand_images


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_model(parser)
    arguments.add_detection(parser)
    arguments.add_gallery(parser, help="gallery file or URI (see `enroll`)")
    arguments.add_images(parser)
    parser.add_argument("-k", type=int, default=5, help="matches listed per face")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="open-set threshold: a best match below it is 'unknown' (default: the gallery's "
        "calibrated one, else the model's)",
    )
    parser.add_argument(
        "--by",
        choices=("max", "mean"),
        default="max",
        help="score a person by their best-matching or their mean embedding",
    )
    parser.add_argument(
        "--draw", help="write the photo with boxes and names here (a folder for several photos)"
    )


def check(args):
    arguments.check_model(args)
    arguments.check_detection(args)
    arguments.check_threshold(args)
    images = expand_images(args.images)
    if args.k < 1:
        raise InputError(f"-k must be >= 1. Received: {args.k}")
    arguments.check_gallery(args.gallery, must_exist=True)
    arguments.check_draw(args, len(images))
    return images


def _identity_dict(identity, best, threshold, matches, face):
    return {
        "identity": identity,
        "similarity": None if best is None else round(best, 6),
        "threshold": threshold,
        "matches": [{"name": m.name, "similarity": round(float(m.similarity), 6)} for m in matches],
        "face": face,
    }


def open_set_threshold(args, gallery, recognizer):
    """(threshold or None, where it came from): `--threshold` > the gallery's calibrated
    threshold > the model's exported one."""
    if args.threshold is not None:
        return args.threshold, {"source": "--threshold"}
    calibrated = gallery.settings().get(IDENTIFY_THRESHOLD)
    if calibrated is not None:
        return float(calibrated["value"]), dict(calibrated, source="gallery")
    if recognizer.identify_threshold is not None:
        return recognizer.identify_threshold, {"source": "model"}
    return None, {"source": None}


def describe_threshold(threshold, origin, gallery_people):
    """The summary line: the threshold and which one it is."""
    if threshold is None:
        return (
            "open-set threshold: none (model not calibrated; pass --threshold or run "
            "`tfface calibrate`)"
        )
    text = f"open-set threshold: {threshold:.4f}"
    if origin["source"] == "--threshold":
        return text + " (--threshold)"
    if origin["source"] == "model":
        return text + (
            " (the model's exported 1:1 threshold; `tfface calibrate` fits one for this gallery)"
        )
    ((kind, target),) = origin["target"].items()
    text += f" (the gallery's, calibrated at {kind.upper()} {target:g}"
    people = origin.get("gallery_people")
    if people is not None and people != gallery_people:
        text += f" with {people} people; it now has {gallery_people}: rerun `tfface calibrate`"
    return text + ")"


def _identify_crops(recognizer, gallery, args, images, threshold):
    import numpy as np

    items, skipped = photos.embed_items(recognizer, args, images, "identify")
    found = recognizer.search(
        np.stack([e for _, _, e in items]) if items else [],
        gallery,
        args.k,
        threshold=threshold,
        by=args.by,
    )
    results = [
        {"path": path, "faces": [_identity_dict(identity, best, t, matches, None)]}
        for (path, _, _), (matches, identity, best, t) in zip(items, found, strict=True)
    ]
    return results, skipped


def _identify_photos(recognizer, gallery, args, images, threshold):
    import numpy as np

    from tfface.cli.draw import draw_faces

    results = []

    def on_faces(path, image, faces):
        found = recognizer.search(
            np.stack([f.embedding for f in faces]) if faces else [],
            gallery,
            args.k,
            threshold=threshold,
            by=args.by,
        )
        entries = [
            _identity_dict(identity, best, t, matches, face.to_dict())
            for face, (matches, identity, best, t) in zip(faces, found, strict=True)
        ]
        results.append({"path": path, "faces": entries})
        if args.draw:
            labels = [
                e["identity"]
                if e["similarity"] is None
                else f"{e['identity']} {e['similarity']:.2f}"
                for e in entries
            ]
            draw_faces(
                image,
                [f.box for f in faces],
                labels=labels,
                known=[e["identity"] != "unknown" for e in entries],
            ).save(photos.draw_path(args, path, len(images)))

    skipped = photos.photo_faces(recognizer, images, args, "identify", on_faces)
    return results, skipped


def run(args, images):
    from tfface.gallery import Gallery

    recognizer = photos.recognizer(args)
    gallery = Gallery.open(args.gallery, model_info=recognizer.model.model_info(), create=False)
    try:
        threshold, origin = open_set_threshold(args, gallery, recognizer)
        gallery_people = len(gallery.identities())
        identify = _identify_crops if args.aligned else _identify_photos
        results, skipped = identify(recognizer, gallery, args, images, threshold)
    finally:
        gallery.close()
    rows = []
    for r in results:
        if not r["faces"]:
            rows.append([r["path"], "-", "no face", "", ""])
        for i, e in enumerate(r["faces"]):
            others = ", ".join(f"{m['name']} {m['similarity']:.2f}" for m in e["matches"][1:])
            sim = "" if e["similarity"] is None else f"{e['similarity']:.3f}"
            rows.append([r["path"], i, e["identity"], sim, others])
    lines = output.table(rows, ["image", "face", "identity", "similarity", "next matches"])
    lines.append(describe_threshold(threshold, origin, gallery_people))
    payload = {
        "gallery": args.gallery,
        "threshold": threshold,
        "threshold_source": origin["source"],
        "images": results,
        "skipped": skipped,
    }
    output.emit(args, payload, lines + output.skipped_lines(skipped))
    if not results:
        raise CommandError(f"no image could be read: {photos.describe_skipped(skipped)}")
    return EXIT_OK


COMMAND = Command(
    name="identify",
    help="who is each face of the photos? (top-k gallery matches)",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
