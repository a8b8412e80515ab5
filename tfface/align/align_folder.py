"""Align every image of an identity-folder dataset (`root/<identity>/<image>`).

    python -m tfface.align SRC DST --image_size 112 --min_confidence 0.9

Writes `DST/<identity>/<image stem>.png` (lossless, so alignment adds no JPEG loss) and
`DST/align_report.json`. Nothing is dropped silently: images with no face at
`min_confidence`, images that cannot be decoded and files outside an identity folder are
counted and listed in the report and in the printed summary; images with several confident
faces are aligned on the largest one and listed too.
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError
from tqdm import tqdm

from tfface.align.face_detector import FaceDetector
from tfface.align.face_detector import detect_and_align

REPORT_NAME = "align_report.json"


def _list_images(src):
    """(identity, path) for every file under identity folders, plus stray top-level files."""
    items, stray = [], []
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    items.append((entry, os.path.join(root, name)))
        else:
            stray.append(path)
    return items, stray


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
):
    """Aligns `src/<identity>/<image>` into `dst/<identity>/<stem>.png`.

    Args:
        src: dataset root with one folder per identity.
        dst: output root (created); must not be `src` or inside it.
        image_size: side of the aligned crops.
        min_confidence: detections scoring below this count as "no face".
        detector: a `FaceDetector` (default: one with MTCNN's standard thresholds).
        overwrite: re-align images whose output already exists (default: keep them, so an
            interrupted run resumes).
        progress: show a tqdm progress bar on stderr.

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
    detector = detector or FaceDetector()
    items, stray = _list_images(src)
    report = {
        "src": src,
        "dst": dst,
        "image_size": image_size,
        "min_confidence": min_confidence,
        "total": len(items),
        "aligned": 0,
        "already_aligned": 0,
        "no_face": [],
        "unreadable": [],
        "multiple_faces": [],
        "outside_identity_folder": [os.path.relpath(p, src) for p in stray],
    }
    outputs = {}
    for identity, path in tqdm(items, desc="align", unit="img", disable=not progress):
        rel = os.path.relpath(path, src)
        stem = os.path.splitext(os.path.relpath(path, os.path.join(src, identity)))[0]
        out_path = os.path.join(dst, identity, stem + ".png")
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
        result = detect_and_align(image, image_size, min_confidence, detector=detector)
        if result is None:
            report["no_face"].append(rel)
            continue
        if result["num_faces"] > 1:
            report["multiple_faces"].append({"path": rel, "faces": result["num_faces"]})
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        Image.fromarray(result["image"]).save(out_path)
        report["aligned"] += 1

    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, REPORT_NAME), "w") as f:
        json.dump(report, f, indent=2)
    return report


def summary(report):
    lines = [
        f"{report['total']} images under {report['src']}: {report['aligned']} aligned, "
        f"{report['already_aligned']} already aligned, {len(report['no_face'])} with no face "
        f"(confidence >= {report['min_confidence']}), {len(report['unreadable'])} unreadable, "
        f"{len(report['multiple_faces'])} with several faces (largest kept), "
        f"{len(report['outside_identity_folder'])} files outside identity folders (ignored).",
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
        description="Detect (MTCNN) and align (ArcFace 5-point template) an identity folder.",
    )
    parser.add_argument("src", help="dataset root: SRC/<identity>/<image>")
    parser.add_argument("dst", help="output root: DST/<identity>/<image>.png")
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--min_confidence", type=float, default=0.9)
    parser.add_argument("--min_face_size", type=float, default=20)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    report = align_folder(
        args.src,
        args.dst,
        image_size=args.image_size,
        min_confidence=args.min_confidence,
        detector=FaceDetector(min_face_size=args.min_face_size),
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
