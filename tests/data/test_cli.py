import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.data import fixtures
from tfface.data import load
from tfface.data.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_synth_then_convert_every_format(tmp_path, capsys):
    folder = f"folder:{tmp_path / 'f'}"
    assert (
        main(
            [
                "synth",
                folder,
                "--identities",
                "3",
                "--images_per_identity",
                "2",
                "--image_size",
                "32",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    source = load(folder)
    assert source.identities == [f"synthetic_{i:06d}" for i in range(3)]
    assert source.manifest.counts.tolist() == [2, 2, 2]

    assert main(["convert", folder, f"rec:{tmp_path / 'r'}"]) == 0
    assert (
        main(
            ["convert", f"rec:{tmp_path / 'r'}", f"tfrecord:{tmp_path / 't'}", "--num_shards", "2"]
        )
        == 0
    )
    assert main(["convert", f"tfrecord:{tmp_path / 't'}-*", f"folder:{tmp_path / 'g'}"]) == 0
    back = load(f"folder:{tmp_path / 'g'}")
    assert back.identities == source.identities
    a = sorted(d for d in source.read_encoded(source.rows))
    b = sorted(d for d in back.read_encoded(back.rows))
    assert a == b
    assert "wrote 6 images of 3 identities" in capsys.readouterr().out


def test_synth_is_deterministic(tmp_path):
    for name in ("a", "b"):
        args = [
            "synth",
            f"rec:{tmp_path / name}",
            "--identities",
            "2",
            "--images_per_identity",
            "2",
            "--image_size",
            "32",
            "--seed",
            "5",
        ]
        assert main(args) == 0
    assert (tmp_path / "a.rec").read_bytes() == (tmp_path / "b.rec").read_bytes()


def test_inspect_reports_bad_files(tmp_path, capsys):
    root = str(tmp_path / "d")
    fixtures.good_folder(root, ("ann", "bob"), per_identity=2)
    fixtures.write_file(os.path.join(root, "bob", "t.jpg"), fixtures.truncated_jpeg(0))
    fixtures.write_file(os.path.join(root, "bob", "c.jpg"), fixtures.corrupt_huffman_jpeg(1))
    fixtures.write_file(os.path.join(root, "cy", "z.jpg"), b"")
    report = str(tmp_path / "report.json")
    assert main(["inspect", f"folder:{root}", "--report", report]) == 0
    out = capsys.readouterr().out
    assert "identities: 2" in out and "images: 4" in out
    data = json.load(open(report))
    assert data["skipped_by_reason"] == {
        "decode_error": 1,
        "empty_file": 1,
        "empty_identity": 1,
        "truncated": 1,
    }
    assert data["identities"] == 2 and data["decoded"] is True
    # Header checks only: the corrupt Huffman table is not found.
    assert main(["inspect", f"folder:{root}", "--no_decode", "--report", report]) == 0
    assert "decode_error" not in json.load(open(report))["skipped_by_reason"]


def test_fail_policy_exit_code(tmp_path, capsys):
    root = str(tmp_path / "d")
    fixtures.good_folder(root, ("ann",), per_identity=1)
    bad = fixtures.write_file(os.path.join(root, "ann", "z.jpg"), b"")
    assert main(["inspect", f"folder:{root}", "--on_bad_image", "fail"]) == 1
    err = capsys.readouterr().err
    assert bad in err and "empty_file" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "folder:{tmp}/x", "--identities", "0"], "--identities=0"),
        (["synth", "folder:{tmp}/x", "--images_per_identity", "-1"], "--images_per_identity=-1"),
        (["synth", "folder:{tmp}/x", "--num_shards", "0"], "--num_shards=0"),
        (["synth", "tfds:mnist"], "Unknown data spec 'tfds:mnist'"),
        (["inspect", "zip:/nowhere"], "Unknown data spec 'zip:/nowhere'"),
        (["inspect", "folder:{tmp}/missing"], "is not a directory"),
        (["convert", "rec:{tmp}/missing", "folder:{tmp}/y"], "missing.rec' does not exist"),
        (["convert", "folder:{tmp}", "folder:{tmp}"], "non-empty folder"),
        (["inspect"], "required: spec"),
    ],
)
def test_flag_and_spec_errors_exit_2_before_any_work(tmp_path, capsys, argv, message):
    (tmp_path / "sub").mkdir()
    argv = [a.format(tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_synth_defaults_are_shown_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    out = capsys.readouterr().out
    assert "(default: 1000)" in out and "(default: 20)" in out


@pytest.mark.slow  # two fresh interpreters importing TensorFlow: ~30 s on 2 shared cores
def test_subprocess_round_trip(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "tfface.data", *args],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    synth = run(
        "synth",
        "rec:faces",
        "--identities",
        "2",
        "--images_per_identity",
        "3",
        "--image_size",
        "32",
    )
    assert synth.returncode == 0, synth.stderr
    inspect = run("inspect", "rec:faces", "--report", "r.json")
    assert inspect.returncode == 0, inspect.stderr
    assert "identities: 2" in inspect.stdout and "images: 6" in inspect.stdout
    report = json.load(open(tmp_path / "r.json"))
    assert report["num_skipped"] == 0 and report["images"] == 6
    labels = load(f"rec:{tmp_path / 'faces'}").labels
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
