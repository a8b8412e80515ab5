"""`python -m tfface` / `tfface`: recognise people from the command line.

    tfface detect photo.jpg --draw faces.png
    tfface embed photos/ --output embeddings.npz
    tfface verify a.jpg b.jpg
    tfface enroll --gallery people.gallery people/            # people/<name>/<images>
    tfface enroll --gallery people.gallery --name "Ada" ada1.jpg ada2.jpg
    tfface identify --gallery people.gallery group.jpg --draw group_named.png
    tfface gallery list --gallery people.gallery

Arguments, input paths, the `--model` path and the gallery path are checked before
TensorFlow is imported: a bad one exits with status 2 at once and names the argument or the
file. A failure while working (no face in a `verify` input, a gallery built by another
model) exits 1. Runs over many files report and skip unreadable images and images without
a face (counted in the summary) instead of stopping.
"""

import argparse
import json
import os
import sys

from tfface.cli.image_files import InputError
from tfface.cli.image_files import expand_images
from tfface.cli.image_files import identity_tree
from tfface.recognition.model_source import DEFAULT_MODEL
from tfface.recognition.model_source import ModelLoadError
from tfface.recognition.model_source import resolve_model_argument

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_REMOTE_GALLERY = ("milvus://", "milvus-lite:", "http://", "https://")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _common(model=True, detection=True):
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parent.add_argument(
        "--no_progress", action="store_true", help="no progress bar on multi-image runs"
    )
    if model:
        parent.add_argument(
            "--model",
            default=DEFAULT_MODEL,
            help="a tfface SavedModel directory (or a TF Serving model directory), a .keras "
            "file or a pretrained model name; its metadata sets the crop size and template",
        )
        parent.add_argument(
            "--aligned",
            action="store_true",
            help="inputs are already-aligned face crops: skip detection and alignment",
        )
    if detection:
        parent.add_argument(
            "--min_confidence",
            type=float,
            default=0.9,
            help="detector score below which a detection is not a face",
        )
        parent.add_argument(
            "--min_face_size", type=float, default=20, help="smallest face side (px) detected"
        )
        parent.add_argument(
            "--max_detect_side",
            type=int,
            default=1600,
            help="larger photos are downscaled to this longer side for detection only",
        )
    return parent


def _add_policy(parser):
    parser.add_argument(
        "--policy",
        choices=("largest", "single"),
        default="largest",
        help="photos with several faces: use the largest, or fail naming the count",
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfface",
        description="Detect, embed, verify and identify faces; manage a gallery of people.",
        formatter_class=_Formatter,
        epilog=__doc__.split("\n\n")[1],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kw = {"formatter_class": _Formatter}

    p = sub.add_parser(
        "detect",
        parents=[_common(model=False)],
        help="find faces: boxes, scores, landmarks, quality",
        **kw,
    )
    p.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument(
        "--draw", help="write the photo with boxes here (a folder when there are several photos)"
    )

    p = sub.add_parser(
        "embed", parents=[_common()], help="unit embeddings of the faces of photos", **kw
    )
    p.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--output", help="write embeddings, paths and boxes to this .npz file")
    p.add_argument(
        "--all_faces", action="store_true", help="embed every face, not one face per photo"
    )
    _add_policy(p)

    p = sub.add_parser("verify", parents=[_common()], help="are two faces the same person?", **kw)
    p.add_argument("image_a", help="first photo (or aligned crop with --aligned)")
    p.add_argument("image_b", help="second photo (or aligned crop with --aligned)")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine threshold (default: the model's calibrated threshold)",
    )
    _add_policy(p)

    p = sub.add_parser(
        "enroll",
        parents=[_common()],
        help="add people to a gallery: an identity folder tree, or --name and images",
        **kw,
    )
    p.add_argument("--gallery", required=True, help="gallery file (created if missing) or URI")
    p.add_argument(
        "--name",
        help="enrol all INPUTS as this one person (default: INPUTS are ROOT/<name>/<images> trees)",
    )
    p.add_argument("inputs", nargs="+", help="identity-tree roots, or images/folders with --name")
    _add_policy(p)

    p = sub.add_parser(
        "identify",
        parents=[_common()],
        help="who is each face of the photos? (top-k gallery matches)",
        **kw,
    )
    p.add_argument("--gallery", required=True, help="gallery file or URI (see `enroll`)")
    p.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("-k", type=int, default=5, help="matches listed per face")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="open-set threshold: a best match below it is 'unknown' (default: the model's)",
    )
    p.add_argument(
        "--by",
        choices=("max", "mean"),
        default="max",
        help="score a person by their best-matching or their mean embedding",
    )
    p.add_argument(
        "--draw", help="write the photo with boxes and names here (a folder for several photos)"
    )

    p = sub.add_parser("gallery", help="list, inspect or edit a gallery", **kw)
    gsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    parent = _common(model=False, detection=False)
    for name, text in (
        ("list", "enrolled people and their number of embeddings"),
        ("stats", "size, model and backend"),
        ("remove", "remove people"),
        ("rename", "rename a person"),
    ):
        q = gsub.add_parser(name, parents=[parent], help=text, **kw)
        q.add_argument("--gallery", required=True, help="gallery file or URI")
        if name == "remove":
            q.add_argument("names", nargs="+", help="people to remove")
        elif name == "rename":
            q.add_argument("old", help="current name")
            q.add_argument("new", help="new name")
    return parser


