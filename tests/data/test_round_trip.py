"""The spec a writer is given is the spec that reads its output back (issue 7, defect 2).

`convert rec:X tfrecord:/d/tfr` used to write `/d/tfr-00000-of-00001.tfrecord` and
`/d/tfr.manifest.json`, after which `inspect tfrecord:/d/tfr` failed with "No TFRecord shard
matches". Every writer (folder, tfrecord, rec), reached by `convert` and by `synth`, is read
back here with the spec it was given, by `load`, by the CLI and (slow) by train.py.
"""

import os
import re
import subprocess
import sys

import pytest

from tfface.data import check_spec
from tfface.data import load
from tfface.data.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTH = ["--identities", "3", "--images_per_identity", "2", "--image_size", "32"]
# (writer spec relative to tmp_path, extra flags)
WRITERS = [
    ("folder:out", []),
    ("tfrecord:out", []),
    ("tfrecord:out", ["--num_shards", "2"]),
    ("tfrecord:nested/dir/out", []),
    ("rec:out", []),
]
IDS = ["folder", "tfrecord", "tfrecord_2_shards", "tfrecord_nested", "rec"]


def _printed_spec(out):
    match = re.search(r"read it back with the spec (\S+)", out)
    assert match, out
    return match.group(1)


def _encoded(source):
    return sorted(source.read_encoded(source.rows))


@pytest.fixture(scope="module")
def rec_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "faces"
    assert main(["synth", f"rec:{path}", *SYNTH, "--seed", "3"]) == 0
    return f"rec:{path}"


@pytest.mark.parametrize("dst, extra", WRITERS, ids=IDS)
def test_convert_output_reads_back_with_the_written_spec(rec_source, tmp_path, capsys, dst, extra):
    kind, rel = dst.split(":")
    spec = f"{kind}:{tmp_path / rel}"
    capsys.readouterr()
    assert main(["convert", rec_source, spec, *extra]) == 0
    assert _printed_spec(capsys.readouterr().out) == spec
    check_spec(spec)
    source, back = load(rec_source), load(spec)
    assert back.identities == source.identities
    assert back.manifest.counts.tolist() == [2, 2, 2]
    assert _encoded(back) == _encoded(source)
    assert main(["inspect", spec, "--no_decode"]) == 0
    assert "images: 6" in capsys.readouterr().out


@pytest.mark.parametrize("dst, extra", WRITERS, ids=IDS)
def test_synth_output_reads_back_with_the_written_spec(tmp_path, capsys, dst, extra):
    kind, rel = dst.split(":")
    spec = f"{kind}:{tmp_path / rel}"
    assert main(["synth", spec, *SYNTH, *extra]) == 0
    assert _printed_spec(capsys.readouterr().out) == spec
    back = load(spec)
    assert back.identities == [f"synthetic_{i:06d}" for i in range(3)]
    assert sorted(back.labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_tfrecord_prefix_reads_the_manifest_shards_only(rec_source, tmp_path):
    """A stray file next to the shards is not read as a shard; a missing shard is named."""
    prefix = str(tmp_path / "out")
    assert main(["convert", rec_source, f"tfrecord:{prefix}", "--num_shards", "2"]) == 0
    (tmp_path / "out-notes.txt").write_text("not a shard")
    assert load(f"tfrecord:{prefix}").num_examples == 6
    os.remove(f"{prefix}-00001-of-00002.tfrecord")
    with pytest.raises(ValueError, match="out-00001-of-00002.tfrecord"):
        load(f"tfrecord:{prefix}")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("folder:{tmp}/nope", "is not a directory"),
        ("tfrecord:{tmp}/nope", "No TFRecord shard matches"),
        ("rec:{tmp}/nope", "nope.rec' does not exist"),
        ("synthetic:0", "positive integer"),
        ("synthtic", "Unknown data spec"),
    ],
)
def test_check_spec_names_the_spec(tmp_path, spec, message):
    spec = spec.format(tmp=tmp_path)
    with pytest.raises(ValueError, match=message) as e:
        check_spec(spec)
    assert spec in str(e.value)


@pytest.mark.slow  # a fresh interpreter importing TensorFlow and training two steps
def test_train_reads_a_converted_tfrecord_prefix(rec_source, tmp_path):
    prefix = str(tmp_path / "tfr")
    assert main(["convert", rec_source, f"tfrecord:{prefix}"]) == 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    args = [
        f"--data=tfrecord:{prefix}",
        f"--model_dir={tmp_path / 'run'}",
        "--loss=triplet",
        "--image_size=32",
        "--embedding_dim=8",
        "--identities_per_batch=3",
        "--images_per_identity=2",
        "--steps=2",
        "--noevaluate",
        "--noexport",
    ]
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
