"""`tfface calibrate` (issue 17, defect 3): bad inputs and too few impostors exit 2 before
TensorFlow loads; the printed operating point is the one the embeddings give; `--gallery`
stores the threshold and `identify` uses it unless `--threshold` is given."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from PIL import ImageOps

from tests.module_imports import run_module
from tfface.cli.main import main
from tfface.gallery import Gallery
from tfface.recognition import sample_photos

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _lfw_folder(demo, root):
    """demo/people as an LFW image folder (names without spaces) and a pairs file of one set:
    10 same-person then 10 different-person pairs."""
    images = root / "lfw"
    names = {}
    for person in sorted(os.listdir(demo["people"])):
        name = person.replace(" ", "_")
        os.makedirs(images / name)
        views = sorted(
            f for f in os.listdir(os.path.join(demo["people"], person)) if f.endswith(".png")
        )
        for i, view in enumerate(views, 1):
            shutil.copy(
                os.path.join(demo["people"], person, view), images / name / f"{name}_{i:04d}.png"
            )
        names[name] = len(views)
    (a, na), (b, nb) = names.items()
    same = [(a, i, j) for i in range(1, na + 1) for j in range(i + 1, na + 1)]
    same += [(b, i, j) for i in range(1, nb + 1) for j in range(i + 1, nb + 1)]
    diff = [(a, i, b, j) for i in range(1, na + 1) for j in range(1, nb + 1)]
    lines = ["1\t10"] + ["\t".join(map(str, p)) for p in same[:10] + diff[:10]]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return str(root / "pairs.txt"), str(images)


@pytest.fixture(scope="module")
def strangers(tmp_path_factory):
    """Five photos of someone who is not enrolled (the cameraman, in five views)."""
    root = tmp_path_factory.mktemp("strangers")
    im = Image.fromarray(sample_photos.source_photos()["cameraman"])
    views = [im, ImageOps.mirror(im), im.rotate(4), im.rotate(-4), ImageOps.autocontrast(im)]
    for i, view in enumerate(views):
        view.save(root / f"stranger{i}.png")
    return str(root)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--far", "0", "{people}"], "--far must be in (0, 1). Received: 0.0"),
        (["--fpir", "1.5", "--strangers", "{tmp}"], "--fpir must be in (0, 1)"),
        (["--far", "0.1"], "--far needs pairs"),
        (["--far", "0.1", "--pairs", "{tmp}/none.txt", "--images", "{tmp}"], "none.txt: no such"),
        (["--far", "0.1", "--pairs", "{pairs}"], "--pairs needs --images"),
        (["--fpir", "0.1", "{people}"], "--fpir needs --strangers"),
        (["--fpir", "0.1", "--strangers", "{tmp}/nope", "{people}"], "{tmp}/nope: no such file"),
        (["--fpir", "0.1", "--strangers", "{people}"], "--fpir needs the enrolled people"),
        (["--far", "0.1", "{people}", "--gallery", "{tmp}/g.gallery"], "no such gallery"),
        # 2 people x 5 photos: at most 25 different-person pairs; 1e-2 needs 100.
        (["--far", "0.01", "{people}"], "--far 0.01 needs at least 100 different-person pairs"),
        # The pairs file holds 10 different-person pairs; 1e-4 needs 10,000.
        (
            ["--far", "1e-4", "--pairs", "{pairs}", "--images", "{images}", "--ext", "png"],
            "--far 0.0001 needs at least 10000 different-person pairs in --pairs (1/0.0001); "
            "there are 10.",
        ),
    ],
)
def test_bad_inputs_exit_2_before_tensorflow_loads(demo, tmp_path, args, message):
    pairs, images = _lfw_folder(demo, tmp_path)
    fill = {"people": demo["people"], "tmp": str(tmp_path), "pairs": pairs, "images": images}
    code, _, errors, imported = run_module(
        "tfface", "calibrate", *[a.format(**fill) for a in args], env=ENV, timeout=120
    )
    assert code == 2, errors
    assert message.format(**fill) in errors
    assert "tensorflow" not in imported and "keras" not in imported


def _json(capsys, argv):
    code = main([*argv, "--json", "--no_progress"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def _embeddings(demo, paths):
    from tfface.recognition import Recognizer

    recognizer = Recognizer(demo["model"])
    return {p: recognizer.face(p).embedding for p in paths}


def test_far_from_a_pairs_file_is_the_reference_operating_point(demo, tmp_path, capsys):
    pairs, images = _lfw_folder(demo, tmp_path)
    code, out, err = _json(
        capsys,
        ["calibrate", "--model", demo["model"], "--far", "0.1", "--pairs", pairs]
        + ["--images", images, "--ext", "png"],
    )
    assert code == 0, err
    # Reference: the pairs' cosines from the recognizer, the threshold above the
    # (floor(0.1 * 10) + 1)-th highest impostor, with explicit loops.
    from tfface.eval import lfw

    paths1, paths2, issame = lfw.pair_paths(lfw.read_pairs(pairs), images, ext="png")
    emb = _embeddings(demo, sorted(set(paths1 + paths2)))
    scores = [float(np.dot(emb[a], emb[b])) for a, b in zip(paths1, paths2, strict=True)]
    impostors = sorted(
        (s for s, same in zip(scores, issame, strict=True) if not same), reverse=True
    )
    assert impostors[1] < out["threshold"] <= impostors[1] + 1e-6
    point = out["operating_point"]
    assert point["false_accepts"] == 1 and point["impostors"] == 10
    assert point["true_accepts"] == sum(
        s >= out["threshold"] for s, same in zip(scores, issame, strict=True) if same
    )
    assert point["genuines"] == 10 and out["data"]["pairs_dropped"] == 0


def test_fpir_stores_the_threshold_and_identify_uses_it(demo, strangers, tmp_path, capsys):
    gallery = str(tmp_path / "g.gallery")
    model = ["--model", demo["model"]]
    assert main(["enroll", *model, "--gallery", gallery, demo["people"], "--no_progress"]) == 0
    capsys.readouterr()
    # A gallery never calibrated: identify uses the model's exported threshold.
    code, out, _ = _json(capsys, ["identify", *model, "--gallery", gallery, demo["group"]])
    assert (out["threshold"], out["threshold_source"]) == (0.5, "model")

    # Too few stranger faces for the target: exit 2 with the counts, nothing stored.
    code, out, err = _json(
        capsys,
        ["calibrate", *model, "--fpir", "0.1", "--strangers", strangers, "--gallery", gallery],
    )
    assert code == 2 and out is None
    assert "--fpir 0.1 needs at least 10 stranger faces (1/0.1); there are 5." in err
    with Gallery.open(gallery, create=False) as g:
        assert g.settings() == {}

    code, out, err = _json(
        capsys,
        ["calibrate", *model, "--fpir", "0.2", "--strangers", strangers, "--gallery", gallery],
    )
    assert code == 0, err
    # Reference: each stranger's best cosine over the gallery's rows; at most
    # floor(0.2 * 5) = 1 of them reaches the threshold.
    with Gallery.open(gallery, create=False) as g:
        rows = [(name, vector) for name, _, vector, _ in g.rows()]
        stored = g.settings()["identify_threshold"]
    faces = _embeddings(demo, sorted(os.path.join(strangers, f) for f in os.listdir(strangers)))
    top = sorted((max(float(np.dot(e, v)) for _, v in rows) for e in faces.values()), reverse=True)
    assert top[1] < out["threshold"] <= top[1] + 1e-6
    assert out["operating_point"]["false_accepts"] == 1
    assert out["data"]["stranger_faces"] == 5 and out["data"]["identities"] == 2
    assert stored["value"] == out["threshold"] and stored["target"] == {"fpir": 0.2}

    code, out, _ = _json(capsys, ["identify", *model, "--gallery", gallery, demo["group"]])
    assert (out["threshold"], out["threshold_source"]) == (stored["value"], "gallery")
    for face in out["images"][0]["faces"]:
        known = face["similarity"] >= stored["value"]
        assert face["identity"] == (face["matches"][0]["name"] if known else "unknown")
    # --threshold wins over the gallery's.
    code, out, _ = _json(
        capsys, ["identify", *model, "--gallery", gallery, demo["group"], "--threshold", "0.3"]
    )
    assert (out["threshold"], out["threshold_source"]) == (0.3, "--threshold")


def test_identify_says_which_threshold_and_when_the_gallery_grew():
    from tfface.cli.commands.identify import describe_threshold

    calibrated = {"source": "gallery", "target": {"fpir": 0.01}, "gallery_people": 2}
    assert describe_threshold(0.9, calibrated, 2) == (
        "open-set threshold: 0.9000 (the gallery's, calibrated at FPIR 0.01)"
    )
    assert describe_threshold(0.9, calibrated, 5) == (
        "open-set threshold: 0.9000 (the gallery's, calibrated at FPIR 0.01 with 2 people; "
        "it now has 5: rerun `tfface calibrate`)"
    )
    assert describe_threshold(0.5, {"source": "--threshold"}, 5).endswith("(--threshold)")
    assert "model's exported" in describe_threshold(0.5, {"source": "model"}, 5)
    assert "none (model not calibrated" in describe_threshold(None, {"source": None}, 5)
