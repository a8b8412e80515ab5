"""`tfface calibrate`: the threshold at a target FAR (1:1) or FPIR (open-set 1:N), measured.

    tfface calibrate --far 1e-3 PEOPLE/                      # every pair of PEOPLE's photos
    tfface calibrate --far 1e-3 --pairs pairs.txt --images lfw/ [--aligned]
    tfface calibrate --fpir 0.01 --strangers STRANGERS/ --gallery G     # G's people
    tfface calibrate --fpir 0.01 --strangers STRANGERS/ PEOPLE/         # PEOPLE enrolled

`--far`: 1:1 pairs come from an LFW pairs file (`--pairs`, `--images`) or from every pair
of faces of a people folder (`PEOPLE/<name>/<photos>`, one face per photo). `--fpir`: the
enrolled people are the gallery's rows (`--gallery`) or a people folder; every face in the
`--strangers` photos is someone who is not enrolled. The threshold is fitted on these data
and the run prints what it measures there (FAR and TAR, or FPIR and leave-one-out TPIR,
with the counts). `--gallery G` stores it in G, where `tfface identify --gallery G` finds
it (`--threshold` still wins).

A target needs at least 1/target impostor scores (FAR 1e-4: 10,000 different-person
pairs): with fewer the run exits 2 with the counts, before TensorFlow loads when the files
tell (a pairs file; the photos of a people folder), else once the faces are counted.
"""

import math
import os

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.image_files import InputError
from tfface.cli.image_files import expand_images
from tfface.cli.image_files import identity_tree

