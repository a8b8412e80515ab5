"""`tfface cluster PHOTOS --output PEOPLE/`: group the faces of unlabelled photos by person.

Every face of every photo is detected and embedded, then the embeddings are clustered at the
model's verify threshold (`--threshold` to change it): dlib's Chinese whispers by default
(NumPy, seeded), or DBSCAN (`--method dbscan`, scikit-learn). The output folder gets

    PEOPLE/person_001/  one file per face of the largest group, person_002/ the next, ...
    PEOPLE/unclustered/ faces in no group of at least --min_size faces (e.g. a stranger
                        seen once)
    PEOPLE/clusters.json  what was written: each face's photo, face number and box

A face's file (`--files`) is a loose crop around it (default: the face's own file, so a
group photo is not mistaken for the person, and the person folders are an `enroll` tree),
a symbolic link to its photo or a copy of the photo; a photo with two people is in both
folders. `--enroll GALLERY` enrols each person folder's faces under its folder name
(numbered after the gallery's existing person_NNN, so a second run adds new people; rename
them later with `tfface gallery rename`).

Checked before TensorFlow loads (exit 2): the inputs exist and hold images, the output
folder is new or empty, the threshold is a cosine, DBSCAN's scikit-learn is installed.
"""

import importlib.util
import json
import os
import re
import shutil

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.image_files import InputError
from tfface.cli.image_files import expand_images

METHODS = ("chinese_whispers", "dbscan")
FILES = ("crop", "link", "copy")
UNCLUSTERED_FOLDER = "unclustered"
REPORT_FILE = "clusters.json"
# A face's crop: a square of this many times the box's longer side, around its centre (the
# whole head and some context, enough for a detector to find the face again).
_CROP_SCALE = 2.0
_PERSON = re.compile(r"person_(\d+)$")


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_model(parser)
    arguments.add_detection(parser)
    arguments.add_images(parser)
    parser.add_argument(
        "--output", required=True, help="folder to write person_NNN/ and unclustered/ into"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="cosine similarity joining two faces (default: the model's verify threshold)",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="chinese_whispers",
        help="dlib's Chinese whispers (NumPy) or DBSCAN (needs scikit-learn)",
    )
    parser.add_argument(
        "--min_size",
        type=int,
        default=2,
        help="smallest group of faces reported as a person; smaller ones go to unclustered/",
    )
    parser.add_argument(
        "--files",
        choices=FILES,
        default="crop",
        help="what a person folder holds per face: a crop around the face, a symbolic "
        "link to the photo, or a copy of the photo",
    )
    parser.add_argument("--seed", type=int, default=0, help="Chinese whispers' random order")
    parser.add_argument(
        "--iterations", type=int, default=100, help="Chinese whispers' passes (dlib: 100)"
    )
    parser.add_argument(
        "--enroll",
        metavar="GALLERY",
        help="also enrol each person folder into this gallery (created if missing)",
    )


def check_output_folder(folder):
    if os.path.isfile(folder):
        raise InputError(f"--output {folder}: is a file; give a new or empty folder.")
    if os.path.isdir(folder) and os.listdir(folder):
        raise InputError(f"--output {folder}: folder is not empty; give a new or empty folder.")
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise InputError(f"--output {folder}: folder {parent} does not exist.")


def check(args):
    """Returns the image files to cluster."""
    arguments.check_model(args)
    arguments.check_detection(args)
    arguments.check_threshold(args)
    if args.min_size < 1:
        raise InputError(f"--min_size must be >= 1. Received: {args.min_size}")
    if args.iterations < 1:
        raise InputError(f"--iterations must be >= 1. Received: {args.iterations}")
    if args.method == "dbscan" and importlib.util.find_spec("sklearn") is None:
        raise InputError(
            "--method dbscan needs scikit-learn, which is not installed "
            "(pip install 'tfface[cluster]'); the default chinese_whispers needs nothing."
        )
    images = expand_images(args.images)
    check_output_folder(args.output)
    if args.enroll is not None:
        arguments.check_gallery(args.enroll, must_exist=False)
    return images


