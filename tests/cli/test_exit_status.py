"""Exit statuses as the CLI docstring promises them: a run that did nothing exits 1 with a
message naming why (never a traceback), and what a run reports is true (issue 17, defects
4 and 5)."""

import json
import os
import shutil

import pytest

from tfface.cli.main import main


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.jpg"
    path.write_text("a text file with an image's name")
    return str(path)


@pytest.fixture(scope="module")
def gallery(demo, tmp_path_factory):
    """A gallery built by the demo model, with one person."""
    path = str(tmp_path_factory.mktemp("gallery") / "g.gallery")
    person = os.path.join(demo["people"], "Grace Hopper")
    assert (
        main(
            [
                "enroll",
                "--model",
                demo["model"],
                "--gallery",
                path,
                "--name",
                "GH",
                person,
                "--no_progress",
            ]
        )
        == 0
    )
    return path


def _run(capsys, *argv):
    code = main([*argv, "--no_progress"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("as_json", [False, True])
def test_identify_with_every_input_unreadable_exits_1_naming_them(
    demo, gallery, text_file, capsys, as_json
):
    extra = ["--json"] if as_json else []
    code, out, err = _run(
        capsys, "identify", "--model", demo["model"], "--gallery", gallery, text_file, *extra
    )
    assert code == 1
    assert "Traceback" not in err and "TypeError" not in err
    assert "tfface identify: error:" in err and "no image could be read" in err
    if as_json:
        payload = json.loads(out)
        assert payload["images"] == []
        assert [s["path"] for s in payload["skipped"]] == [text_file]
    else:
        assert text_file in out  # the skipped file and its reason are listed


def test_identify_aligned_with_every_crop_unreadable_exits_1(demo, gallery, text_file, capsys):
    code, out, err = _run(
        capsys, "identify", "--model", demo["model"], "--gallery", gallery, "--aligned", text_file
    )
    assert code == 1 and "no image could be read" in err


@pytest.mark.parametrize("command", ["detect", "embed"])
def test_detect_and_embed_on_a_non_image_exit_1(demo, text_file, capsys, command):
    model = [] if command == "detect" else ["--model", demo["model"]]
    code, out, err = _run(capsys, command, *model, text_file)
    assert code == 1
    assert f"tfface {command}: error:" in err and "Traceback" not in err
    assert text_file in out


def test_embed_with_no_face_anywhere_exits_1(demo, no_face_photo, capsys):
    code, out, err = _run(capsys, "embed", "--model", demo["model"], no_face_photo)
    assert code == 1 and "no face" in err


def test_detect_on_a_readable_photo_without_a_face_answers_0_faces(no_face_photo, capsys):
    # Detection did its work: "no face here" is the answer, not a failure.
    code, out, err = _run(capsys, "detect", no_face_photo)
    assert code == 0 and "0 face(s) in 1 image(s)" in out


def test_enroll_by_name_without_a_face_exits_1_and_creates_no_gallery(
    demo, no_face_photo, capsys, tmp_path
):
    path = str(tmp_path / "new.gallery")
    code, out, err = _run(
        capsys,
        "enroll",
        "--model",
        demo["model"],
        "--gallery",
        path,
        "--name",
        "Dog",
        no_face_photo,
    )
    assert code == 1
    assert "nothing enrolled" in err and "Dog" in err
    assert not os.path.exists(path), "a run that enrolled nothing leaves no new gallery behind"


def test_enroll_a_tree_with_a_faceless_person_counts_truly(demo, no_face_photo, capsys, tmp_path):
    root = tmp_path / "people"
    shutil.copytree(demo["people"], root)
    os.makedirs(root / "Dog")
    shutil.copy(no_face_photo, root / "Dog" / "dog.jpg")
    path = str(tmp_path / "people.gallery")
    code, out, err = _run(capsys, "enroll", "--model", demo["model"], "--gallery", path, str(root))
    assert code == 0  # two of the three people were enrolled
    summary = out.strip().splitlines()
    assert any(
        line.startswith("8 face(s) of 2 people enrolled into") and "(2 people in it)" in line
        for line in summary
    ), out
    assert any("not enrolled" in line and "Dog" in line for line in summary), out

    code, out, err = _run(
        capsys, "enroll", "--model", demo["model"], "--gallery", path, str(root), "--json"
    )
    payload = json.loads(out)
    assert payload["not_enrolled"] == ["Dog"]
    assert payload["gallery_people"] == 2