# The gallery setting `identify` reads: {"value", "target", "measured", ...}.
IDENTIFY_THRESHOLD = "identify_threshold"


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_model(parser)
    arguments.add_detection(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--far", type=float, help="target 1:1 false-accept rate, e.g. 1e-3")
    target.add_argument(
        "--fpir", type=float, help="target open-set false-positive identification rate"
    )
    parser.add_argument("people", nargs="?", help="PEOPLE/<name>/<photos>: labelled photos")
    parser.add_argument("--pairs", help="an LFW pairs.txt (with --far; needs --images)")
    parser.add_argument("--images", help="the pairs' images: IMAGES/<name>/<name>_<n:04d>.EXT")
    parser.add_argument("--ext", default="jpg", help="the pairs' image extension")
    parser.add_argument(
        "--strangers", help="photos of people who are not enrolled (with --fpir; every face)"
    )
    parser.add_argument(
        "--gallery",
        help="store the threshold in this gallery for `identify`; with --fpir and no PEOPLE "
        "its people are the enrolled ones",
    )
    parser.add_argument(
        "--by",
        choices=("max", "mean"),
        default="max",
        help="with --fpir: score a person by their best-matching or mean embedding",
    )
    arguments.add_policy(parser)


def _pairs(args):
    from tfface.eval import lfw

    if args.images is None:
        raise InputError("--pairs needs --images (the folder of the pairs' images).")
    if not os.path.isfile(args.pairs):
        raise InputError(f"--pairs {args.pairs}: no such file.")
    if not os.path.isdir(args.images):
        raise InputError(f"--images {args.images}: no such folder.")
    try:
        paths1, paths2, issame = lfw.pair_paths(
            lfw.read_pairs(args.pairs), args.images, ext=args.ext.lstrip(".")
        )
    except (ValueError, FileNotFoundError) as e:
        raise InputError(f"--pairs {args.pairs}: {e}") from None
    return paths1, paths2, issame


def _check_enough(available, target, what, counted):
    needed = math.ceil(1.0 / target - 1e-9)
    if available < needed:
        raise InputError(
            f"{what} {target:g} needs at least {needed} {counted} (1/{target:g}); "
            f"there are {available}. Give more data or a larger {what}."
        )


def check(args):
    """Returns the plan: {"pairs": (paths1, paths2, issame)} or {"people": tree} and
    {"strangers": paths}."""
    arguments.check_model(args)
    arguments.check_detection(args)
    target = args.far if args.far is not None else args.fpir
    flag = "--far" if args.far is not None else "--fpir"
    if not 0.0 < target < 1.0:
        raise InputError(f"{flag} must be in (0, 1). Received: {target}")
    if args.gallery is not None:
        arguments.check_gallery(args.gallery, must_exist=True)
    plan = {}
    if args.far is not None:
        if args.strangers is not None:
            raise InputError("--strangers goes with --fpir (1:1 --far uses pairs).")
        if (args.pairs is None) == (args.people is None):
            raise InputError("--far needs pairs: PEOPLE (a folder) or --pairs FILE --images DIR.")
        if args.pairs is not None:
            plan["pairs"] = _pairs(args)
            negatives = int((~plan["pairs"][2]).sum())
            _check_enough(negatives, args.far, "--far", "different-person pairs in --pairs")
        else:
            plan["people"] = identity_tree(args.people)
            # At most one face per photo, so this is the most different-person pairs there
            # can be; the run checks again with the faces it finds.
            sizes = [len(paths) for _, paths in plan["people"]]
            most = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
            _check_enough(most, args.far, "--far", "different-person pairs of photos")
        return plan
    if args.pairs is not None or args.images is not None:
        raise InputError("--pairs goes with --far (--fpir uses people and --strangers).")
    if args.strangers is None:
        raise InputError("--fpir needs --strangers DIR: photos of people who are not enrolled.")
    if args.people is None and args.gallery is None:
        raise InputError("--fpir needs the enrolled people: --gallery G or a PEOPLE folder.")
    if args.aligned:
        raise InputError("--fpir reads photos of strangers; it cannot be used with --aligned.")
    plan["strangers"] = expand_images([args.strangers])
    if args.people is not None:
        plan["people"] = identity_tree(args.people)
    return plan


def _embed_people(recognizer, args, tree):
    """(embeddings [n, D], labels [n], skipped)."""
    import numpy as np

    embeddings, labels, skipped = [], [], []
    for name, paths in tree:
        items, missed = photos.embed_items(recognizer, args, paths, f"calibrate {name}")
        skipped += missed
        embeddings += [e for _, _, e in items]
        labels += [name] * len(items)
    return np.array(embeddings, np.float32), np.array(labels), skipped


def _embed_pairs(recognizer, args, pairs):
    """(scores, issame, pairs dropped, skipped): a pair with an image without a usable face
    is dropped and counted."""
    import numpy as np

    paths1, paths2, issame = pairs
    unique = sorted(set(paths1) | set(paths2))
    items, skipped = photos.embed_items(recognizer, args, unique, "calibrate pairs")
    found = {path: e for path, _, e in items}
    keep = np.array([a in found and b in found for a, b in zip(paths1, paths2, strict=True)])
    if not keep.any():
        raise CommandError(f"no pair has a usable face in both images ({len(keep)} pairs)")
    a = np.stack([found[p] for p, k in zip(paths1, keep, strict=True) if k])
    b = np.stack([found[p] for p, k in zip(paths2, keep, strict=True) if k])
    scores = np.einsum("pd,pd->p", a, b).astype(np.float64)
    return scores, issame[keep], int((~keep).sum()), skipped


def _strangers(recognizer, args, paths):
    """Every face of the strangers' photos: (embeddings [s, D], photos read, skipped)."""
    import numpy as np

    faces = []

    def on_faces(path, image, found):
        faces.extend(np.asarray(f.embedding) for f in found)

    skipped = photos.photo_faces(recognizer, paths, args, "calibrate strangers", on_faces)
    return np.array(faces, np.float32), len(paths) - len(skipped), skipped


def _gallery_rows(gallery):
    import numpy as np

    labels, vectors = [], []
    for name, _, vector, _ in gallery.rows():
        labels.append(name)
        vectors.append(vector)
    return np.array(vectors, np.float32), np.array(labels)


def _far(args, plan, recognizer):
    from tfface.eval import calibration

    if "pairs" in plan:
        scores, issame, dropped, skipped = _embed_pairs(recognizer, args, plan["pairs"])
        source = {"pairs": args.pairs, "pairs_dropped": dropped}
    else:
        embeddings, labels, skipped = _embed_people(recognizer, args, plan["people"])
        scores, issame = calibration.all_pairs(embeddings, labels)
        source = {"people": args.people, "faces": len(labels), "identities": len(set(labels))}
    _check_enough(int((~issame).sum()), args.far, "--far", "different-person pairs with faces")
    point = calibration.far_operating_point(scores, issame, args.far)
    return point, source, skipped


def _fpir(args, plan, recognizer, gallery):
    from tfface.eval import calibration

    if "people" in plan:
        enrolled, labels, skipped = _embed_people(recognizer, args, plan["people"])
        source = {"people": args.people}
    else:
        enrolled, labels = _gallery_rows(gallery)
        skipped, source = [], {"gallery": args.gallery}
    if len(labels) == 0:
        raise CommandError("no enrolled face to calibrate against")
    source |= {"faces": len(labels), "identities": len(set(labels.tolist()))}
    strangers, read, missed = _strangers(recognizer, args, plan["strangers"])
    skipped += missed
    source |= {
        "strangers": args.strangers,
        "stranger_photos": read,
        "stranger_faces": len(strangers),
    }
    _check_enough(len(strangers), args.fpir, "--fpir", "stranger faces")
    point = calibration.open_set_operating_point(enrolled, labels, strangers, args.fpir, args.by)
    return point, source, skipped


def _lines(args, point, source, stored):
    t, d = point.threshold, point.to_dict()
    if args.far is not None:
        head = f"1:1 threshold {t:.4f} at FAR <= {args.far:g}"
        if "pairs" in source:
            used = f"pairs: {point.impostors + point.genuines} from {source['pairs']}"
            if source["pairs_dropped"]:
                used += f" ({source['pairs_dropped']} dropped: an image without a usable face)"
        else:
            used = (
                f"pairs: every pair of {source['faces']} faces of {source['identities']} people "
                f"in {source['people']}"
            )
        rates = [
            f"FAR {d['false_rate']:.4g} ({point.false_accepts} of {point.impostors} "
            "different-person pairs accepted)",
            "TAR n/a (no same-person pair)"
            if not point.genuines
            else f"TAR {d['true_rate']:.4g} ({point.true_accepts} of {point.genuines} "
            "same-person pairs accepted)",
        ]
    else:
        head = f"open-set threshold {t:.4f} at FPIR <= {args.fpir:g} (by {args.by})"
        where = source.get("people") or source.get("gallery")
        used = (
            f"enrolled: {source['identities']} people, {source['faces']} faces ({where}); "
            f"strangers: {source['stranger_faces']} faces in {source['stranger_photos']} photos"
        )
        rates = [
            f"FPIR {d['false_rate']:.4g} ({point.false_accepts} of {point.impostors} "
            "stranger faces named)",
            "TPIR n/a (no person with two faces to probe)"
            if not point.genuines
            else f"TPIR {d['true_rate']:.4g} ({point.true_accepts} of {point.genuines} "
            "enrolled faces named right, each left out of the gallery in turn)",
        ]
    lines = [head, f"  {used}", *(f"  {r}" for r in rates)]
    if stored:
        lines.append(
            f"stored in {args.gallery}: `tfface identify --gallery {args.gallery}` uses it "
            "(--threshold overrides it)"
        )
    return lines


def run(args, plan):
    import datetime

    from tfface.gallery import Gallery

    recognizer = photos.recognizer(args)
    model_info = recognizer.model.model_info()
    gallery = None
    if args.gallery is not None:
        gallery = Gallery.open(args.gallery, model_info=model_info, create=False)
    try:
        if args.far is not None:
            point, source, skipped = _far(args, plan, recognizer)
        else:
            point, source, skipped = _fpir(args, plan, recognizer, gallery)
        if gallery is not None:
            gallery.update_settings(
                **{
                    IDENTIFY_THRESHOLD: {
                        "value": point.threshold,
                        "target": point.target,
                        "measured": point.to_dict(),
                        "data": source,
                        "gallery_people": len(gallery.identities()),
                        "calibrated": datetime.datetime.now(datetime.UTC).isoformat(
                            timespec="seconds"
                        ),
                    }
                }
            )
    finally:
        if gallery is not None:
            gallery.close()
    payload = {
        "threshold": point.threshold,
        "operating_point": point.to_dict(),
        "data": source,
        "stored_in": args.gallery,
        "skipped": skipped,
    }
    lines = _lines(args, point, source, gallery is not None)
    output.emit(args, payload, lines + output.skipped_lines(skipped))
    return EXIT_OK


COMMAND = Command(
    name="calibrate",
    help="the threshold at a target FAR (pairs) or FPIR (people vs strangers); --gallery "
    "stores it for identify",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
