"""tfface's dlib pipeline (MTCNN → dlib template → dlib_resnet_v1) against dlib's own.

For every face dlib finds in the wheel photos (HOG detector + 5-point predictor +
`get_face_chip` + `compute_face_descriptor`, run by tools/dlib_parity_worker.py in
.venv-dlib), the MTCNN face with the nearest box centre is aligned on
`tfface.align.dlib_template` and embedded by `load_pretrained("dlib_resnet_v1",
l2_normalize=False)`. Printed per face: the raw-descriptor Euclidean distance between the two
pipelines (dlib's same-person threshold is 0.6), the cosine of their unit embeddings, and
the descriptor distance when tfface warps dlib's own chip (dlib's 5 points on dlib's
5-point template) instead, which isolates the resampling from the landmarks. Also printed:
where MTCNN's points land in dlib's chip (mean ± std over faces) next to the template.

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
    from tfface.models import pretrained

    model = pretrained.package_file(pretrained.DLIB_PACKAGE, pretrained.DLIB_RESNET_FILE)
    predictor = pretrained.package_file(
        pretrained.DLIB_PACKAGE, pretrained.DLIB_SHAPE_PREDICTOR_FILE
    )
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
    from tfface.align.similarity import DLIB_5POINT_MEAN_FACE
    from tfface.models import load_pretrained

    raw = load_pretrained("dlib_resnet_v1", l2_normalize=False)
    detector = FaceDetector()
    dlib_points_150 = (0.25 + DLIB_5POINT_MEAN_FACE) / 1.5 * 150 - 0.5
    rows, in_chip = [], []
    # dlib's 5-point template in align_face's pixel-centre coordinates (see dlib_template).
    detections = [detector.detect(p) for p in photos]
    for f in range(len(dlib_out["image"])):
        i = int(dlib_out["image"][f])
        boxes, scores, landmarks = detections[i]
        left, top, right, bottom = dlib_out["boxes"][f]
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        if len(boxes) == 0:
            rows.append({"photo": names[i], "face": f, "mtcnn": None})
            continue
        # tfface boxes are (x1, y1, x2, y2).
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        j = int(np.argmin(np.linalg.norm(centres - centre, axis=1)))
        if np.linalg.norm(centres[j] - centre) > 0.5 * (right - left):
            rows.append({"photo": names[i], "face": f, "mtcnn": None})
            continue
        ours_chip = align_face(photos[i], landmarks[j], image_size=150, template="dlib")
        # dlib's chip transform (chip → image, fitted from its 5 points) and its inverse.
        chip_to_image = estimate_similarity(dlib_points_150, dlib_out["parts"][f])
        image_to_chip = np.linalg.inv(chip_to_image)
        in_chip.append(transform_points(image_to_chip, landmarks[j]))
        warped = align_face(photos[i], dlib_out["parts"][f], 150, template=dlib_points_150)
        chips = np.stack([ours_chip, warped, dlib_out["chips"][f]]).astype("float32")
        ours, ours_dlib_points, dlib_chip = raw.predict(chips, verbose=0)
        ref = dlib_out["descriptors"][f]
        unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
        rows.append(
            {
                "photo": names[i],
                "face": f,
                "dlib_box": [int(v) for v in dlib_out["boxes"][f]],
                "distance": float(np.linalg.norm(ours - ref)),
                "cosine": float(unit(ours) @ unit(ref)),
                "distance_dlib_points": float(np.linalg.norm(ours_dlib_points - ref)),
                "max_abs_dlib_chip": float(np.abs(dlib_chip - ref).max()),
                "chip_pixel_diff_dlib_points": float(
                    np.abs(warped.astype(float) - dlib_out["chips"][f].astype(float)).mean()
                ),
                "norm_dlib": float(np.linalg.norm(ref)),
                "norm_ours": float(np.linalg.norm(ours)),
            }
        )
    in_chip = np.array(in_chip)
    return rows, in_chip, dlib_template(150)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    photos = load_wheel_photos()
    names = list(photos)
    dlib_out = run_dlib_pipeline([photos[n] for n in names])
    rows, in_chip, template = compare([photos[n] for n in names], names, dlib_out)
    print(
        "| photo | dlib box (l, t, r, b) | ‖ours − dlib‖ | cos | ‖warp(dlib pts) − dlib‖ "
        "| mean |pixel diff| of that chip | max |tfface − dlib| on dlib's chip |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("mtcnn", True) is None:
            print(f"| {r['photo']} | face {r['face']}: no MTCNN face within half a box | | | | | |")
            continue
        print(
            f"| {r['photo']} | {r['dlib_box']} | {r['distance']:.4f} | {r['cosine']:.4f} | "
            f"{r['distance_dlib_points']:.4f} | {r['chip_pixel_diff_dlib_points']:.2f} | "
            f"{r['max_abs_dlib_chip']:.1e} |"
        )
    matched = [r for r in rows if "distance" in r]
    print(f"faces found by dlib: {len(rows)}, matched to an MTCNN face: {len(matched)}")
    if matched:
        print(
            f"largest ‖ours − dlib‖: {max(r['distance'] for r in matched):.4f}, "
            f"median {np.median([r['distance'] for r in matched]):.4f}; "
            f"largest with dlib's points: {max(r['distance_dlib_points'] for r in matched):.4f}"
        )
        print(
            "max |tfface − dlib| over dlib's own chips: "
            f"{max(r['max_abs_dlib_chip'] for r in matched):.2e}"
        )
        norms = [r["norm_dlib"] for r in matched]
        print(
            f"raw descriptor norms (dlib pipeline): median {np.median(norms):.4f}, "
            f"min {min(norms):.4f}, max {max(norms):.4f}"
        )
        print("MTCNN points in dlib's chip, mean (std) vs template:")
        for k, name in enumerate(["left eye", "right eye", "nose", "mouth left", "mouth right"]):
            m, s = in_chip[:, k].mean(0), in_chip[:, k].std(0)
            print(
                f"  {name:11s} ({m[0]:6.2f}, {m[1]:6.2f}) ({s[0]:.2f}, {s[1]:.2f})  "
                f"template ({template[k, 0]:6.2f}, {template[k, 1]:6.2f})"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "mtcnn_in_chip": in_chip.tolist()}, f, indent=1)


if __name__ == "__main__":
    main()