# --- argument checks (no TensorFlow) ------------------------------------------------------
def _check_gallery(location, must_exist):
    if location.startswith(_REMOTE_GALLERY):
        return
    if os.path.isdir(location):
        raise InputError(f"--gallery {location}: is a folder; a gallery is a file.")
    if must_exist and not os.path.isfile(location):
        raise InputError(f"--gallery {location}: no such gallery (create it with `enroll`).")
    parent = os.path.dirname(os.path.abspath(location))
    if not os.path.isdir(parent):
        raise InputError(f"--gallery {location}: folder {parent} does not exist.")


def _check(args):
    """Validates arguments and paths; returns the work list. Raises InputError /
    ModelLoadError (exit 2)."""
    plan = {}
    if getattr(args, "model", None) is not None:
        resolve_model_argument(args.model)
    for name in ("min_confidence",):
        value = getattr(args, name, None)
        if value is not None and not 0.0 <= value <= 1.0:
            raise InputError(f"--{name} must be in [0, 1]. Received: {value}")
    if getattr(args, "min_face_size", 20) < 12:
        raise InputError(f"--min_face_size must be >= 12. Received: {args.min_face_size}")
    if getattr(args, "max_detect_side", 1600) < 64:
        raise InputError(f"--max_detect_side must be >= 64. Received: {args.max_detect_side}")
    threshold = getattr(args, "threshold", None)
    if threshold is not None and not -1.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must be a cosine in [-1, 1]. Received: {threshold}")
    command = args.command
    if command in ("detect", "embed", "identify"):
        plan["images"] = expand_images(args.images)
    elif command == "verify":
        plan["images"] = expand_images([args.image_a, args.image_b])
        if len(plan["images"]) != 2:
            raise InputError("verify takes two image files, not folders.")
    elif command == "enroll":
        if args.name is not None:
            if not args.name.strip() or "\x00" in args.name:
                raise InputError(f"--name must be a non-empty name. Received: {args.name!r}")
            plan["people"] = [(args.name, expand_images(args.inputs))]
        else:
            plan["people"] = [person for root in args.inputs for person in identity_tree(root)]
    if command == "identify" and args.k < 1:
        raise InputError(f"-k must be >= 1. Received: {args.k}")
    if getattr(args, "gallery", None) is not None:
        _check_gallery(args.gallery, must_exist=command != "enroll")
    if getattr(args, "draw", None) is not None:
        draw = args.draw
        many = len(plan.get("images", [])) > 1
        parent = draw if many else os.path.dirname(os.path.abspath(draw))
        if many and os.path.isfile(draw):
            raise InputError(f"--draw {draw}: several photos need a folder, not a file.")
        if not many and os.path.isdir(draw):
            raise InputError(f"--draw {draw}: is a folder; give an output image file.")
        if not many and not os.path.isdir(parent):
            raise InputError(f"--draw {draw}: folder {parent} does not exist.")
        if args.aligned if hasattr(args, "aligned") else False:
            raise InputError("--draw needs photos; it cannot be used with --aligned.")
    if getattr(args, "output", None) is not None:
        parent = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(parent):
            raise InputError(f"--output {args.output}: folder {parent} does not exist.")
    return plan