# --- the work ------------------------------------------------------------------------------
def _faces(recognizer, args, images):
    """[{"path", "face" (number in its photo, from 1; None for an aligned crop), "box"}] and
    their embeddings; plus the skipped files."""
    args.all_faces = True  # every face of every photo (photos.embed_items)
    items, skipped = photos.embed_items(recognizer, args, images, "cluster")
    faces, counts = [], {}
    for path, face, _ in items:
        counts[path] = counts.get(path, 0) + 1
        faces.append(
            {
                "path": path,
                "face": None if face is None else counts[path],
                "box": None if face is None else face["box"],
            }
        )
    return faces, [e for _, _, e in items], skipped


def _first_person_number(gallery):
    numbers = [int(m.group(1)) for n, _ in gallery.identities() if (m := _PERSON.match(n))]
    return max(numbers, default=0) + 1


def _unique(folder, name, taken):
    stem, ext = os.path.splitext(name)
    candidate, k = name, 1
    while os.path.join(folder, candidate) in taken:
        k += 1
        candidate = f"{stem}-{k}{ext}"
    path = os.path.join(folder, candidate)
    taken.add(path)
    return path


def _crop(image, box):
    x1, y1, x2, y2 = box
    half = _CROP_SCALE * max(x2 - x1, y2 - y1) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = image.shape[:2]
    left, top = max(0, round(cx - half)), max(0, round(cy - half))
    right, bottom = min(width, round(cx + half)), min(height, round(cy + half))
    return image[top:bottom, left:right]


def _write_files(args, groups):
    """Writes each group's faces into its folder; sets each face's "file"."""
    from PIL import Image

    from tfface.recognition.image_input import load_image

    taken = set()
    by_photo = {}
    for folder, faces in groups:
        os.makedirs(folder, exist_ok=True)
        for face in faces:
            stem, ext = os.path.splitext(os.path.basename(face["path"]))
            if args.files == "crop" and face["face"] is not None:
                face["file"] = _unique(folder, f"{stem}_face{face['face']}.jpg", taken)
                by_photo.setdefault(face["path"], []).append(face)
                continue
            face["file"] = _unique(folder, f"{stem}{ext}", taken)
            if args.files == "link":
                os.symlink(os.path.abspath(face["path"]), face["file"])
            else:  # a copy of the photo (or of the aligned crop, under --aligned)
                shutil.copyfile(face["path"], face["file"])
    for path, faces in photos.progress(list(by_photo.items()), args, "crops"):
        image = load_image(path)  # read once per photo, after clustering
        for face in faces:
            Image.fromarray(_crop(image, face["box"])).save(face["file"], quality=95)


def _enroll(args, gallery, model_info, people, embeddings):
    import numpy as np

    from tfface.gallery import Gallery

    if gallery is None:
        gallery = Gallery.open(args.enroll, model_info=model_info, create=True)
    rows = 0
    for person in people:
        indices = [f["index"] for f in person["faces"]]
        rows += gallery.enroll(
            person["name"],
            np.stack([embeddings[i] for i in indices]),
            sources=[
                os.path.abspath(f["path"]) + ("" if f["face"] is None else f"#face{f['face']}")
                for f in person["faces"]
            ],
            metadata=[{"box": f["box"]} for f in person["faces"]],
        )
    return gallery, rows


