"""tfface's dlib pipeline (MTCNN → predictor → dlib chip → dlib_resnet_v1) against dlib's.

For every face dlib finds in the wheel photos (HOG detector + 5-point predictor +
`get_face_chip` + `compute_face_descriptor`, run by tools/dlib_parity_worker.py in
.venv-dlib), printed per face:

- each step reproduced on dlib's own inputs: tfface's `DlibShapePredictor` on dlib's HOG
  box against dlib's points (max |difference|, px), and `dlib_face_chip` from dlib's
  points against `get_face_chip` (mean and max |pixel difference|);
- tfface's pipeline on the MTCNN face with the nearest box centre
  (`align_face(template="dlib")`: `predictor_rect` → predictor → chip): its points against
  dlib's, and the raw-descriptor Euclidean distance (dlib's same-person threshold is 0.6)
  and cosine to dlib's whole pipeline, next to the previous alignment (MTCNN's points
  warped onto `dlib_template(150)`);
- the astronaut rotated by 0–60°: distance to the upright face's descriptor with either
  alignment (the predictor's rectangle stays axis-aligned, like dlib's detector boxes).

    make wheel-photos .venv-dlib/.installed
    .venv/bin/python benchmarks/dlib_alignment.py
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from wheel_photos import load_wheel_photos  # noqa: E402

DLIB_PYTHON = os.environ.get(
    "TFFACE_DLIB_PYTHON", os.path.join(ROOT, ".venv-dlib", "bin", "python")
)
WORKER = os.path.join(ROOT, "tools", "dlib_parity_worker.py")


def run_dlib_pipeline(photos, python=DLIB_PYTHON):
    """dlib's whole pipeline on `photos` (list of uint8 RGB arrays) → dict of arrays."""
    from tfface.weights import files

    model = files.package_file(files.DLIB_PACKAGE, files.DLIB_RESNET_FILE)
    predictor = files.package_file(files.DLIB_PACKAGE, files.DLIB_SHAPE_PREDICTOR_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(os.path.join(tmp, "in.npz"), **{f"image_{i}": p for i, p in enumerate(photos)})
        cmd = [python, WORKER, "pipeline", "--model", model, "--predictor", predictor]
        cmd += [os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode:
            raise RuntimeError(f"dlib worker failed:\n{proc.stderr[-4000:]}")
        return dict(np.load(os.path.join(tmp, "out.npz")))


def compare(photos, names, dlib_out):
    from tfface.align import FaceDetector
    from tfface.align import align_face
    from tfface.align import dlib_template
    from tfface.align import estimate_similarity
    from tfface.align import transform_points
    from tfface.align.dlib_face_chip import dlib_face_chip
    from tfface.align.dlib_shape_predictor import DlibShapePredictor
    from tfface.align.dlib_shape_predictor import predictor_rect
    from tfface.face_templates import DLIB_MEAN_FACE_MTCNN_POINTS
    from tfface.models import load_pretrained

    raw = load_pretrained("dlib_resnet_v1", l2_normalize=False)
    detector = FaceDetector()
    predictor = DlibShapePredictor.load()
    rows = []
    detections = [detector.detect(p) for p in photos]
    for f in range(len(dlib_out["image"])):
        i = int(dlib_out["image"][f])
        image = photos[i]
        boxes, scores, landmarks = detections[i]
        left, top, right, bottom = dlib_out["boxes"][f]
        row = {"photo": names[i], "face": f, "dlib_box": [int(v) for v in dlib_out["boxes"][f]]}
        # dlib's own steps, each reproduced on dlib's inputs: the predictor on dlib's HOG
        # box, the chip from dlib's points.
        parts_on_hog = predictor(image, dlib_out["boxes"][f])
        chip_dlib_points = dlib_face_chip(image, dlib_out["parts"][f])
        row["points_diff_same_rect"] = int(np.abs(parts_on_hog - dlib_out["parts"][f]).max())
        pixel = np.abs(chip_dlib_points.astype(float) - dlib_out["chips"][f].astype(float))
        row["chip_pixel_diff"] = float(pixel.mean())
        row["chip_pixel_max"] = float(pixel.max())
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        j = int(np.argmin(np.linalg.norm(centres - centre, axis=1))) if len(boxes) else -1
        if j < 0 or np.linalg.norm(centres[j] - centre) > 0.5 * (right - left):
            rows.append(row | {"mtcnn": None})
            continue
        # tfface's pipeline: MTCNN → predictor_rect → predictor → dlib chip.
        rect = predictor_rect(landmarks[j])
        ours_parts = predictor(image, rect)
        # Other rectangles one could hand the predictor, for comparison: the unit square of
        # dlib's 68-point mean face placed by MTCNN's points, and MTCNN's own box.
        to_face = estimate_similarity(DLIB_MEAN_FACE_MTCNN_POINTS, landmarks[j])
        cx, cy = transform_points(to_face, [[0.5, 0.5]])[0]
        half = np.hypot(to_face[0, 0], to_face[1, 0]) / 2
        alternatives = {"mean_face_square": (cx - half, cy - half, cx + half, cy + half)}
        alternatives["mtcnn_box"] = tuple(float(v) for v in boxes[j])
        row["points_diff_alternatives"] = {
            k: int(np.abs(predictor(image, r) - dlib_out["parts"][f]).max())
            for k, r in alternatives.items()
        }
        ours_chip = align_face(image, landmarks[j], image_size=150, template="dlib")
        # The previous alignment: MTCNN's points warped onto the dlib template.
        old_chip = align_face(image, landmarks[j], 150, template=dlib_template(150))
        chips = np.stack([ours_chip, old_chip, chip_dlib_points, dlib_out["chips"][f]])
        ours, old, exact, dlib_chip = raw.predict(chips.astype("float32"), verbose=0)
        ref = dlib_out["descriptors"][f]
        unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
        side = right - left
        row.update(
            {
                "rect_offset": [
                    float((rect[0] + rect[2] - left - right) / 2 / side),
                    float((rect[1] + rect[3] - top - bottom) / 2 / side),
                    float((rect[2] - rect[0]) / side - 1),
                ],
                "points_diff_pipeline": int(np.abs(ours_parts - dlib_out["parts"][f]).max()),
                "distance": float(np.linalg.norm(ours - ref)),
                "cosine": float(unit(ours) @ unit(ref)),
                "distance_old": float(np.linalg.norm(old - ref)),
                "distance_exact_chip": float(np.linalg.norm(exact - ref)),
                "max_abs_dlib_chip": float(np.abs(dlib_chip - ref).max()),
                "norm_dlib": float(np.linalg.norm(ref)),
            }
        )
        rows.append(row)
    return rows


def rotation_table(photo, angles=(0, 15, 30, 45, 60)):
    """Same-face descriptor distance to the upright photo's, for the photo rotated by each
    angle (PIL, bilinear, expanded): dlib's alignment (an axis-aligned predictor rect on a
    tilted face) next to the five-point warp. [(angle, dlib path, warp), ...]."""
    from PIL import Image

    from tfface.align import FaceDetector
    from tfface.align import align_face
    from tfface.align import dlib_template
    from tfface.models import load_pretrained

    raw = load_pretrained("dlib_resnet_v1", l2_normalize=False)
    detector = FaceDetector()

    def embed(image, template):
        _, scores, landmarks = detector.detect(image)
        crop = align_face(image, landmarks[int(np.argmax(scores))], 150, template=template)
        return raw.predict(crop[None].astype("float32"), verbose=0)[0]

    upright = embed(photo, "dlib")
    rows = []
    for angle in angles:
        image = np.asarray(Image.fromarray(photo).rotate(angle, Image.BILINEAR, expand=True))
        rows.append(
            (
                angle,
                float(np.linalg.norm(embed(image, "dlib") - upright)),
                float(np.linalg.norm(embed(image, dlib_template(150)) - upright)),
            )
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    photos = load_wheel_photos()
    names = list(photos)
    dlib_out = run_dlib_pipeline([photos[n] for n in names])
    rows = compare([photos[n] for n in names], names, dlib_out)
    print(
        "| photo | dlib box (l, t, r, b) | max |points − dlib| on dlib's box | chip mean (max) "
        "|pixel − dlib| from dlib's points | max |points − dlib| from MTCNN | ‖tfface − dlib‖ "
        "| cos | previous ‖MTCNN-template warp − dlib‖ |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        head = (
            f"| {r['photo']} | {r['dlib_box']} | {r['points_diff_same_rect']} | "
            f"{r['chip_pixel_diff']:.2f} ({r['chip_pixel_max']:.0f}) |"
        )
        if r.get("mtcnn", True) is None:
            print(f"{head} no MTCNN face within half a box | | | |")
            continue
        print(
            f"{head} {r['points_diff_pipeline']} | {r['distance']:.4f} | {r['cosine']:.4f} | "
            f"{r['distance_old']:.4f} |"
        )
    matched = [r for r in rows if "distance" in r]
    print(f"faces found by dlib: {len(rows)}, matched to an MTCNN face: {len(matched)}")
    print(
        "dlib's steps on dlib's inputs: max |points − dlib| "
        f"{max(r['points_diff_same_rect'] for r in rows)} px, chip max |pixel − dlib| "
        f"{max(r['chip_pixel_max'] for r in rows):.0f}"
    )
    if matched:
        print(
            f"largest ‖tfface − dlib‖: {max(r['distance'] for r in matched):.4f}, median "
            f"{np.median([r['distance'] for r in matched]):.4f}; previous alignment: largest "
            f"{max(r['distance_old'] for r in matched):.4f}, median "
            f"{np.median([r['distance_old'] for r in matched]):.4f}; "
            f"on the exact chip from dlib's points: largest "
            f"{max(r['distance_exact_chip'] for r in matched):.2e}"
        )
        print(
            "max |tfface − dlib| over dlib's own chips: "
            f"{max(r['max_abs_dlib_chip'] for r in matched):.2e}"
        )
        print("predictor rectangle from MTCNN's points: max |points − dlib| per face (largest)")
        named = {"predictor_rect": [r["points_diff_pipeline"] for r in matched]}
        for k in matched[0]["points_diff_alternatives"]:
            named[k] = [r["points_diff_alternatives"][k] for r in matched]
        for k, v in named.items():
            print(f"  {k:17s} {v} ({max(v)})")
        offsets = np.array([r["rect_offset"] for r in matched])
        print(
            "HOG box vs predictor_rect, in box sides: centre x "
            f"{offsets[:, 0].mean():+.3f} ± {offsets[:, 0].std():.3f}, y "
            f"{offsets[:, 1].mean():+.3f} ± {offsets[:, 1].std():.3f}, side "
            f"{offsets[:, 2].mean():+.3f} ± {offsets[:, 2].std():.3f}"
        )
        # dlib's own pipeline on the people (faces MTCNN also finds; every one a different
        # person): the closest pair, numbered left to right within a photo.
        faces = [r["face"] for r in matched]
        rank = {
            f: 1
            + sum(
                dlib_out["image"][g] == dlib_out["image"][f]
                and dlib_out["boxes"][g][0] < dlib_out["boxes"][f][0]
                for g in faces
            )
            for f in faces
        }
        desc = dlib_out["descriptors"]
        closest = min(
            (float(np.linalg.norm(desc[a] - desc[b])), a, b)
            for k, a in enumerate(faces)
            for b in faces[k + 1 :]
        )
        label = {f: f"{names[int(dlib_out['image'][f])]}#{rank[f]}" for f in faces}
        print(
            f"dlib's own pipeline, closest different people: {label[closest[1]]} and "
            f"{label[closest[2]]}, raw distance {closest[0]:.4f}"
        )
        norms = [r["norm_dlib"] for r in matched]
        print(
            f"raw descriptor norms (dlib pipeline): median {np.median(norms):.4f}, "
            f"min {min(norms):.4f}, max {max(norms):.4f}"
        )
    print("astronaut rotated: ‖descriptor − upright's‖, dlib alignment / five-point warp")
    for angle, ours, warp in rotation_table(photos["astronaut"]):
        print(f"  {angle:3d}°  {ours:.3f} / {warp:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
