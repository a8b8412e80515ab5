"""Align every image of an identity-folder dataset (`root/<identity>/<image>`) or of a flat
folder of photos.

    python -m tfface.align SRC DST --image_size 112 --min_confidence 0.9
    python -m tfface.align photos/ faces/ --all_faces     # every face of group photos

Writes `DST/<identity>/<image stem>.png` (lossless, so alignment adds no JPEG loss) and
`DST/align_report.json`. A SRC without identity folders is a flat folder of photos:
`DST/<image stem>.png`. With `all_faces`, face i of a photo (largest first) goes to
`<image stem>_<i>.png`. Nothing is dropped silently: images with no face at
`min_confidence`, images that cannot be decoded and images beside identity folders are
counted and listed in the report and in the printed summary; images with several confident
faces are aligned on the largest one (unless `all_faces`) and listed too. Files that are
not images by extension (notes, `.DS_Store`, reports) are skipped and only counted.
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError
from tqdm import tqdm

from tfface.align.align_face import align_face

REPORT_NAME = "align_report.json"
# Decided by extension: a file named like an image that fails to decode is "unreadable";
# anything else is not an image and is skipped.
IMAGE_EXTENSIONS = frozenset(
    (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
)


def _is_image(name):
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _list_images(src):
    """(identity or "", path) for every image under identity folders, or for every image of
    a flat folder; plus images beside identity folders (stray) and the non-image count."""
    items, stray, ignored = [], [], 0
    entries = sorted(os.listdir(src))
    flat = not any(os.path.isdir(os.path.join(src, e)) for e in entries)
    for entry in entries:
        path = os.path.join(src, entry)
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if _is_image(name):
                        items.append((entry, os.path.join(root, name)))
                    else:
                        ignored += 1
        elif not _is_image(entry):
            ignored += 1
        elif flat:
            items.append(("", path))
        else:
            stray.append(path)
    return items, stray, ignored


def _align_all(image, min_confidence, image_size, detector):
    """Every face scoring >= min_confidence as (crop, box), largest box first."""
    boxes, scores, landmarks = detector.detect(image)
    keep = np.flatnonzero(scores >= min_confidence)
    areas = (boxes[keep, 2] - boxes[keep, 0]) * (boxes[keep, 3] - boxes[keep, 1])
    keep = keep[np.argsort(-areas, kind="stable")]
    return [(align_face(image, landmarks[i], image_size=image_size), boxes[i]) for i in keep]


def _read_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def align_folder(
    src,
    dst,
    image_size=112,
    min_confidence=0.9,
    detector=None,
    overwrite=False,
    progress=True,
    all_faces=False,
):
    """Aligns `src/<identity>/<image>` into `dst/<identity>/<stem>.png` (or a flat folder
    `src/<image>` into `dst/<stem>.png`).

    Args:
        src: dataset root with one folder per identity, or a folder of photos.
        dst: output root (created); must not be `src` or inside it.
        image_size: side of the aligned crops.
        min_confidence: detections scoring below this count as "no face".
        detector: a `FaceDetector` (default: one with MTCNN's standard thresholds).
        overwrite: re-align images whose output already exists (default: keep them, so an
            interrupted run resumes).
        progress: show a tqdm progress bar on stderr.
        all_faces: keep every confident face of a photo as `<stem>_<i>.png` (i = 0 for the
            largest), e.g. for group photos; default only the largest face as `<stem>.png`.

    Returns:
        The report dict that is also written to `dst/align_report.json`.
    """
    src = os.path.abspath(src)
    dst = os.path.abspath(dst)
    if not os.path.isdir(src):
        raise ValueError(f"`src` must be an existing directory. Received: src={src!r}")
    if dst == src or dst.startswith(src + os.sep):
        raise ValueError(
            f"`dst` must not be `src` or inside it (its outputs would be re-read as inputs). "
            f"Received: src={src!r}, dst={dst!r}"
        )
    # Imported here: the face detector loads Keras and TensorFlow, which `main` must not
    # do before it has checked its arguments.
    from tfface.align.face_detector import FaceDetector
    from tfface.align.face_detector import detect_and_align

    detector = detector or FaceDetector()
    items, stray, ignored = _list_images(src)
    report = {
        "src": src,
        "dst": dst,
        "image_size": image_size,
        "min_confidence": min_confidence,
        "all_faces": bool(all_faces),
        "total": len(items),
        "faces_written": 0,
        "aligned": 0,
        "already_aligned": 0,
        "no_face": [],
        "unreadable": [],
        "multiple_faces": [],
        "outside_identity_folder": [os.path.relpath(p, src) for p in stray],
        "ignored_non_images": ignored,
    }
    outputs = {}
    for identity, path in tqdm(items, desc="align", unit="img", disable=not progress):
        rel = os.path.relpath(path, src)
        stem = os.path.splitext(os.path.relpath(path, os.path.join(src, identity)))[0]
        out_path = os.path.join(dst, identity, stem + ("_0" if all_faces else "") + ".png")
        if out_path in outputs:
            # a.jpg and a.png in one folder would both become a.png.
            report["unreadable"].append(
                {"path": rel, "reason": f"output name clashes with {outputs[out_path]}"}
            )
            continue
        outputs[out_path] = rel
        if not overwrite and os.path.exists(out_path):
            report["already_aligned"] += 1
            continue
        try:
            image = _read_rgb(path)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            report["unreadable"].append({"path": rel, "reason": f"{type(e).__name__}: {e}"})
            continue
        if all_faces:
            crops = [c for c, _ in _align_all(image, min_confidence, image_size, detector)]
        else:
            result = detect_and_align(image, image_size, min_confidence, detector=detector)
            crops = [] if result is None else [result["image"]]
            if result is not None and result["num_faces"] > 1:
                report["multiple_faces"].append({"path": rel, "faces": result["num_faces"]})
        if not crops:
            report["no_face"].append(rel)
            continue
        if all_faces and len(crops) > 1:
            report["multiple_faces"].append({"path": rel, "faces": len(crops)})
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        for i, crop in enumerate(crops):
            path_i = out_path[: -len("_0.png")] + f"_{i}.png" if all_faces else out_path
            Image.fromarray(crop).save(path_i)
        report["aligned"] += 1
        report["faces_written"] += len(crops)

    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, REPORT_NAME), "w") as f:
        json.dump(report, f, indent=2)
    return report


def summary(report):
    lines = [
        f"{report['total']} images under {report['src']}: {report['aligned']} aligned, "
        f"{report['already_aligned']} already aligned, {len(report['no_face'])} with no face "
        f"(confidence >= {report['min_confidence']}), {len(report['unreadable'])} unreadable, "
        f"{len(report['multiple_faces'])} with several faces "
        f"({'all kept' if report['all_faces'] else 'largest kept'}), "
        f"{len(report['outside_identity_folder'])} images beside identity folders (ignored), "
        f"{report['ignored_non_images']} non-image files (ignored). "
        f"{report['faces_written']} face crops written.",
        f"Report: {os.path.join(report['dst'], REPORT_NAME)}",
    ]
    for key in ("no_face", "unreadable", "outside_identity_folder"):
        for entry in report[key][:10]:
            lines.append(f"  {key}: {entry}")
        if len(report[key]) > 10:
            lines.append(f"  {key}: ... {len(report[key]) - 10} more in the report")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tfface.align",
        description="Detect (MTCNN) and align (ArcFace 5-point template) the faces of an "
        "identity folder (SRC/<identity>/<image>) or of a flat folder of photos.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("src", help="SRC/<identity>/<image>, or a folder of photos")
    parser.add_argument("dst", help="output root: DST/<identity>/<image>.png or DST/<image>.png")
    parser.add_argument("--image_size", type=int, default=112, help="side of the aligned crops")
    parser.add_argument(
        "--min_confidence",
        type=float,
        default=0.9,
        help="detections scoring below this count as no face",
    )
    parser.add_argument(
        "--min_face_size", type=float, default=20, help="smallest face side (px) searched for"
    )
    parser.add_argument(
        "--all_faces",
        action="store_true",
        help="keep every face of a photo as <stem>_<i>.png (largest first), e.g. group photos",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="re-align images whose output exists (default: keep them, so a run resumes)",
    )
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    # Checked here, before MTCNN loads TensorFlow: a bad argument exits 2 at once.
    if not os.path.isdir(args.src):
        parser.error(f"SRC {args.src}: no such directory")
    src, dst = os.path.abspath(args.src), os.path.abspath(args.dst)
    if dst == src or dst.startswith(src + os.sep):
        parser.error(f"DST must not be SRC or inside it. Received: src={args.src}, dst={args.dst}")
    if os.path.exists(dst) and not os.path.isdir(dst):
        parser.error(f"DST {args.dst}: exists and is not a directory")
    if args.image_size < 8:
        parser.error(f"--image_size must be >= 8. Received: --image_size={args.image_size}")
    if not 0.0 <= args.min_confidence <= 1.0:
        parser.error(
            f"--min_confidence must be in [0, 1]. Received: --min_confidence={args.min_confidence}"
        )
    if not args.min_face_size >= 12:
        parser.error(
            "--min_face_size must be >= 12 (MTCNN's P-Net window). "
            f"Received: --min_face_size={args.min_face_size:g}"
        )
    from tfface.align.face_detector import FaceDetector

    report = align_folder(
        args.src,
        args.dst,
        image_size=args.image_size,
        min_confidence=args.min_confidence,
        detector=FaceDetector(min_face_size=args.min_face_size),
        overwrite=args.overwrite,
        progress=not args.no_progress,
        all_faces=args.all_faces,
    )
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
