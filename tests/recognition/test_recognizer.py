"""Recognizer on real photos: faces, awkward inputs with defined results, verify, identify."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tfface.align import FaceDetector
from tfface.recognition import UNKNOWN
from tfface.recognition import FaceModel
from tfface.recognition import ImageInputError
from tfface.recognition import MultipleFacesError
from tfface.recognition import NoFaceError
from tfface.recognition import Recognizer

from .conftest import IMAGE_SIZE
from .conftest import THRESHOLD
from .conftest import box_center

pytestmark = pytest.mark.tensorflow_only

# The astronaut's face, measured once by MTCNN on skimage's 512×512 photo.
ASTRONAUT_BOX = np.array([181.6, 63.7, 264.6, 171.1])


def test_faces_returns_everything_about_a_face(faces_of):
    (face,) = faces_of("Eileen Collins")
    np.testing.assert_allclose(face.box, ASTRONAUT_BOX, atol=2.0)
    assert face.score > 0.99 and face.landmarks.shape == (5, 2)
    assert face.crop.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and face.crop.dtype == np.uint8
    assert face.embedding.shape == (16,)
    assert abs(np.linalg.norm(face.embedding) - 1.0) < 1e-5
    assert face.quality["detector_score"] == face.score
    width, height = face.box[2] - face.box[0], face.box[3] - face.box[1]
    assert face.quality["face_size_px"] == pytest.approx(min(width, height))
    eyes = face.landmarks[1] - face.landmarks[0]
    assert face.quality["interocular_px"] == pytest.approx(np.linalg.norm(eyes), rel=1e-5)
    assert set(face.to_dict(embedding=True)) == {
        "box",
        "score",
        "landmarks",
        "quality",
        "embedding",
    }


def test_several_faces_and_the_single_face_policies(recognizer, photos, faces_of):
    faces = faces_of("group")
    assert len(faces) == 3
    centers = sorted(box_center(f.box)[0] for f in faces)
    tile = photos["group"].shape[1] / 3
    assert centers[0] < tile < centers[1] < 2 * tile < centers[2]  # one face per person
    largest = recognizer.face(photos["group"])
    assert largest.area == max(f.area for f in faces)
    with pytest.raises(MultipleFacesError, match="3 faces found") as info:
        recognizer.face(photos["group"], policy="single")
    assert info.value.count == 3
    with pytest.raises(ValueError, match="policy"):
        recognizer.face(photos["group"], policy="first")


def test_no_face(recognizer):
    coffee = skimage.data.coffee()
    assert recognizer.faces(coffee) == []
    with pytest.raises(NoFaceError, match=r"<array shape=\(400, 600, 3\).*no face found"):
        recognizer.face(coffee)


def test_tiny_images_and_tiny_faces(recognizer):
    # Under MTCNN's 12-px window: no face, without calling the detector.
    assert recognizer.faces(np.full((8, 8, 3), 128, np.uint8)) == []
    # A 25×25 LFW face: detected, upsampled to the model's crop, flagged by its size.
    lfw = (skimage.data.lfw_subset()[0] * 255).round().astype(np.uint8)
    (face,) = recognizer.faces(lfw)
    assert face.quality["face_size_px"] < 25
    assert face.crop.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


def test_grayscale_and_cmyk_photos(recognizer, photos, faces_of):
    gray = skimage.data.camera()
    (face_gray,) = recognizer.faces(gray)
    (face_rgb,) = faces_of("cameraman")  # the same picture as three equal channels
    np.testing.assert_allclose(face_gray.box, face_rgb.box, atol=1e-3)
    np.testing.assert_allclose(face_gray.embedding, face_rgb.embedding, atol=1e-5)

    buffer = io.BytesIO()
    Image.fromarray(photos["Eileen Collins"]).convert("CMYK").save(buffer, "JPEG", quality=95)
    (face_cmyk,) = recognizer.faces(buffer.getvalue())
    np.testing.assert_allclose(face_cmyk.box, ASTRONAUT_BOX, atol=4.0)


def test_undecodable_input_is_named(recognizer, tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo")
    with pytest.raises(ImageInputError, match="notes.jpg: cannot decode"):
        recognizer.faces(str(path))


def test_huge_photo_is_downscaled_for_detection_only(recognizer, photos, faces_of):
    seen = []

    class SpyDetector(FaceDetector):
        def detect(self, image):
            seen.append(image.shape)
            return super().detect(image)

    big = np.asarray(Image.fromarray(photos["Eileen Collins"]).resize((2048, 2048)))
    small_side = Recognizer(
        recognizer.model, SpyDetector(), max_detect_side=600, detect_tiles=False
    )
    (face,) = small_side.faces(big)
    assert seen == [(600, 600, 3)]
    # Landmarks come back in the big photo's pixels: 4× those found on the 512-px photo
    # (within 3 px of the 512-px photo: MTCNN's points move a little between scales).
    (original,) = faces_of("Eileen Collins")
    np.testing.assert_allclose(face.landmarks, (original.landmarks + 0.5) * 4 - 0.5, atol=12.0)
    assert face.quality["face_size_px"] > 300


def test_faces_too_small_for_the_downscaled_copy_are_found_on_tiles(photos):
    """A 36×44-px face beside a large one in a 600×300 photo detected at max_detect_side=150:
    the 4× smaller copy leaves it 9 px (MTCNN looks for 20), the full-resolution tiles
    find it; the large face, cut by some tiles, comes back once, as the copy found it."""
    seen = []

    class SpyDetector(FaceDetector):
        def detect(self, image):
            seen.append(image.shape[:2])
            return super().detect(image)

    crop = Image.fromarray(photos["Eileen Collins"]).crop((160, 40, 290, 200))
    canvas = Image.new("RGB", (600, 300), (200, 200, 200))
    canvas.paste(Image.fromarray(photos["Grace Hopper"]).resize((240, 280)), (340, 10))
    canvas.paste(crop.resize((52, 64), Image.BILINEAR), (100, 150))
    photo = np.asarray(canvas)
    small_face = (ASTRONAUT_BOX - [160, 40, 160, 40]) * 0.4 + [100, 150, 100, 150]

    copy_only = Recognizer(None, max_detect_side=150, detect_tiles=False)
    boxes, scores, _ = copy_only.detect(photo)
    assert len(boxes) == 1 and box_center(boxes[0])[0] > 340  # only Grace Hopper

    tiled = Recognizer(None, SpyDetector(), max_detect_side=150)
    faces = tiled.faces(photo)
    assert len(faces) == 2
    hopper = next(f for f in faces if f.box[0] > 340)
    np.testing.assert_allclose(hopper.box, boxes[0], atol=1e-4)
    assert hopper.score == pytest.approx(scores[0])
    (small,) = [f for f in faces if f is not hopper]
    np.testing.assert_allclose(box_center(small.box), box_center(small_face), atol=4.0)
    assert small.score >= 0.9 and 25 < small.quality["face_size_px"] < 50
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    assert seen[0] == (75, 150) and len(seen) > 1
    assert max(max(shape) for shape in seen) <= 150  # no window past max_detect_side


def test_verify(recognizer, photos, faces_of):
    same = recognizer.verify(photos["Eileen Collins"], photos["Eileen Collins"])
    assert same.similarity == pytest.approx(1.0, abs=1e-5)
    assert same.same_person is True and same.threshold == THRESHOLD
    assert same.face_a is not None and same.face_a.crop.shape == (IMAGE_SIZE,) * 2 + (3,)

    crop = faces_of("Grace Hopper")[0].crop
    aligned = recognizer.verify(crop, faces_of("cameraman")[0].crop, aligned=True, threshold=1.0)
    expected = float(faces_of("Grace Hopper")[0].embedding @ faces_of("cameraman")[0].embedding)
    assert aligned.similarity == pytest.approx(expected, abs=1e-5)
    assert aligned.same_person is False and aligned.threshold == 1.0
    assert aligned.face_a is None

    with pytest.raises(NoFaceError, match="no face found"):
        recognizer.verify(skimage.data.coffee(), photos["Eileen Collins"])


def test_uncalibrated_model_makes_no_decision(model, photos):
    result = Recognizer(FaceModel(model)).verify(photos["Grace Hopper"], photos["Grace Hopper"])
    assert result.threshold is None and result.same_person is None
    assert result.similarity == pytest.approx(1.0, abs=1e-5)


@pytest.fixture
def gallery(recognizer, faces_of, tmp_path):
    from tfface.gallery import Gallery

    g = Gallery.open(str(tmp_path / "people.gallery"), model_info=recognizer.model.model_info())
    group = faces_of("group")
    left = min(range(3), key=lambda i: group[i].box[0])
    g.enroll("left person", group[left].embedding[None], sources=["group.png#left"])
    yield g, group[left]
    g.close()


def test_identify_top_k_and_unknown(recognizer, photos, faces_of, gallery):
    g, left = gallery
    results = recognizer.identify(photos["group"], g, k=3)
    assert [r.face.box.tolist() for r in results] == [f.box.tolist() for f in faces_of("group")]
    by_left = min(results, key=lambda r: r.face.box[0])
    assert by_left.matches[0].name == "left person"
    assert by_left.similarity == pytest.approx(1.0, abs=1e-5)
    assert by_left.identity == "left person" and by_left.threshold == THRESHOLD
    # An open-set threshold just under a perfect match turns everyone else "unknown".
    strict = recognizer.identify(photos["group"], g, k=3, threshold=0.99999)
    others = [r for r in strict if r.face.box[0] != left.box[0]]
    assert len(others) == 2
    for r in others:
        assert r.identity == UNKNOWN and r.similarity < 0.99999
        assert [m.name for m in r.matches] == ["left person"]  # k is capped by the gallery
    assert recognizer.identify(skimage.data.coffee(), g) == []


def test_gallery_of_another_model_is_refused(recognizer, photos, tmp_path):
    from tfface.gallery import Gallery
    from tfface.gallery import GalleryModelMismatchError

    other = dict(recognizer.model.model_info(), fingerprint="0123456789abcdef")
    g = Gallery.open(str(tmp_path / "other.gallery"), model_info=other)
    g.enroll("someone", np.eye(16, dtype=np.float32)[:1])
    with pytest.raises(GalleryModelMismatchError, match="fingerprint"):
        recognizer.identify(photos["Eileen Collins"], g)
    g.close()


@pytest.mark.parametrize("where", ["inside", "at the border", "outside"])
def test_region_warp_equals_whole_image_warp(photos, where):
    from tfface.align.align_face import warp_affine
    from tfface.align.similarity import estimate_similarity
    from tfface.face_templates import arcface_template
    from tfface.recognition.recognizer import _warp_region

    image = photos["Grace Hopper"]
    offset = {"inside": 0.0, "at the border": -200.0, "outside": -2000.0}[where]
    landmarks = np.array([[220, 190], [308, 186], [268, 237], [231, 277], [303, 273]], float)
    matrix = estimate_similarity(landmarks + [offset, 0.0], arcface_template(112))
    expected = warp_affine(image, matrix, 112)
    np.testing.assert_array_equal(_warp_region(image, matrix, 112), expected)
    assert (expected.sum() == 0) == (where == "outside")
