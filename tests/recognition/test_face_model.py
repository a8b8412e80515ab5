"""FaceModel: the crop size, template, threshold and fingerprint travel with the model."""

import os
import zipfile

import numpy as np
import pytest

from tfface import model_metadata
from tfface.align import FaceDetector
from tfface.export import export_saved_model
from tfface.face_templates import arcface_template
from tfface.recognition import FaceModel
from tfface.recognition import ModelLoadError
from tfface.recognition import Recognizer
from tfface.recognition.model_source import resolve_model_argument

from .conftest import IMAGE_SIZE
from .conftest import THRESHOLD
from .conftest import make_model

pytestmark = pytest.mark.tensorflow_only


def test_saved_model_metadata_and_keras_model_agree(model, saved_model_dir):
    served = FaceModel(saved_model_dir)
    in_memory = FaceModel(model)
    assert served.source == "savedmodel" and in_memory.source == "object"
    assert served.image_size == in_memory.image_size == IMAGE_SIZE
    assert served.threshold == THRESHOLD and in_memory.threshold is None
    assert served.name == "tiny" and served.template_name == "arcface"
    np.testing.assert_allclose(served.template, arcface_template(IMAGE_SIZE), atol=1e-4)
    # One fingerprint for the same weights, whichever format carries them.
    assert served.fingerprint == in_memory.fingerprint
    assert served.model_info()["fingerprint"] == served.fingerprint
    crops = np.random.default_rng(0).integers(0, 256, (3, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    a, b = served.embed(crops), in_memory.embed(crops)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert served.embed(np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)).shape == (0, 16)


def test_other_weights_give_another_fingerprint(model):
    assert FaceModel(make_model(seed=4)).fingerprint != FaceModel(model).fingerprint


def test_serving_directory_uses_its_newest_version(model, tmp_path):
    export_saved_model(model, str(tmp_path), name="m", threshold=0.3)
    export_saved_model(model, str(tmp_path), name="m", threshold=0.6)
    assert resolve_model_argument(str(tmp_path / "m")) == ("savedmodel", str(tmp_path / "m" / "2"))
    assert FaceModel(str(tmp_path / "m")).threshold == 0.6


def test_150px_model_gets_150px_crops_on_its_own_template(photos, tmp_path):
    """The crop follows the model's metadata: size 150 and a template that is not ArcFace's.
    MTCNN run again on the crop finds the landmarks where the template puts them."""
    template = arcface_template(150) + np.array([0.0, 12.0])  # the face sits 12 px lower
    keras_model = make_model(image_size=150)
    path = str(tmp_path / "m150.keras")
    keras_model.save(path)
    metadata = model_metadata.build_metadata(
        name="m150",
        image_size=150,
        embedding_size=16,
        fingerprint=None,
        threshold=0.4,
        template=template,
    )
    model_metadata.write_keras_metadata(path, metadata)
    face_model = FaceModel(path)
    assert face_model.source == "keras" and face_model.image_size == 150
    assert face_model.threshold == 0.4 and face_model.template_name == "custom"
    np.testing.assert_allclose(face_model.template, template, atol=1e-3)

    recognizer = Recognizer(face_model)
    (face,) = recognizer.faces(photos["Eileen Collins"])
    assert face.crop.shape == (150, 150, 3) and face.embedding.shape == (16,)
    _, scores, landmarks = FaceDetector().detect(face.crop)
    assert scores.size >= 1
    # A least-squares similarity maps the landmarks' centroid onto the template's exactly
    # and their spread onto its spread; single points keep the face's own shape.
    found = landmarks[0]
    assert np.abs(found.mean(0) - template.mean(0)).max() < 3.0, found.mean(0) - template.mean(0)
    # The ArcFace template would have put the face 12 px higher.
    assert found.mean(0)[1] - arcface_template(150).mean(0)[1] > 9.0
    eyes, template_eyes = found[1] - found[0], template[1] - template[0]
    assert abs(np.linalg.norm(eyes) / np.linalg.norm(template_eyes) - 1.0) < 0.1


def test_keras_archive_with_metadata_still_loads_in_plain_keras(model, tmp_path):
    import keras

    path = str(tmp_path / "m.keras")
    model.save(path)
    model_metadata.write_keras_metadata(path, FaceModel(model).metadata())
    model_metadata.write_keras_metadata(path, FaceModel(model).metadata())  # replace, not add
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist().count(model_metadata.METADATA_FILE) == 1
    reloaded = keras.saving.load_model(path, compile=False)
    crops = np.full((1, IMAGE_SIZE, IMAGE_SIZE, 3), 100.0, np.float32)
    np.testing.assert_allclose(reloaded(crops), model(crops), atol=1e-6)
    assert FaceModel(path).fingerprint == FaceModel(model).fingerprint


def test_metadata_that_contradicts_the_model_is_refused(model, tmp_path):
    path = str(tmp_path / "m.keras")
    model.save(path)
    meta = model_metadata.build_metadata(
        name="x", image_size=112, embedding_size=16, fingerprint=None
    )
    model_metadata.write_keras_metadata(path, meta)
    with pytest.raises(ModelLoadError, match="metadata says 112-px crops but the model takes 64"):
        FaceModel(path)


@pytest.mark.parametrize(
    "argument, match",
    [
        ("{tmp}/missing.keras", "no such .keras file"),
        ("{tmp}", "holds no saved_model.pb"),
        ("{tmp}/weights.h5", "not a SavedModel directory or a .keras file"),
    ],
)
def test_bad_model_arguments_are_named(argument, match, tmp_path):
    with pytest.raises(ModelLoadError, match=match):
        resolve_model_argument(argument.format(tmp=tmp_path))


def test_unknown_pretrained_name_is_named():
    with pytest.raises(ModelLoadError, match="no_such_model"):
        FaceModel("no_such_model")


def test_version_dir_without_metadata_falls_back_to_signature(model, tmp_path):
    path = export_saved_model(model, str(tmp_path), name="m", threshold=0.25)
    os.remove(os.path.join(path, model_metadata.SAVED_MODEL_METADATA_PATH))
    face_model = FaceModel(path)
    assert face_model.image_size == IMAGE_SIZE and face_model.threshold == 0.25
    assert face_model.name == "m/1" and face_model.template_name == "arcface"
    assert face_model.fingerprint == FaceModel(model).fingerprint


def test_missing_weights_package_is_a_model_load_error(monkeypatch):
    from tfface.models import pretrained

    def missing(name):
        raise pretrained.PretrainedWeightsError("install it with `pip install x`")

    monkeypatch.setattr(pretrained, "load_pretrained", missing)
    with pytest.raises(ModelLoadError, match="'dlib_resnet_v1': install it with"):
        FaceModel("dlib_resnet_v1")


def test_keras_models_are_traced_once_for_every_batch_size(model):
    """`embed` runs a Keras model as one compiled graph: its Python `call` runs when the
    graph is traced, not per batch (eagerly it ran on every call, ~10× slower for
    dlib_resnet_v1). Traces are counted, not timed: batches of 1 to 70 crops (chunks of 32
    and a remainder) must not retrace."""
    import keras

    calls = []

    class CountCalls(keras.layers.Layer):
        def call(self, x):
            calls.append(x.shape[0])
            return x

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    counted = keras.Model(inputs, model(CountCalls()(inputs)))
    face_model = FaceModel(counted)
    after_load = len(calls)
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 32, 33, 70, 1, 7):
        crops = rng.integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        embeddings = face_model.embed(crops)
        np.testing.assert_allclose(
            embeddings, np.asarray(model(crops.astype("float32"), training=False)), atol=1e-5
        )
    assert len(calls) <= after_load, f"traced again after loading: batch sizes {calls}"
