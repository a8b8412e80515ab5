import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.data import fixtures
from tests.module_imports import run_module
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


def _run_module(cwd, *args):
    """A fresh `python -X importtime -m tfface.data ARGS` → (returncode, stdout, stderr
    without the import-time lines, top-level packages it imported)."""
    code, out, errors, imported = run_module(
        "tfface.data", *args, cwd=cwd, env={"TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    return code, out, errors, {m.split(".")[0] for m in imported}


def _spec_fixtures(tmp):
    """Written by hand (paths are all a spec check reads): a tfrecord PREFIX with its
    manifest, one with a manifest whose shard is gone, a rec pair and a lone .rec."""
    (tmp / "empty").mkdir()
    shard = "w-00000-of-00001.tfrecord"
    (tmp / shard).write_bytes(b"")
    for prefix, shards in (("w", [shard]), ("gone", ["gone-00000-of-00001.tfrecord"])):
        (tmp / f"{prefix}.manifest.json").write_text(
            json.dumps({"shards": [{"file": s} for s in shards]})
        )
    for name in ("pair.rec", "pair.idx", "half.rec"):
        (tmp / name).write_bytes(b"")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["convert", "bogus:x", "folder:{tmp}/y"], "src: Unknown data spec 'bogus:x'"),
        (
            ["inspect", "folder:{tmp}/does/not/exist"],
            "spec: Data spec 'folder:{tmp}/does/not/exist'",
        ),
        (["inspect", "tfrecord:{tmp}/noshards"], "No TFRecord shard matches '{tmp}/noshards'"),
        (["inspect", "tfrecord:{tmp}/gone"], "gone.manifest.json lists 1 shards but 1 are missing"),
        (["inspect", "rec:{tmp}/half"], "half.idx' does not exist"),
        (["convert", "tfds:lfw", "tfrecord:{tmp}/w"], "dst: Refusing to overwrite existing shards"),
        (["convert", "folder:{tmp}/empty", "rec:{tmp}/y", "--num_shards", "0"], "--num_shards=0"),
        (["synth", "folder:{tmp}/y", "--identities", "0"], "--identities=0"),
        # Specs that pass (the tfrecord PREFIX found through its manifest, every kind), then
        # a bad flag: the spec checks themselves ran without TensorFlow.
        (["inspect", "tfrecord:{tmp}/w", "--image_size", "0"], "--image_size=0"),
        (["inspect", "rec:{tmp}/pair.idx", "--image_size", "0"], "--image_size=0"),
        (["inspect", "synthetic:3", "--max_pixels", "0"], "--max_pixels=0"),
        (["inspect", "tfds:lfw", "--max_pixels", "-1"], "--max_pixels=-1.0"),
        (
            ["convert", "folder:{tmp}/empty", "tfrecord:{tmp}/t", "--image_size", "0"],
            "--image_size=0",
        ),
    ],
)
def test_bad_flags_and_specs_exit_2_before_tensorflow_is_imported(tmp_path, argv, message):
    _spec_fixtures(tmp_path)
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, errors, packages = _run_module(tmp_path, *argv)
    assert code == 2, errors
    assert message.format(tmp=tmp_path) in errors
    assert "tfface" in packages
    assert not packages & {"tensorflow", "keras"}, errors
    assert not (tmp_path / "y").exists() and not (tmp_path / "t-00000-of-00001.tfrecord").exists()


def test_good_commands_import_tensorflow_and_run(tmp_path):
    """The same fresh `python -m tfface.data`, given good arguments, loads TensorFlow and
    works end to end (so the test above would see TensorFlow had it been imported)."""
    code, out, errors, packages = _run_module(
        tmp_path,
        "synth",
        "folder:faces",
        "--identities",
        "2",
        "--images_per_identity",
        "2",
        "--image_size",
        "32",
    )
    assert code == 0, errors
    assert "tensorflow" in packages
    assert "wrote 4 synthetic images of 2 identities to folder:faces" in out
    assert "oneDNN" not in errors and "absl::InitializeLog" not in errors  # start-up notices
    code, out, errors, packages = _run_module(tmp_path, "inspect", "folder:faces")
    assert code == 0, errors
    assert "tensorflow" in packages
    assert "identities: 2" in out and "images: 4" in out and "0 skipped" in out


def test_lazy_package_names_stay_the_exported_objects():
    """`tfface.data` loads its names on access; importing the `augment` submodule (the
    sampler does) must not turn `tfface.data.augment` into the module."""
    import importlib

    import tfface.data
    import tfface.data.sampler  # noqa: F401  (imports tfface.data.augment)

    module = importlib.import_module("tfface.data.augment")
    assert tfface.data.augment is module.augment and callable(tfface.data.augment)
    from tfface.data import augment
    from tfface.data import pk_batches

    assert augment is module.augment and pk_batches is tfface.data.sampler.pk_batches
    for name in tfface.data.__all__:
        assert not isinstance(getattr(tfface.data, name), type(module)), name
