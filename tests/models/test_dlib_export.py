"""The pretrained dlib_resnet_v1 through tfface.export, loaded as TF Serving loads it."""

import json
import os

import numpy as np
import pytest

from tests.export.helpers import png_bytes
from tests.export.helpers import run_in_session_loader

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow_only]


_png = png_bytes


def test_export_and_session_loader(dlib_models, astronaut_chip, tmp_path):
    from tfface.export import export_saved_model

    model = dlib_models[0]
    meta = model.tfface_metadata
    path = export_saved_model(
        model,
        str(tmp_path),
        name="dlib_resnet_v1",
        threshold=meta["threshold"],
        template=meta["template"]["points"],
    )
    with open(os.path.join(path, "assets.extra", "tfface_model.json")) as f:
        written = json.load(f)
    assert written["image_size"] == 150
    np.testing.assert_allclose(written["template"]["points"], meta["template"]["points"])

    a = np.stack([astronaut_chip, astronaut_chip[:, ::-1]]).astype(np.float32)
    b = np.stack([astronaut_chip, np.full_like(astronaut_chip, 90)]).astype(np.float32)
    feeds_by_signature = {
        "serving_default": {"images": a},
        "embed_jpeg": {"images": np.array([_png(im) for im in a], dtype=object)},
        "verify": {"images_a": a, "images_b": b},
    }
    results = run_in_session_loader(path, feeds_by_signature)
    ea, eb = model.predict(a, verbose=0), model.predict(b, verbose=0)
    np.testing.assert_allclose(results["serving_default"]["embeddings"], ea, atol=1e-5)
    np.testing.assert_allclose(results["embed_jpeg"]["embeddings"], ea, atol=1e-5)
    similarity = np.sum(ea * eb, -1)
    np.testing.assert_allclose(results["verify"]["similarity"], similarity, atol=1e-5)
    # The same chip is the same person; a grey square is not.
    np.testing.assert_array_equal(results["verify"]["same_person"], [True, False])
