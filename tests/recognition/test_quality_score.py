"""The feature norm ‖x‖ as a face-quality score: exported with AdaFace/MagFace models
(`embed_quality` signature, metadata `quality_scores`), read into
`Face.quality["embedding_norm"]`; models without it give no such key."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.recognition.conftest import IMAGE_SIZE
from tests.recognition.conftest import make_model
from tfface import model_metadata
from tfface.export import export_saved_model
from tfface.recognition import FaceModel
from tfface.recognition import Recognizer


@pytest.fixture(scope="module")
def quality_model():
    model = make_model(seed=5)
    model.tfface_quality_scores = ("embedding_norm",)  # what AdaFace/MagFace training sets
    return model


@pytest.fixture(scope="module")
def quality_dir(quality_model, tmp_path_factory):
    base = tmp_path_factory.mktemp("quality")
    return export_saved_model(quality_model, str(base), name="quality", threshold=0.5)


def _crops(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)


def _feature_norms(model, crops):
    features = model.get_layer("l2_normalize").input
    raw = keras.Model(model.input, features)(crops)
    return np.linalg.norm(np.asarray(raw), axis=-1)


def test_export_carries_the_norm_and_says_so(quality_model, quality_dir):
    with open(os.path.join(quality_dir, model_metadata.SAVED_MODEL_METADATA_PATH)) as f:
        assert json.load(f)["quality_scores"] == ["embedding_norm"]
    loaded = tf.saved_model.load(quality_dir)
    crops = _crops()
    out = loaded.signatures["embed_quality"](images=tf.constant(crops))
    np.testing.assert_allclose(
        out["embedding_norm"].numpy(), _feature_norms(quality_model, crops), rtol=1e-5
    )
    plain = loaded.signatures["serving_default"](images=tf.constant(crops))["embeddings"]
    np.testing.assert_allclose(out["embeddings"].numpy(), plain.numpy(), atol=1e-6)


def test_a_model_without_it_exports_neither_signature_nor_key(saved_model_dir):
    version = os.path.join(saved_model_dir, "1")
    with open(os.path.join(version, model_metadata.SAVED_MODEL_METADATA_PATH)) as f:
        assert "quality_scores" not in json.load(f)
    assert "embed_quality" not in tf.saved_model.load(version).signatures


def test_export_refuses_a_quality_model_without_the_l2_normalize_layer(tmp_path):
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.UnitNormalization()(keras.layers.Dense(4)(x)))
    with pytest.raises(ValueError, match="l2_normalize"):
        export_saved_model(model, str(tmp_path), quality_scores=("embedding_norm",))
    with pytest.raises(ValueError, match="quality_scores"):
        export_saved_model(model, str(tmp_path), quality_scores=("sharpness",))


def test_face_model_reads_the_norm_from_every_source(quality_model, quality_dir, tmp_path):
    crops = _crops()
    expected = _feature_norms(quality_model, crops)
    keras_path = str(tmp_path / "q.keras")
    quality_model.save(keras_path)
    model_metadata.write_keras_metadata(
        keras_path, FaceModel(quality_dir).metadata()
    )  # as training writes it
    for source in (quality_dir, keras_path, quality_model):
        face_model = FaceModel(source)
        assert face_model.quality_scores == ("embedding_norm",)
        embeddings, scores = face_model.embed_with_quality(crops)
        np.testing.assert_allclose(scores["embedding_norm"], expected, rtol=1e-4)
        np.testing.assert_allclose(embeddings, face_model.embed(crops), atol=1e-6)


def test_face_model_without_the_score_returns_none(saved_model_dir):
    face_model = FaceModel(saved_model_dir)
    assert face_model.quality_scores == ()
    embeddings, scores = face_model.embed_with_quality(_crops())
    assert scores == {} and embeddings.shape == (3, 16)


def test_faces_get_embedding_norm_only_from_a_quality_model(quality_dir, photos, faces_of):
    faces = Recognizer(quality_dir).faces(photos["group"])
    assert faces
    for face in faces:
        norm = face.quality["embedding_norm"]
        assert np.isfinite(norm) and norm > 0
        assert face.to_dict()["quality"]["embedding_norm"] == round(norm, 3)
    assert all("embedding_norm" not in face.quality for face in faces_of("group"))
