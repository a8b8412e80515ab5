"""dlib_resnet_v1 against dlib 20 itself (`dlib-bin`), run in .venv-dlib.

`make parity` / `make parity-dlib` set TFFACE_DLIB_PYTHON; the worker is
tools/dlib_parity_worker.py. Checked: (1) on the same 150×150 chips, tfface's raw
descriptors equal dlib's `compute_face_descriptor` to 1e-4 (max abs); (2) on dlib's own
chips of the astronaut photo, tfface equals dlib's whole pipeline; (3) tfface's pipeline
(MTCNN → dlib template → model) and dlib's (HOG → 5 points → get_face_chip → model) give the
same person by dlib's own rule (raw distance < 0.6).
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest
import skimage.data

from tfface.models import pretrained

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
    model = pretrained.package_file(pretrained.DLIB_PACKAGE, pretrained.DLIB_RESNET_FILE)
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
    predictor = pretrained.package_file(
        pretrained.DLIB_PACKAGE, pretrained.DLIB_SHAPE_PREDICTOR_FILE
    )
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
    assert np.linalg.norm(ours - out["descriptors"][0]) < 0.6
