import json
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tests.module_imports import run_module
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
    # README.txt is not an image: skipped and counted, not reported as unreadable.
    assert report["outside_identity_folder"] == []
    assert report["ignored_non_images"] == 1
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


def _group_photo():
    """Two people side by side: the astronaut and matplotlib's Grace Hopper photo."""
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    hopper = Image.open(path).convert("RGB").resize((256, 300))
    astronaut = Image.fromarray(skimage.data.astronaut()).resize((300, 300))
    canvas = Image.new("RGB", (556, 300), (255, 255, 255))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(hopper, (300, 0))
    return canvas


@pytest.fixture(scope="module")
def flat_photos(tmp_path_factory):
    """A flat folder (no identity folders): a portrait, a group photo, a note, a bad JPEG."""
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.astronaut()).save(root / "portrait.jpg", quality=95)
    _group_photo().save(root / "group.png")
    (root / "notes.txt").write_text("not a photo")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "truncated.jpg").write_bytes(b"\xff\xd8\xff not really")
    return root


def test_flat_folder_is_aligned(flat_photos, tmp_path):
    report = align_folder(flat_photos, tmp_path / "out", image_size=64, progress=False)
    assert report["total"] == 3  # two photos and the bad JPEG; the note is not an image
    assert report["aligned"] == 2 and report["faces_written"] == 2
    assert report["ignored_non_images"] == 2
    assert [u["path"] for u in report["unreadable"]] == ["truncated.jpg"]
    assert report["multiple_faces"] == [{"path": "group.png", "faces": 2}]
    assert sorted(os.listdir(tmp_path / "out")) == [
        "align_report.json",
        "group.png",
        "portrait.png",
    ]


def test_all_faces_keeps_every_face(flat_photos, tmp_path):
    dst = tmp_path / "out"
    report = align_folder(flat_photos, dst, image_size=64, progress=False, all_faces=True)
    assert report["aligned"] == 2 and report["faces_written"] == 3
    assert sorted(os.listdir(dst)) == [
        "align_report.json",
        "group_0.png",
        "group_1.png",
        "portrait_0.png",
    ]
    # Largest face first: Hopper's face (~85 px) is larger than the astronaut's (~50 px) in
    # the group, so the astronaut is face 1 and looks like the astronaut portrait's crop.
    group_0 = np.asarray(Image.open(dst / "group_0.png"), dtype=np.float64)
    portrait = np.asarray(Image.open(dst / "portrait_0.png"), dtype=np.float64)
    group_1 = np.asarray(Image.open(dst / "group_1.png"), dtype=np.float64)
    assert np.abs(group_1 - portrait).mean() < np.abs(group_0 - portrait).mean()
    # A rerun resumes from the existing first crop.
    again = align_folder(flat_photos, dst, image_size=64, progress=False, all_faces=True)
    assert again["already_aligned"] == 2 and again["aligned"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{tmp}/none", "{tmp}/out"], "SRC {tmp}/none: no such directory"),
        (["{tmp}/src", "{tmp}/src/out"], "DST must not be SRC or inside it"),
        (["{tmp}/src", "{tmp}/file.txt"], "DST {tmp}/file.txt: exists and is not a directory"),
        (["{tmp}/src", "{tmp}/out", "--image_size", "4"], "--image_size must be >= 8"),
        (["{tmp}/src", "{tmp}/out", "--min_confidence", "1.5"], "--min_confidence must be in"),
        (["{tmp}/src", "{tmp}/out", "--min_face_size", "5"], "Received: --min_face_size=5"),
        (["{tmp}/src", "{tmp}/out", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_before_tensorflow_loads(argv, message, tmp_path):
    """A fresh `python -X importtime -m tfface.align` with a bad argument exits 2 naming it,
    and never imports TensorFlow, Keras or MTCNN."""
    (tmp_path / "src").mkdir()
    (tmp_path / "file.txt").write_text("not a folder")
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, errors, imported = run_module("tfface.align", *argv, timeout=120)
    assert code == 2, errors
    assert message.format(tmp=tmp_path) in errors
    assert "tfface.align.align_folder" in imported
    assert not {m.split(".")[0] for m in imported} & {"tensorflow", "keras", "mtcnn"}, errors
    assert not (tmp_path / "out").exists()


def test_help_documents_every_option_with_its_default():
    from tfface.align.align_folder import main

    with pytest.raises(SystemExit) as exit_info:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["--help"])
    assert exit_info.value.code == 0
    text = out.getvalue()
    for option, default in [
        ("--image_size", "112"),
        ("--min_confidence", "0.9"),
        ("--min_face_size", "20"),
        ("--all_faces", "False"),
        ("--overwrite", "False"),
        ("--no_progress", "False"),
    ]:
        block = text.split(option, 2)[-1].split("\n  -")[0]
        assert f"(default: {default})" in " ".join(block.split()), option
