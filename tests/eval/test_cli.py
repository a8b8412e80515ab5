"""Tests for `python -m tfface.eval` on fixture LFW / .bin data with tiny models."""

import io
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.module_imports import run_module
from tfface.eval import bin_pack
from tfface.eval import cli
from tfface.eval import lfw

SIZE = 8


def _jpeg(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _pixel_model():
    """Embedding = centred flattened pixels, so identical images give identical embeddings."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    return keras.Model(inputs, keras.layers.Flatten()(x))


def _random_image(rng):
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture
def lfw_fixture(tmp_path):
    """10 sets × (2 matched + 2 mismatched); a matched pair is the same picture saved twice."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    pairs = []
    for s in range(10):
        for k in range(2):
            name = f"Same_{s}_{k}"
            (images / name).mkdir(parents=True)
            data = _jpeg(_random_image(rng))
            for n in (1, 2):
                (images / name / f"{name}_{n:04d}.jpg").write_bytes(data)
            pairs.append(lfw.LFWPair(name, 1, name, 2))
        for k in range(2):
            a, b = f"DiffA_{s}_{k}", f"DiffB_{s}_{k}"
            for name in (a, b):
                (images / name).mkdir(parents=True)
                (images / name / f"{name}_0001.jpg").write_bytes(_jpeg(_random_image(rng)))
            pairs.append(lfw.LFWPair(a, 1, b, 1))
    lfw.write_pairs(tmp_path / "pairs.txt", pairs, num_sets=10)
    return tmp_path / "pairs.txt", images


def test_lfw_with_keras_model(tmp_path, lfw_fixture, capsys):
    pairs_path, images = lfw_fixture
    model_path = tmp_path / "m.keras"
    _pixel_model().save(model_path)
    out = tmp_path / "out"
    rc = cli.main(
        [
            "lfw",
            "--pairs",
            str(pairs_path),
            "--images",
            str(images),
            "--model",
            str(model_path),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    report = json.loads((out / "lfw.json").read_text())
    assert report["num_pairs"] == 40 and report["num_folds"] == 10
    assert report["accuracy_mean"] == 1.0 and report["auc"] == 1.0
    assert (out / "lfw_roc.png").stat().st_size > 0
    assert capsys.readouterr().out.startswith("lfw: accuracy 1.0000 ± 0.0000")


class _PixelModule(tf.Module):
    def __init__(self, input_dtype=tf.float32):
        super().__init__()
        self.serving_default = tf.function(
            self._embed, input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], input_dtype)]
        )

    def _embed(self, images):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        return {"embeddings": tf.reshape(x, [-1, SIZE * SIZE * 3]), "norm": tf.norm(x)}


def test_bin_with_saved_model(tmp_path):
    rng = np.random.default_rng(1)
    bins, issame = [], []
    for k in range(40):
        a = _jpeg(_random_image(rng))
        same = k % 4 < 2
        bins += [a, a if same else _jpeg(_random_image(rng))]
        issame.append(same)
    bin_pack.write_bin(tmp_path / "tiny.bin", bins, issame, as_numpy=True)
    module = _PixelModule()
    tf.saved_model.save(
        module, str(tmp_path / "sm"), signatures={"serving_default": module.serving_default}
    )
    out = tmp_path / "out"
    cli.main(
        [
            "bin",
            "--pack",
            str(tmp_path / "tiny.bin"),
            "--model",
            str(tmp_path / "sm"),
            "--out",
            str(out),
            "--batch_size",
            "7",
        ]
    )
    report = json.loads((out / "tiny.json").read_text())
    assert report["num_pairs"] == 40 and report["accuracy_mean"] == 1.0