# --- output helpers -----------------------------------------------------------------------
def _progress(items, args, desc):
    if args.no_progress or len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr)


def _emit(args, payload, table_lines):
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(table_lines))


def _table(rows, header):
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _box(box):
    return "(" + ", ".join(f"{v:.0f}" for v in box) + ")"


def _skipped_lines(skipped):
    lines = [f"skipped {len(skipped)} file(s):"] if skipped else []
    return lines + [f"  {s['path']}: {s['reason']}" for s in skipped]


def _draw_path(args, path, n_images):
    if n_images == 1:
        return args.draw
    os.makedirs(args.draw, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(args.draw, f"{stem}.png")


# --- commands -------------------------------------------------------------------------------
def _recognizer(args, with_model=True):
    from tfface.align.face_detector import FaceDetector
    from tfface.recognition.recognizer import Recognizer

    detector = (
        FaceDetector(min_face_size=args.min_face_size) if hasattr(args, "min_face_size") else None
    )
    return Recognizer(
        args.model if with_model else None,
        detector,
        min_confidence=getattr(args, "min_confidence", 0.9),
        threshold=getattr(args, "threshold", None),
        max_detect_side=getattr(args, "max_detect_side", 1600),
    )


def _photo_faces(recognizer, paths, args, desc, on_faces):
    """Runs `faces` on each photo, calling on_faces(path, image, faces); returns skipped."""
    from tfface.recognition.image_input import ImageInputError
    from tfface.recognition.image_input import load_image

    skipped = []
    for path in _progress(paths, args, desc):
        try:
            image = load_image(path)
        except ImageInputError as e:
            skipped.append({"path": path, "reason": str(e).removeprefix(f"{path}: ")})
            continue
        on_faces(path, image, recognizer.faces(image))
    return skipped


def cmd_detect(args, plan):
    from tfface.cli.draw import draw_faces

    recognizer = _recognizer(args, with_model=False)
    results = []

    def on_faces(path, image, faces):
        results.append({"path": path, "faces": [f.to_dict() for f in faces]})
        if args.draw:
            out = _draw_path(args, path, len(plan["images"]))
            draw_faces(
                image,
                [f.box for f in faces],
                labels=[f"{f.score:.2f}" for f in faces],
                landmarks=[f.landmarks for f in faces],
            ).save(out)

    skipped = _photo_faces(recognizer, plan["images"], args, "detect", on_faces)
    rows = [
        [r["path"], i, _box(f["box"]), f"{f['score']:.3f}", f"{f['quality']['face_size_px']:.0f}"]
        for r in results
        for i, f in enumerate(r["faces"])
    ] + [[r["path"], "-", "no face", "", ""] for r in results if not r["faces"]]
    n_faces = sum(len(r["faces"]) for r in results)
    lines = (
        _table(rows, ["image", "face", "box (x1, y1, x2, y2)", "score", "size px"]) if rows else []
    )
    lines += [f"{n_faces} face(s) in {len(results)} image(s)."] + _skipped_lines(skipped)
    _emit(args, {"images": results, "skipped": skipped}, lines)
    return EXIT_OK


def _embed_items(recognizer, args, paths, desc):
    """[(path, face dict or None, embedding)] with one face per photo (policy) or all faces
    (--all_faces), or one crop per file (--aligned); plus skipped files."""
    import numpy as np

    from tfface.recognition.face import MultipleFacesError
    from tfface.recognition.image_input import ImageInputError
    from tfface.recognition.image_input import load_image

    items, skipped = [], []
    if args.aligned:
        for path in _progress(paths, args, desc):
            try:
                crop = load_image(path)
            except ImageInputError as e:
                skipped.append({"path": path, "reason": str(e).removeprefix(f"{path}: ")})
                continue
            items.append((path, None, recognizer.embed(crop[None])[0]))
        return items, skipped

    def on_faces(path, image, faces):
        if not faces:
            skipped.append({"path": path, "reason": "no face found"})
            return
        if getattr(args, "all_faces", False):
            chosen = faces
        elif len(faces) > 1 and args.policy == "single":
            error = MultipleFacesError(f"{len(faces)} faces (--policy single)", len(faces))
            skipped.append({"path": path, "reason": str(error)})
            return
        else:
            chosen = [max(faces, key=lambda f: f.area)]
        for face in chosen:
            items.append((path, face.to_dict(), np.asarray(face.embedding)))

    skipped += _photo_faces(recognizer, paths, args, desc, on_faces)
    return items, skipped


def cmd_embed(args, plan):
    import numpy as np

    recognizer = _recognizer(args)
    items, skipped = _embed_items(recognizer, args, plan["images"], "embed")
    embeddings = (
        np.stack([e for _, _, e in items])
        if items
        else np.zeros((0, recognizer.model.embedding_size), np.float32)
    )
    if args.output:
        np.savez(
            args.output,
            embeddings=embeddings.astype(np.float32),
            paths=np.array([p for p, _, _ in items], dtype=str),
            boxes=np.array(
                [f["box"] if f else [np.nan] * 4 for _, f, _ in items], np.float32
            ).reshape(-1, 4),
        )
    payload = {
        "model": recognizer.model.name,
        "embedding_size": recognizer.model.embedding_size,
        "embeddings": [
            {"path": p, "face": f, "embedding": [float(v) for v in e]} for p, f, e in items
        ],
        "skipped": skipped,
    }
    rows = [
        [p, _box(f["box"]) if f else "aligned", " ".join(f"{v:+.3f}" for v in e[:4]) + " …"]
        for p, f, e in items
    ]
    lines = _table(rows, ["image", "face box", "embedding"]) if rows else []
    lines.append(
        f"{len(items)} embedding(s) of size {recognizer.model.embedding_size} "
        f"({recognizer.model.name})" + (f" written to {args.output}" if args.output else "") + "."
    )
    _emit(args, payload, lines + _skipped_lines(skipped))
    return EXIT_OK


def cmd_verify(args, plan):
    recognizer = _recognizer(args)
    a, b = plan["images"]
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
    _emit(args, payload, [f"{decision}: similarity {result.similarity:.4f} ({threshold})"])
    return EXIT_OK


def _open_gallery(args, model_info=None, create=False):
    from tfface.gallery import Gallery

    return Gallery.open(args.gallery, model_info=model_info, create=create)


def cmd_enroll(args, plan):
    import numpy as np

    recognizer = _recognizer(args)
    gallery = _open_gallery(args, recognizer.model.model_info(), create=True)
    report = {"gallery": args.gallery, "people": [], "skipped": []}
    try:
        for name, paths in plan["people"]:
            items, skipped = _embed_items(recognizer, args, paths, f"enroll {name}")
            report["skipped"] += skipped
            added = 0
            if items:
                added = gallery.enroll(
                    name,
                    np.stack([e for _, _, e in items]),
                    sources=[os.path.abspath(p) for p, _, _ in items],
                )
            report["people"].append(
                {"name": name, "images": len(paths), "enrolled": len(items), "new": added}
            )
        total = len(gallery.identities())
    finally:
        gallery.close()
    rows = [[p["name"], p["images"], p["enrolled"], p["new"]] for p in report["people"]]
    lines = _table(rows, ["name", "images", "faces enrolled", "new"])
    lines.append(
        f"{sum(p['enrolled'] for p in report['people'])} face(s) of {len(rows)} people "
        f"enrolled into {args.gallery} ({total} people in it)."
    )
    _emit(args, report, lines + _skipped_lines(report["skipped"]))
    return EXIT_OK


def cmd_identify(args, plan):
    import numpy as np

    from tfface.cli.draw import draw_faces

    recognizer = _recognizer(args)
    gallery = _open_gallery(args, recognizer.model.model_info())
    results = []
    try:
        if args.aligned:
            items, skipped = _embed_items(recognizer, args, plan["images"], "identify")
            found = recognizer.search(
                np.stack([e for _, _, e in items]) if items else [], gallery, args.k, by=args.by
            )
            for (path, _, _), (matches, identity, best, t) in zip(items, found, strict=True):
                results.append(
                    {"path": path, "faces": [_identity_dict(identity, best, t, matches, None)]}
                )
        else:

            def on_faces(path, image, faces):
                found = recognizer.search(
                    np.stack([f.embedding for f in faces]) if faces else [],
                    gallery,
                    args.k,
                    by=args.by,
                )
                entries = [
                    _identity_dict(identity, best, t, matches, face.to_dict())
                    for face, (matches, identity, best, t) in zip(faces, found, strict=True)
                ]
                results.append({"path": path, "faces": entries})
                if args.draw:
                    out = _draw_path(args, path, len(plan["images"]))
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
                    ).save(out)

            skipped = _photo_faces(recognizer, plan["images"], args, "identify", on_faces)
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
    lines = _table(rows, ["image", "face", "identity", "similarity", "next matches"])
    threshold = recognizer.identify_threshold if args.threshold is None else args.threshold
    lines.append(
        "open-set threshold: "
        + (
            "none (model not calibrated; pass --threshold)"
            if threshold is None
            else f"{threshold:.4f}"
        )
    )
    payload = {"gallery": args.gallery, "images": results, "skipped": skipped}
    _emit(args, payload, lines + _skipped_lines(skipped))
    return EXIT_OK


