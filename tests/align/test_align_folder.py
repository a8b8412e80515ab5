import json
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tfface.align import FaceDetector
from tfface.align import align_folder


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Two identities made of astronaut crops, one faceless photo, one broken file and one
    stray top-level file."""
    root = tmp_path_factory.mktemp("faces")
    astronaut = skimage.data.astronaut()
    os.makedirs(root / "collins")
    Image.fromarray(astronaut[20:300, 100:380]).save(root / "collins" / "a.jpg", quality=95)
    Image.fromarray(astronaut[:350, 60:410][:, ::-1]).save(root / "collins" / "b_flip.png")
    os.makedirs(root / "collins_small" / "nested")
    small = Image.fromarray(astronaut[30:250, 120:340]).resize((140, 140))
    small.save(root / "collins_small" / "nested" / "c.png")
    Image.fromarray(skimage.data.coffee()).save(root / "collins_small" / "coffee.jpg")
    (root / "collins_small" / "broken.jpg").write_bytes(b"not an image")
    (root / "README.txt").write_text("stray file")
    return root


def test_align_folder_counts_every_image(tiny_dataset, tmp_path):
    dst = tmp_path / "aligned"
    report = align_folder(tiny_dataset, dst, image_size=112, progress=False)
    assert report["total"] == 5
    assert report["aligned"] == 3
    assert report["no_face"] == [os.path.join("collins_small", "coffee.jpg")]
    assert [u["path"] for u in report["unreadable"]] == [
        os.path.join("collins_small", "broken.jpg")
    ]
    assert report["outside_identity_folder"] == ["README.txt"]
    for rel in ["collins/a.png", "collins/b_flip.png", "collins_small/nested/c.png"]:
        image = np.asarray(Image.open(dst / rel))
        assert image.shape == (112, 112, 3) and image.dtype == np.uint8
    with open(dst / "align_report.json") as f:
        assert json.load(f)["aligned"] == 3

    # A second run resumes: nothing is re-aligned, nothing new is lost.
    again = align_folder(tiny_dataset, dst, image_size=112, progress=False)
    assert again["aligned"] == 0 and again["already_aligned"] == 3
    assert len(again["no_face"]) == 1 and len(again["unreadable"]) == 1


def test_align_folder_rejects_bad_paths(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="existing directory"):
        align_folder(tmp_path / "missing", tmp_path / "out", detector=FaceDetector())
    with pytest.raises(ValueError, match="inside it"):
        align_folder(tiny_dataset, tiny_dataset / "aligned", detector=FaceDetector())


@pytest.mark.slow
def test_cli(tiny_dataset, tmp_path):
    dst = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfface.align",
            str(tiny_dataset),
            str(dst),
            "--image_size",
            "96",
            "--no_progress",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 aligned" in proc.stdout and "1 with no face" in proc.stdout
    assert "1 unreadable" in proc.stdout
    image = np.asarray(Image.open(dst / "collins" / "a.png"))
    assert image.shape == (96, 96, 3)