def test_model_errors(tmp_path):
    module = _PixelModule(tf.uint8)
    tf.saved_model.save(
        module, str(tmp_path / "sm"), signatures={"serving_default": module.serving_default}
    )
    with pytest.raises(ValueError, match="must take one float32 image tensor"):
        cli.load_embed_fn(tmp_path / "sm")
    with pytest.raises(ValueError, match="must be a .keras file or a SavedModel"):
        cli.load_embed_fn(tmp_path)
    _pixel_model().save(tmp_path / "m.keras")
    with pytest.raises(SystemExit):
        cli.main(["lfw", "--model", str(tmp_path / "m.keras")])  # missing --pairs etc.
    (tmp_path / "view1.txt").write_text("1\nA\t1\t2\nA\t1\tB\t1\n")
    with pytest.raises(ValueError, match="holds 1 set; .* needs >= 2"):
        cli.main(
            [
                "lfw",
                "--pairs",
                str(tmp_path / "view1.txt"),
                "--images",
                str(tmp_path),
                "--model",
                str(tmp_path / "m.keras"),
                "--out",
                str(tmp_path),
            ]
        )
    (tmp_path / "x.bin").write_bytes(b"")  # exists: the argument checks pass
    with pytest.raises(ValueError, match="--image_size=16 but the model takes 8"):
        cli.main(
            [
                "bin",
                "--pack",
                str(tmp_path / "x.bin"),
                "--model",
                str(tmp_path / "m.keras"),
                "--out",
                str(tmp_path),
                "--image_size",
                "16",
            ]
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bad"], "the following arguments are required: command"),
        (["lfw", "--model", "{tmp}/none.keras", *"--pairs {tmp}/p.txt --images {tmp}".split()],
         "--model: no such .keras file: '{tmp}/none.keras'"),
        (["lfw", "--model", "{tmp}", *"--pairs {tmp}/p.txt --images {tmp}".split()],
         "--model must be a .keras file or a SavedModel directory"),
        (["lfw", "--model", "{tmp}/m.keras", *"--pairs {tmp}/none.txt --images {tmp}".split()],
         "--pairs {tmp}/none.txt: no such file"),
        (["lfw", "--model", "{tmp}/m.keras", *"--pairs {tmp}/p.txt --images {tmp}/no".split()],
         "--images {tmp}/no: no such directory"),
        (["bin", "--model", "{tmp}/m.keras", "--pack", "{tmp}/none.bin"],
         "--pack {tmp}/none.bin: no such file"),
        (["bin", "--model", "{tmp}/m.keras", "--pack", "{tmp}/p.txt", "--folds", "1"],
         "--folds must be >= 2. Received: --folds=1"),
        (["bin", "--model", "{tmp}/m.keras", "--pack", "{tmp}/p.txt", "--far_target", "2"],
         "--far_target must be in [0, 1]. Received: --far_target=2.0"),
        (["bin", "--model", "{tmp}/m.keras", "--pack", "{tmp}/p.txt", "--batch_size", "0"],
         "--batch_size must be >= 1. Received: --batch_size=0"),
        (["bin", "--model", "{tmp}/m.keras", "--pack", "{tmp}/p.txt", "--metric", "l1"],
         "argument --metric: invalid choice: 'l1'"),
        (["bin", "--model", "{tmp}/m.keras", "--pack", "{tmp}/p.txt", "--out", "{tmp}/p.txt"],
         "--out {tmp}/p.txt: exists and is not a directory"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_before_tensorflow_loads(argv, message, tmp_path):
    """A fresh `python -X importtime -m tfface.eval` with a bad argument (a path that does
    not exist included) exits 2 naming it, and never imports TensorFlow or Keras."""
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "p.txt").write_text("10 2\n")
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--out" not in argv and argv[0] != "--bad":
        argv += ["--out", str(tmp_path / "out")]
    code, _, errors, imported = run_module("tfface.eval", *argv, timeout=120)
    assert code == 2, errors
    assert message.format(tmp=tmp_path) in errors
    assert "tfface.eval.cli" in imported
    assert not {m.split(".")[0] for m in imported} & {"tensorflow", "keras"}, errors
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_module_entry_point(tmp_path, lfw_fixture):
    pairs_path, images = lfw_fixture
    _pixel_model().save(tmp_path / "m.keras")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfface.eval",
            "lfw",
            "--pairs",
            str(pairs_path),
            "--images",
            str(images),
            "--model",
            str(tmp_path / "m.keras"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "lfw: accuracy 1.0000" in proc.stdout
    assert (tmp_path / "o" / "lfw.json").exists()
