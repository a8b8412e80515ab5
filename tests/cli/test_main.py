"""`python -m tfface`: bad arguments exit 2 before TensorFlow loads; the commands run end to
end on real photos (enrol a folder, identify a group photo, draw, JSON, gallery edits)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.module_imports import run_module
from tfface.cli.main import main
from tfface.recognition import sample_photos

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _run_cli(*args):
    """`python -X importtime -m tfface ARGS` → (returncode, stderr, modules imported)."""
    code, _, errors, imported = run_module("tfface", *args, env=ENV, timeout=120)
    return code, errors, imported


@pytest.mark.parametrize(
    "args, message",
    [
        (["verify", "{tmp}/nope.jpg", "{tmp}/b.jpg"], "{tmp}/nope.jpg: no such file"),
        (["detect", "{tmp}/empty"], "{tmp}/empty: folder holds no image files"),
        (["embed", "--model", "{tmp}/m.keras", "{tmp}/b.jpg"], "{tmp}/m.keras: no such .keras"),
        (["embed", "--model", "{tmp}/empty", "{tmp}/b.jpg"], "holds no saved_model.pb"),
        (["identify", "--gallery", "{tmp}/none.gallery", "{tmp}/b.jpg"], "no such gallery"),
        (["enroll", "--gallery", "{tmp}/g.gallery", "{tmp}/empty"], "no identity folders"),
        (["identify", "--gallery", "{tmp}/b.jpg", "-k", "0", "{tmp}/b.jpg"], "-k must be >= 1"),
        (["verify", "--threshold", "3", "{tmp}/b.jpg", "{tmp}/b.jpg"], "--threshold must be"),
        (["detect", "--draw", "{tmp}/no/dir/out.png", "{tmp}/b.jpg"], "does not exist"),
        (["identify", "--gallery", "x", "--json"], "the following arguments are required"),
        (["recognise", "{tmp}/b.jpg"], "invalid choice"),
        (
            ["enroll", "--gallery", "{tmp}/g.gallery", "--min_quality", "5", "{tmp}/people"],
            "--min_quality needs a model with a quality score",
        ),
        (
            ["enroll", "--model", "{tmp}/plain", "--gallery", "{tmp}/g.gallery"]
            + ["--min_quality", "5", "{tmp}/people"],
            "--model={tmp}/plain has none",
        ),
        (
            ["enroll", "--gallery", "{tmp}/g.gallery", "--min_quality", "-1", "{tmp}/people"],
            "--min_quality must be a number >= 0",
        ),
    ],
)
def test_bad_arguments_exit_2_before_tensorflow_loads(args, message, tmp_path):
    os.makedirs(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.jpg")
    os.makedirs(tmp_path / "people" / "ann")
    Image.new("RGB", (8, 8)).save(tmp_path / "people" / "ann" / "a.jpg")
    # A SavedModel layout whose metadata declares no quality score (read without TF).
    os.makedirs(tmp_path / "plain" / "1" / "assets.extra")
    (tmp_path / "plain" / "1" / "saved_model.pb").write_bytes(b"")
    metadata = {
        "format": "tfface-model",
        "format_version": 1,
        "name": "plain",
        "image_size": 64,
        "template": {
            "name": "arcface",
            "points": [[20, 25], [44, 25], [32, 35], [22, 45], [42, 45]],
        },
        "threshold": 0.5,
        "embedding_size": 16,
        "fingerprint": "0",
    }
    (tmp_path / "plain" / "1" / "assets.extra" / "tfface_model.json").write_text(
        json.dumps(metadata)
    )
    tmp = str(tmp_path)
    code, errors, imported = _run_cli(*[a.format(tmp=tmp) for a in args])
    assert code == 2, errors
    assert message.format(tmp=tmp) in errors
    assert "tensorflow" not in imported and "keras" not in imported


def test_help_shows_every_default():
    with pytest.raises(SystemExit) as info:
        main(["identify", "--help"])
    assert info.value.code == 0


# --- end to end, in this process (MTCNN and the model load once per command) -----------
# `demo`: tests/cli/conftest.py


def _json(capsys, argv):
    code = main([*argv, "--json", "--no_progress"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_detect_json_and_draw(demo, capsys):
    drawn = str(demo["root"] / "detected.png")
    code, out = _json(capsys, ["detect", demo["group"], "--draw", drawn])
    assert code == 0
    (image,) = out["images"]
    assert len(image["faces"]) == 3 and out["skipped"] == []
    assert set(image["faces"][0]) == {"box", "score", "landmarks", "quality"}
    before = np.asarray(Image.open(demo["group"]))
    after = np.asarray(Image.open(drawn))
    assert after.shape == before.shape and np.any(after != before)


def test_enroll_identify_and_edit_the_gallery(demo, capsys):
    args = ["--model", demo["model"], "--gallery", demo["gallery"]]
    code, out = _json(capsys, ["enroll", *args, demo["people"]])
    assert code == 0
    assert {p["name"]: p["enrolled"] for p in out["people"]} == {
        "Eileen Collins": 4,
        "Grace Hopper": 4,
    }
    # The broken JPEG is reported and skipped; the note is not an image and not counted.
    assert [os.path.basename(s["path"]) for s in out["skipped"]] == ["broken.jpg"]

    # Enrolling the same files again adds nothing (idempotent by source path), and the
    # photos the gallery holds are not embedded again.
    code, out = _json(capsys, ["enroll", *args, demo["people"]])
    assert [p["new"] for p in out["people"]] == [0, 0]
    assert [p["already_enrolled"] for p in out["people"]] == [4, 4]

    # One more person by name, from a photo outside the tree.
    camera = str(demo["root"] / "cameraman.png")
    Image.fromarray(sample_photos.source_photos()["cameraman"]).save(camera)
    code, out = _json(capsys, ["enroll", *args, "--name", "The Cameraman", camera])
    assert code == 0 and out["people"] == [
        {"name": "The Cameraman", "images": 1, "already_enrolled": 0, "enrolled": 1, "new": 1}
    ]
    code, detected = _json(capsys, ["detect", demo["group"]])
    named = str(demo["root"] / "named.png")
    code, out = _json(capsys, ["identify", *args, demo["group"], "-k", "2", "--draw", named])
    assert code == 0
    faces = out["images"][0]["faces"]
    assert len(faces) == 3
    for face in faces:
        assert len(face["matches"]) == 2
        assert {m["name"] for m in face["matches"]} <= {
            "Eileen Collins",
            "Grace Hopper",
            "The Cameraman",
        }
        assert face["matches"][0]["similarity"] >= face["matches"][1]["similarity"]
        expected = face["matches"][0]["name"] if face["similarity"] >= 0.5 else "unknown"
        assert face["identity"] == expected and face["threshold"] == 0.5
    assert os.path.isfile(named)

    code, out = _json(capsys, ["identify", *args, demo["group"], "--threshold", "1.0"])
    assert {f["identity"] for f in out["images"][0]["faces"]} == {"unknown"}

    g = ["--gallery", demo["gallery"]]
    assert _json(capsys, ["gallery", "list", *g])[1]["people"] == [
        {"name": "Eileen Collins", "embeddings": 4},
        {"name": "Grace Hopper", "embeddings": 4},
        {"name": "The Cameraman", "embeddings": 1},
    ]
    assert main(["gallery", "rename", *g, "Grace Hopper", "Admiral Hopper"]) == 0
    assert main(["gallery", "remove", *g, "Eileen Collins"]) == 0
    assert main(["gallery", "remove", *g, "Nobody"]) == 1
    capsys.readouterr()
    stats = _json(capsys, ["gallery", "stats", *g])[1]
    assert stats["identities"] == 2 and stats["embeddings"] == 5
    assert len(detected["images"][0]["faces"]) == 3


def test_embed_verify_and_aligned_crops(demo, capsys, tmp_path):
    from tfface.recognition import Recognizer

    recognizer = Recognizer(demo["model"])
    crops = tmp_path / "crops"
    os.makedirs(crops)
    for i, face in enumerate(recognizer.faces(demo["group"])):
        Image.fromarray(face.crop).save(crops / f"face{i}.png")

    out_npz = str(tmp_path / "emb.npz")
    code, out = _json(
        capsys, ["embed", "--model", demo["model"], "--aligned", str(crops), "--output", out_npz]
    )
    assert code == 0 and len(out["embeddings"]) == 3
    saved = np.load(out_npz)
    assert saved["embeddings"].shape == (3, 16)
    expected = recognizer.embed(
        np.stack([np.asarray(Image.open(crops / f"face{i}.png")) for i in range(3)])
    )
    np.testing.assert_allclose(saved["embeddings"], expected, atol=1e-5)

    code, out = _json(
        capsys,
        ["verify", "--model", demo["model"], demo["group"], demo["group"], "--policy", "largest"],
    )
    assert code == 0 and out["same_person"] is True and out["similarity"] > 0.9999

    # A photo with several faces under --policy single: exit 1 naming the count.
    code = main(
        ["verify", "--model", demo["model"], "--policy", "single", demo["group"], demo["group"]]
    )
    assert code == 1
    assert "3 faces found" in capsys.readouterr().err


def test_identify_refuses_a_gallery_from_another_model(demo, capsys, tmp_path):
    from tfface.gallery import Gallery

    path = str(tmp_path / "other.gallery")
    Gallery.open(path, model_info={"name": "other", "embedding_size": 16}).close()
    code = main(["identify", "--model", demo["model"], "--gallery", path, demo["group"]])
    assert code == 1
    assert "built by model" in capsys.readouterr().err


def test_folders_all_faces_and_aligned_identify(demo, capsys, tmp_path):
    from tfface.recognition import Recognizer

    photos = tmp_path / "photos"
    os.makedirs(photos)
    Image.open(demo["group"]).save(photos / "group.jpg")
    Image.open(os.path.join(demo["people"], "Grace Hopper", "photo.png")).save(photos / "gh.png")
    (photos / "notes.txt").write_text("not an image: ignored")
    (photos / "bad.png").write_bytes(b"\x89PNG broken")

    drawn = tmp_path / "drawn"
    code, out = _json(capsys, ["detect", str(photos), "--draw", str(drawn)])
    assert code == 0
    assert [len(r["faces"]) for r in out["images"]] == [1, 3]  # gh.png, group.jpg (sorted)
    assert [os.path.basename(s["path"]) for s in out["skipped"]] == ["bad.png"]
    assert sorted(os.listdir(drawn)) == ["gh.png", "group.png"]

    code, out = _json(capsys, ["embed", "--model", demo["model"], str(photos), "--all_faces"])
    assert [os.path.basename(e["path"]) for e in out["embeddings"]] == ["gh.png"] + [
        "group.jpg"
    ] * 3

    # Identify aligned crops: the same answers as identifying the photos' faces.
    crops = tmp_path / "crops"
    os.makedirs(crops)
    for i, face in enumerate(Recognizer(demo["model"]).faces(demo["group"])):
        Image.fromarray(face.crop).save(crops / f"{i}.png")
    gallery = str(tmp_path / "g.gallery")
    assert main(["enroll", "--model", demo["model"], "--gallery", gallery, demo["people"]]) == 0
    capsys.readouterr()
    args = ["identify", "--model", demo["model"], "--gallery", gallery, "-k", "1"]
    _, aligned = _json(capsys, [*args, "--aligned", str(crops)])
    _, photo = _json(capsys, [*args, demo["group"]])
    names = [r["faces"][0]["matches"][0]["name"] for r in aligned["images"]]
    assert names == [f["matches"][0]["name"] for f in photo["images"][0]["faces"]]
    sims = [r["faces"][0]["similarity"] for r in aligned["images"]]
    assert sims == pytest.approx([f["similarity"] for f in photo["images"][0]["faces"]], abs=2e-3)
