"""dlib_resnet_v1 against dlib 20 itself (`dlib-bin`), run in .venv-dlib.

`make parity` / `make parity-dlib` set TFFACE_DLIB_PYTHON; the worker is
tools/dlib_parity_worker.py. Checked: (1) on the same 150×150 chips, tfface's raw
descriptors equal dlib's `compute_face_descriptor` to 1e-4 (max abs); (2) on dlib's own
chips of the astronaut photo, tfface equals dlib's whole pipeline; (3) tfface's pipeline
(MTCNN → dlib's predictor in NumPy → dlib's chip → model) is within 0.15 of dlib's (HOG → 5
points → get_face_chip → model), well inside dlib's same-person 0.6; (4) on the same
rectangles `DlibShapePredictor` gives dlib's integer points and `dlib_face_chip` dlib's
chips, pixel for pixel.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest
import skimage.data

from tfface.weights import files

pytestmark = pytest.mark.parity

WORKER = pathlib.Path(__file__).resolve().parents[2] / "tools" / "dlib_parity_worker.py"
TOL = 1e-4


def _run_worker(tmp_path, command, inputs, *extra):
    python = os.environ.get("TFFACE_DLIB_PYTHON")
    if not python:
        pytest.skip(
            "TFFACE_DLIB_PYTHON is not set: run `make parity-dlib`, which points it at "
            ".venv-dlib/bin/python (dlib-bin 20)"
        )
    model = files.package_file(files.DLIB_PACKAGE, files.DLIB_RESNET_FILE)
    np.savez(tmp_path / "in.npz", **inputs)
    cmd = [python, str(WORKER), command, "--model", model, *extra]
    cmd += [str(tmp_path / "in.npz"), str(tmp_path / "out.npz")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"dlib worker failed:\n{proc.stderr[-4000:]}"
    return dict(np.load(tmp_path / "out.npz"))


def test_descriptors_match_dlib_on_the_same_chips(dlib_models, astronaut_chip, tmp_path):
    rng = np.random.default_rng(0)
    chips = np.concatenate(
        [
            astronaut_chip[None],
            astronaut_chip[None, :, ::-1],
            rng.integers(0, 256, (3, 150, 150, 3), dtype=np.uint8),
            np.zeros((1, 150, 150, 3), np.uint8),
            np.full((1, 150, 150, 3), 255, np.uint8),
        ]
    )
    ref = _run_worker(tmp_path, "descriptors", {"chips": chips})["descriptors"]
    ours = dlib_models[1].predict(chips.astype("float32"), verbose=0)
    diff = np.abs(ours - ref).max()
    print(f"max abs descriptor difference over {len(chips)} chips: {diff:.2e}")  # -s shows it
    assert diff <= TOL, f"max abs difference {diff:.3g} > {TOL}"


def test_dlib_pipeline_chips_and_both_pipelines(dlib_models, tmp_path):
    from tfface.align import FaceDetector
    from tfface.align import align_face

    photo = skimage.data.astronaut()
    predictor = files.package_file(files.DLIB_PACKAGE, files.DLIB_SHAPE_PREDICTOR_FILE)
    out = _run_worker(tmp_path, "pipeline", {"image_0": photo}, "--predictor", predictor)
    assert len(out["descriptors"]) >= 1
    # dlib's chips through tfface = dlib's compute_face_descriptor(image, shape).
    ours = dlib_models[1].predict(out["chips"].astype("float32"), verbose=0)
    assert np.abs(ours - out["descriptors"]).max() <= TOL

    boxes, _, landmarks = FaceDetector().detect(photo)
    (left, top, right, bottom) = out["boxes"][0]
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    j = int(np.argmin(np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1)))
    chip = align_face(photo, landmarks[j], 150, template="dlib")
    ours = dlib_models[1].predict(chip[None].astype("float32"), verbose=0)[0]
    distance = np.linalg.norm(ours - out["descriptors"][0])
    print(f"astronaut: tfface pipeline vs dlib's, raw distance {distance:.4f}")
    assert distance < 0.15  # 0.054 measured (benchmarks/dlib_alignment.py)


def test_shape_predictor_and_face_chip_match_dlib(tmp_path):
    """dlib's predictor and get_face_chip on the same rectangles: dlib's HOG box, boxes
    moved and resized around it (dlib runs on any rectangle), tfface's `predictor_rect` of
    the MTCNN face, a box half off the image, and the photos mirrored and ×3 upscaled (big
    chips go through dlib's image pyramid)."""
    import matplotlib
    from PIL import Image

    from tfface.align import FaceDetector
    from tfface.align.dlib_face_chip import dlib_face_chip
    from tfface.align.dlib_shape_predictor import DlibShapePredictor
    from tfface.align.dlib_shape_predictor import predictor_rect

    hopper = Image.open(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg")
    astronaut = skimage.data.astronaut()
    photos = [
        astronaut,
        np.ascontiguousarray(astronaut[:, ::-1]),
        np.asarray(hopper.convert("RGB")),
        np.asarray(Image.fromarray(astronaut).resize((1536, 1536), Image.BICUBIC)),
    ]
    rng = np.random.default_rng(0)
    detector = FaceDetector()
    inputs = {}
    for i, photo in enumerate(photos):
        _, _, landmarks = detector.detect(photo)
        rects = []
        for points in landmarks:
            left, top, right, bottom = predictor_rect(points)
            rects.append([round(left), round(top), round(right), round(bottom)])
            side = right - left
            for _ in range(9):
                dx, dy = rng.uniform(-0.15, 0.15, 2) * side
                grow = rng.uniform(0.8, 1.25) * side / 2
                cx, cy = (left + right) / 2 + dx, (top + bottom) / 2 + dy
                rects.append(
                    [round(cx - grow), round(cy - grow), round(cx + grow), round(cy + grow)]
                )
        rects.append([-40, 10, 60, 110])
        inputs[f"image_{i}"] = photo
        inputs[f"rects_{i}"] = np.asarray(rects, np.int64)
    predictor_path = files.package_file(files.DLIB_PACKAGE, files.DLIB_SHAPE_PREDICTOR_FILE)
    out = _run_worker_landmarks(tmp_path, inputs, predictor_path)
    predictor = DlibShapePredictor.load()
    rects = np.concatenate([inputs[f"rects_{i}"] for i in range(len(photos))])
    assert len(out["parts"]) == len(rects) >= 40
    print(f"shape predictor and face chip parity on {len(rects)} rectangles")
    for f, rect in enumerate(rects):
        photo = photos[int(out["image"][f])]
        parts = predictor(photo, rect)
        np.testing.assert_array_equal(parts, out["parts"][f], err_msg=f"rect {rect.tolist()}")
        chip = dlib_face_chip(photo, out["parts"][f])
        np.testing.assert_array_equal(chip, out["chips"][f], err_msg=f"rect {rect.tolist()}")


def _run_worker_landmarks(tmp_path, inputs, predictor_path):
    python = os.environ.get("TFFACE_DLIB_PYTHON")
    if not python:
        pytest.skip("TFFACE_DLIB_PYTHON is not set: run `make parity-dlib`")
    np.savez(tmp_path / "lm_in.npz", **inputs)
    cmd = [python, str(WORKER), "landmarks", "--predictor", predictor_path]
    cmd += [str(tmp_path / "lm_in.npz"), str(tmp_path / "lm_out.npz")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"dlib worker failed:\n{proc.stderr[-4000:]}"
    return dict(np.load(tmp_path / "lm_out.npz"))