def run(args, images):
    import numpy as np

    from tfface.eval.clustering import cluster_embeddings

    recognizer = photos.recognizer(args)
    threshold = recognizer.threshold
    if threshold is None:
        raise CommandError(
            f"--model {args.model} has no calibrated threshold; pass --threshold (a cosine)."
        )
    model_info = recognizer.model.model_info()
    gallery = first = None
    if args.enroll is not None:
        from tfface.gallery import Gallery
        from tfface.gallery import GalleryNotFoundError

        # Opened (and its model checked) before any photo is read.
        try:
            gallery = Gallery.open(args.enroll, model_info=model_info, create=False)
            first = _first_person_number(gallery)
        except GalleryNotFoundError:
            gallery = None
    try:
        faces, embeddings, skipped = _faces(recognizer, args, images)
        if not faces:
            output.emit(args, {"faces": 0, "skipped": skipped}, output.skipped_lines(skipped))
            raise CommandError(
                f"no face to cluster: {photos.describe_skipped(skipped)}; nothing written."
            )
        labels = cluster_embeddings(
            np.stack(embeddings),
            threshold,
            method=args.method,
            min_size=args.min_size,
            seed=args.seed,
            iterations=args.iterations,
        )
        for i, face in enumerate(faces):
            face["index"] = i
        first = first or 1
        people = [
            {
                "name": f"person_{first + k:03d}",
                "faces": [faces[i] for i in np.flatnonzero(labels == k)],
            }
            for k in range(int(labels.max(initial=-1)) + 1)
        ]
        unclustered = [faces[i] for i in np.flatnonzero(labels < 0)]
        groups = [(os.path.join(args.output, p["name"]), p["faces"]) for p in people]
        if unclustered:
            groups.append((os.path.join(args.output, UNCLUSTERED_FOLDER), unclustered))
        _write_files(args, groups)
        enrolled = None
        if args.enroll is not None and people:
            gallery, rows = _enroll(args, gallery, model_info, people, embeddings)
            enrolled = {"gallery": args.enroll, "people": len(people), "new_rows": rows}
    finally:
        if gallery is not None:
            gallery.close()
    report = _report(args, threshold, faces, people, unclustered, skipped, enrolled)
    with open(os.path.join(args.output, REPORT_FILE), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    output.emit(args, report, _lines(args, report) + output.skipped_lines(skipped))
    return EXIT_OK


def _entry(face):
    return {k: face[k] for k in ("path", "face", "box", "file")}


def _report(args, threshold, faces, people, unclustered, skipped, enrolled):
    return {
        "output": args.output,
        "method": args.method,
        "threshold": threshold,
        "min_size": args.min_size,
        "seed": args.seed,
        "files": args.files,
        "photos": len({f["path"] for f in faces}),
        "faces": len(faces),
        "people": [{"name": p["name"], "faces": [_entry(f) for f in p["faces"]]} for p in people],
        "unclustered": [_entry(f) for f in unclustered],
        "skipped": skipped,
        "enrolled": enrolled,
    }


def _lines(args, report):
    # Photos named from the inputs' common folder: "Ada/1.jpg", not two "1.jpg".
    photos_in = sorted({os.path.abspath(f["path"]) for p in report["people"] for f in p["faces"]})
    if len(photos_in) > 1:
        root = os.path.commonpath(photos_in)
    else:
        root = os.path.dirname(photos_in[0]) if photos_in else "."
    rows = []
    for person in report["people"]:
        names = sorted({os.path.relpath(f["path"], root) for f in person["faces"]})
        shown = ", ".join(names[:3]) + (f", … (+{len(names) - 3})" if len(names) > 3 else "")
        rows.append([person["name"], len(person["faces"]), len(names), shown])
    lines = output.table(rows, ["person", "faces", "photos", "in"])
    sizes = [len(p["faces"]) for p in report["people"]]
    lines.append(
        f"{report['faces']} face(s) in {report['photos']} photo(s): {len(sizes)} people"
        + (f" ({', '.join(map(str, sizes))} faces)" if sizes else "")
        + f", {len(report['unclustered'])} unclustered (groups under --min_size "
        f"{args.min_size}); {args.method} at threshold {report['threshold']:.4f}; "
        f"written to {args.output}/."
    )
    if report["enrolled"]:
        lines.append(
            f"Enrolled {report['enrolled']['people']} people "
            f"({report['enrolled']['new_rows']} new face(s)) into {args.enroll}; rename them "
            "with `tfface gallery rename`."
        )
    elif args.enroll is not None:
        lines.append(f"Nobody enrolled into {args.enroll}: no group of --min_size faces.")
    return lines


COMMAND = Command(
    name="cluster",
    help="group the faces of unlabelled photos into people folders (and optionally enrol them)",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
