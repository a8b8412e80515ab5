"""Shared CLI fixtures: the README walkthrough's photos and a tiny exported model, built once
per session (MTCNN and the model load once per command run in this process)."""

import numpy as np
import pytest
from PIL import Image

from tfface.recognition import sample_photos


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The README walkthrough's photos plus a tiny exported model and some bad files."""
    from tests.recognition.conftest import make_model
    from tfface.export import export_saved_model

    root = tmp_path_factory.mktemp("demo")
    people, group = sample_photos.write_demo_photos(str(root))
    (root / "people" / "Grace Hopper" / "notes.txt").write_text("ignored: not an image")
    (root / "people" / "Grace Hopper" / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    export_saved_model(make_model(), str(root / "models"), name="tiny", threshold=0.5)
    return {
        "root": root,
        "people": people,
        "group": group,
        "model": str(root / "models" / "tiny"),
        "gallery": str(root / "people.gallery"),
    }


@pytest.fixture(scope="session")
def no_face_photo(tmp_path_factory):
    """A readable photo without a face: a smooth colour ramp (MTCNN finds nothing in it)."""
    y, x = np.mgrid[0:240, 0:320]
    ramp = np.stack([x * 255 // 319, y * 255 // 239, np.full_like(x, 128)], -1)
    path = tmp_path_factory.mktemp("noface") / "dogs.jpg"
    Image.fromarray(ramp.astype(np.uint8)).save(path)
    return str(path)
