"""MTCNN detection and alignment on real photos that ship in the scikit-image wheel."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tfface.align import ARCFACE_TEMPLATE_112
from tfface.align import FaceDetector
from tfface.align import align_face
from tfface.align import detect_and_align
from tfface.align import transform_points


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_astronaut_has_one_face_with_plausible_landmarks(detector, astronaut):
    boxes, scores, landmarks = detector.detect(astronaut)
    assert boxes.shape == (1, 4) and scores.shape == (1,) and landmarks.shape == (1, 5, 2)
    assert scores[0] > 0.9
    x1, y1, x2, y2 = boxes[0]
    # Eileen Collins' face sits in the upper middle of the 512×512 photo.
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 200
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks[0]
    for point in landmarks[0]:
        assert x1 <= point[0] <= x2 and y1 <= point[1] <= y2
    assert left_eye[0] < nose[0] < right_eye[0]
    assert mouth_left[0] < mouth_right[0]
    eye_y = (left_eye[1] + right_eye[1]) / 2
    mouth_y = (mouth_left[1] + mouth_right[1]) / 2
    assert eye_y < nose[1] < mouth_y
    # Eyes are level in this upright portrait, and about a face-width apart.
    assert abs(left_eye[1] - right_eye[1]) < 0.1 * (x2 - x1)
    assert 0.3 < (right_eye[0] - left_eye[0]) / (x2 - x1) < 0.7


def test_aligned_astronaut_redetects_on_the_template(detector, astronaut):
    """Detect again on the aligned crop: the face is found, and its landmarks sit where the
    transform sent the original ones, and within a few pixels of the template."""
    _, _, landmarks = detector.detect(astronaut)
    crop, matrix = align_face(astronaut, landmarks[0], image_size=112, return_matrix=True)
    _, scores, again = detector.detect(crop)
    assert scores.shape == (1,) and scores[0] > 0.9
    mapped = transform_points(matrix, landmarks[0])
    assert np.abs(again[0] - mapped).max() < 3.0
    # The least-squares fit cannot match a smiling mouth to the neutral template exactly;
    # eyes are within 4 px, every point within 6 px (5% of the crop).
    assert np.abs(again[0, :2] - ARCFACE_TEMPLATE_112[:2]).max() < 4.0
    assert np.abs(again[0] - ARCFACE_TEMPLATE_112).max() < 6.0


def test_detect_and_align(detector, astronaut):
    result = detect_and_align(astronaut, image_size=96, min_confidence=0.9, detector=detector)
    assert result["image"].shape == (96, 96, 3) and result["image"].dtype == np.uint8
    assert result["score"] > 0.9 and result["num_faces"] == 1
    assert result["landmarks"].shape == (5, 2)
    # A blank image and a too-strict threshold both give None (the caller counts it).
    assert detect_and_align(np.zeros((120, 120, 3), np.uint8), detector=detector) is None
    assert detect_and_align(astronaut, min_confidence=1.0, detector=detector) is None
    with pytest.raises(ValueError, match="Received: min_confidence=2"):
        detect_and_align(astronaut, min_confidence=2, detector=detector)


def _upscaled_lfw(image):
    """lfw_subset holds 25×25 crops: upscale ×4 and pad so MTCNN sees a whole face."""
    big = Image.fromarray((image * 255).astype(np.uint8)).resize((100, 100), Image.BICUBIC)
    return np.pad(np.asarray(big), 25, mode="edge")


def test_lfw_subset_faces_versus_non_faces(detector):
    """skimage's lfw_subset: the first 100 images are faces, the last 100 are not."""
    data = skimage.data.lfw_subset()
    faces = [detector.detect(_upscaled_lfw(data[i]))[1] for i in range(0, 100, 10)]
    others = [detector.detect(_upscaled_lfw(data[i]))[1] for i in range(100, 200, 10)]
    found = sum(bool(s.size) and s.max() > 0.9 for s in faces)
    false_alarms = sum(bool(s.size) and s.max() > 0.9 for s in others)
    assert found >= 9, found
    assert false_alarms <= 1, false_alarms


def test_detector_config_and_arguments():
    d = FaceDetector(min_face_size=40, thresholds=(0.5, 0.6, 0.7))
    assert FaceDetector.from_config(d.get_config()).get_config() == d.get_config()
    with pytest.raises(ValueError, match="Received: min_face_size=5"):
        FaceDetector(min_face_size=5)
    with pytest.raises(ValueError, match="thresholds"):
        FaceDetector(thresholds=(0.5, 0.6))
    with pytest.raises(ValueError, match="Received: scale_factor=1.5"):
        FaceDetector(scale_factor=1.5)


def test_thresholds_reach_mtcnn(astronaut):
    """The astronaut scores 0.9991 at O-Net: an O-Net threshold above that removes her."""
    strict = FaceDetector(thresholds=(0.6, 0.7, 0.9999))
    boxes, scores, landmarks = strict.detect(astronaut)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and landmarks.shape == (0, 5, 2)


def test_large_min_face_size(detector, astronaut):
    """mtcnn 1.0 alone raises for min_face_size > 20 (its pyramid goes below P-Net's 12 px
    window); FaceDetector resizes instead and maps the results back to the caller's pixels.
    `min_face_size` sets the pyramid's finest scale, not a hard filter on box size."""
    _, _, reference = detector.detect(astronaut)
    _, scores, landmarks = FaceDetector(min_face_size=60).detect(astronaut)
    assert scores.shape == (1,) and scores[0] > 0.9
    # Same face, same place (measured: within 1.4 px) after mapping back from the resize.
    assert np.abs(landmarks[0] - reference[0]).max() < 3.0
    # At 200 the image shrinks to 51 px (face ~20 px): this used to raise inside mtcnn.
    boxes, scores, landmarks = FaceDetector(min_face_size=200).detect(astronaut)
    assert boxes.shape[1:] == (4,) and landmarks.shape[1:] == (5, 2)
    # 512 px / 1000 × 20 ≈ 10 px: smaller than one P-Net window, so nothing is found.
    assert FaceDetector(min_face_size=1000).detect(astronaut)[1].shape == (0,)


def test_networks_are_traced_once_for_every_image_and_patch_count(astronaut):
    """P-Net runs once per pyramid level and R-Net / O-Net on every candidate batch; each
    is one compiled graph, so their Python `call` runs when tracing, never per image.
    Traces are counted, not timed, across photos of three sizes (other pyramids, other
    candidate counts)."""
    detector = FaceDetector()
    calls = {}
    for stage in detector._detector().stages:
        # The Keras network itself (a compiled stage holds it as its python_function).
        network = getattr(stage.model, "python_function", stage.model)
        name = type(stage).__name__

        def counted(*args, _call=network.call, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _call(*args, **kwargs)

        network.call = counted
    photos = [
        astronaut,
        np.asarray(Image.fromarray(astronaut).resize((300, 200))),
        np.concatenate([astronaut, astronaut[:, ::-1]], axis=1),
    ]
    counts = []
    for photo in photos:
        assert len(detector.detect(photo)[0]) >= 1
        counts.append(dict(calls))
    assert set(counts[0]) == {"StagePNet", "StageRNet", "StageONet"}
    assert counts[-1] == counts[0], f"traced again: {counts}"