def _identity_dict(identity, best, threshold, matches, face):
    return {
        "identity": identity,
        "similarity": None if best is None else round(best, 6),
        "threshold": threshold,
        "matches": [{"name": m.name, "similarity": round(float(m.similarity), 6)} for m in matches],
        "face": face,
    }


def cmd_gallery(args, plan):
    gallery = _open_gallery(args)
    try:
        if args.action == "list":
            people = gallery.identities()
            payload = {
                "gallery": args.gallery,
                "people": [{"name": n, "embeddings": c} for n, c in people],
            }
            lines = _table(people, ["name", "embeddings"]) if people else []
            lines.append(f"{len(people)} people, {sum(c for _, c in people)} embeddings.")
        elif args.action == "stats":
            payload = gallery.stats()
            lines = [f"{k}: {v}" for k, v in payload.items()]
        elif args.action == "remove":
            known = {n for n, _ in gallery.identities()}
            missing = [n for n in args.names if n not in known]
            if missing:
                print(
                    f"tfface gallery remove: error: not in {args.gallery}: {missing}",
                    file=sys.stderr,
                )
                return EXIT_FAILURE
            removed = {n: gallery.remove(n) for n in args.names}
            payload = {"gallery": args.gallery, "removed": removed}
            lines = [f"removed {n} ({c} embeddings)" for n, c in removed.items()]
        else:
            gallery.rename(args.old, args.new)
            payload = {"gallery": args.gallery, "renamed": {args.old: args.new}}
            lines = [f"renamed {args.old} to {args.new}"]
    finally:
        gallery.close()
    _emit(args, payload, lines)
    return EXIT_OK


COMMANDS = {
    "detect": cmd_detect,
    "embed": cmd_embed,
    "verify": cmd_verify,
    "enroll": cmd_enroll,
    "identify": cmd_identify,
    "gallery": cmd_gallery,
}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a malformed command line
    prefix = f"tfface {args.command}: error:"
    try:
        plan = _check(args)
    except (InputError, ModelLoadError) as e:
        print(f"{prefix} {e}", file=sys.stderr)
        return EXIT_USAGE
    # Before the first TensorFlow import, which drops TF's C++ start-up notices.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfface import _startup

    _startup.import_tensorflow()
    from tfface.recognition.face import MultipleFacesError
    from tfface.recognition.face import NoFaceError
    from tfface.recognition.image_input import ImageInputError

    try:
        return COMMANDS[args.command](args, plan)
    except ModelLoadError as e:
        print(f"{prefix} --model {e}", file=sys.stderr)
        return EXIT_USAGE
    except (NoFaceError, MultipleFacesError, ImageInputError) as e:
        print(f"{prefix} {e}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as e:  # noqa: BLE001
        from tfface.gallery.model_info import GalleryError

        if isinstance(e, GalleryError):
            print(f"{prefix} {e}", file=sys.stderr)
            return EXIT_FAILURE
        raise
