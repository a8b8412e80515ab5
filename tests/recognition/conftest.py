"""Shared fixtures: a small embedding model exported with metadata, real photos from
installed wheels, and one Recognizer whose detections are computed once per session."""

import numpy as np
import pytest

from tfface.recognition import sample_photos

IMAGE_SIZE = 64
THRESHOLD = 0.5


def make_model(image_size=IMAGE_SIZE, embedding_dim=16, seed=3):
    import keras

    from tfface.models import build_embedding_model

    keras.utils.set_random_seed(seed)
    return build_embedding_model("small_cnn", image_size=image_size, embedding_dim=embedding_dim)


@pytest.fixture(scope="session")
def photos():
    """{name: uint8 RGB}: "Eileen Collins" (astronaut), "Grace Hopper", "cameraman", and
    "group": the three side by side."""
    out = sample_photos.source_photos()
    out["group"] = sample_photos.group_photo(out)
    return out


@pytest.fixture(scope="session")
def model():
    return make_model()


@pytest.fixture(scope="session")
def saved_model_dir(model, tmp_path_factory):
    from tfface.export import export_saved_model

    base = tmp_path_factory.mktemp("models")
    export_saved_model(model, str(base), name="tiny", threshold=THRESHOLD)
    return str(base / "tiny")


@pytest.fixture(scope="session")
def recognizer(saved_model_dir):
    from tfface.recognition import Recognizer

    return Recognizer(saved_model_dir)


@pytest.fixture(scope="session")
def faces_of(recognizer, photos):
    """Memoised `recognizer.faces(photos[name])` (MTCNN is slow on CPU)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = recognizer.faces(photos[name])
        return cache[name]

    return get


def box_center(box):
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
