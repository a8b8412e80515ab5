"""`python -m tfface.export`: a saved .keras model becomes a TF Serving version dir."""

import io
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.module_imports import run_module
from tfface.export.__main__ import main

from .helpers import IMAGE_SIZE
from .helpers import make_images


def encode_png(image):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


ATOL = 1e-5


@pytest.fixture(scope="module")
def keras_file(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("keras") / "model.keras")
    model.save(path)
    return path


def test_cli_exports_a_keras_file(model, keras_file, tmp_path, capsys):
    export_dir = str(tmp_path / "serving")
    path = main(
        [
            "--model",
            keras_file,
            "--export_dir",
            export_dir,
            "--name",
            "faces",
            "--threshold",
            "0.3",
            "--warmup_batch_sizes",
            "1,2",
        ]
    )
    assert path == os.path.join(export_dir, "faces", "1")
    printed = capsys.readouterr().out
    for key in ("serving_default", "embed_jpeg", "verify"):
        assert f"  {key}(" in printed
    loaded = tf.saved_model.load(path)
    images = make_images(2)
    out = loaded.signatures["serving_default"](images=tf.constant(images))["embeddings"]
    np.testing.assert_allclose(out.numpy(), keras.ops.convert_to_numpy(model(images)), atol=ATOL)
    assert loaded.threshold.numpy() == pytest.approx(0.3)
    # A second run without --version publishes the next version.
    assert main(["--model", keras_file, "--export_dir", export_dir, "--name", "faces"]).endswith(
        os.path.join("faces", "2")
    )


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--warmup_batch_sizes", "1,x"], "--warmup_batch_sizes=1,x"),
        (["--threshold", "high"], "invalid float value: 'high'"),
    ],
)
def test_cli_rejects_bad_flags(keras_file, tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit) as e:
        main(["--model", keras_file, "--export_dir", str(tmp_path), *extra])
    assert e.value.code == 2
    assert match in capsys.readouterr().err


@pytest.fixture(scope="module")
def run_dir(model, tmp_path_factory):
    """A finished run as train.py leaves it: RUN/embedding_model.keras."""
    run = tmp_path_factory.mktemp("run")
    model.save(str(run / "embedding_model.keras"))
    return str(run)


@pytest.fixture(scope="module")
def bin_pack(tmp_path_factory):
    """A .bin pack of 40 pairs of PNGs: genuine pairs share a random colour (plus noise),
    impostor pairs have two unrelated colours, so the tiny model's scores spread out."""
    from tfface.eval import write_bin

    rng = np.random.default_rng(3)
    colour = lambda: rng.integers(0, 256, size=(1, 1, 3)) * np.ones((IMAGE_SIZE, IMAGE_SIZE, 1))
    noise = lambda: rng.integers(-30, 31, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
    bins, issame = [], []
    for i in range(40):
        a = colour()
        b = a if i % 2 == 0 else colour()
        bins += [encode_png(np.clip(a + noise(), 0, 255)), encode_png(np.clip(b + noise(), 0, 255))]
        issame.append(i % 2 == 0)
    path = str(tmp_path_factory.mktemp("pack") / "pairs.bin")
    write_bin(path, bins, issame)
    return path


def _bin_scores(model, path):
    """Cosine scores of the pack's pairs, embedded as insightface evaluates (flip added)."""
    from tfface.eval import load_bin

    bins, issame = load_bin(path)
    x = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in bins])
    x = x.astype("float32")
    emb = keras.ops.convert_to_numpy(model(x)).astype("float64")
    emb += keras.ops.convert_to_numpy(model(x[:, :, ::-1])).astype("float64")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return np.sum(emb[0::2] * emb[1::2], axis=1), np.asarray(issame)


def test_cli_reexports_a_run_directory(run_dir, capsys):
    path = main(["--model", run_dir, "--name", "faces", "--threshold", "0.5", "--version", "3"])
    assert path == os.path.join(run_dir, "export", "faces", "3")
    assert tf.saved_model.load(path).threshold.numpy() == pytest.approx(0.5)


@pytest.mark.parametrize("far", [None, 0.1])
def test_cli_calibrates_the_threshold_on_eval_data(
    model, keras_file, bin_pack, tmp_path, capsys, far
):
    """The exported threshold is `calibrate` on the pack's pair scores: the most accurate
    cut, or the lowest whose FAR <= target (calibrate's rules: tests/export/test_threshold.py)."""
    from tfface.export.threshold import calibrate

    flag = ["--threshold_accuracy"] if far is None else ["--threshold_far", str(far)]
    args = ["--model", keras_file, "--export_dir", str(tmp_path), *flag]
    path = main([*args, f"--eval_data=bin:{bin_pack}"])
    threshold = float(tf.saved_model.load(path).threshold.numpy())
    scores, issame = _bin_scores(model, bin_pack)
    expected = calibrate(scores, issame, far_target=far)
    assert threshold == pytest.approx(expected.threshold, abs=1e-5)
    assert f"threshold {expected.threshold:.4f}" in capsys.readouterr().out
    assert expected.accuracy > 0.8  # the pack separates: the threshold is not degenerate
    if far is not None:
        assert np.mean(scores[~issame] >= threshold + 1e-5) <= far


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--threshold", "1.5"], "--threshold=1.5"),
        (["--threshold_far", "0"], "--threshold_far=0.0"),
        (["--threshold_far", "1e-3"], "need --eval_data"),
        (["--threshold_accuracy"], "need --eval_data"),
        (["--threshold", "0.3", "--threshold_far", "1e-3"], "not allowed with argument"),
        (["--threshold_far", "1e-3", "--eval_data", "bin:/nope.bin"], "--eval_data=bin:/nope.bin"),
        (["--threshold_far", "1e-3", "--eval_data", "lfw:/nope.txt"], "--eval_data=lfw:/nope.txt"),
        (["--threshold_far", "1e-3", "--eval_data", "synthtic"], "--eval_data=synthtic"),
        (["--eval_data", "synthetic"], "only used with --threshold_far"),
        (["--version", "-1"], "--version=-1"),
        (["--warmup_batch_sizes", "0"], "--warmup_batch_sizes=0"),
    ],
)
def test_cli_flag_errors_exit_2_naming_the_flag(keras_file, tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit) as e:
        main(["--model", keras_file, "--export_dir", str(tmp_path), *extra])
    assert e.value.code == 2
    assert match in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_flag_errors_exit_before_tensorflow_is_imported(tmp_path):
    """A fresh `python -m tfface.export` with a bad flag never imports TensorFlow."""
    code, _, errors, imported = run_module("tfface.export", "--model", str(tmp_path), timeout=120)
    assert code == 2
    assert f"--model={tmp_path}" in errors
    assert "tfface.export" in imported
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras")]


def test_cli_model_errors(keras_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--model", keras_file])
    assert e.value.code == 2 and "--export_dir is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tmp_path)])  # a directory without embedding_model.keras
    assert e.value.code == 2 and f"--model={tmp_path}" in capsys.readouterr().err


def test_cli_rejects_missing_model(tmp_path, capsys):
    missing = str(tmp_path / "nope.keras")
    with pytest.raises(SystemExit) as e:
        main(["--model", missing, "--export_dir", str(tmp_path)])
    assert e.value.code == 2
    assert f"--model={missing}" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_as_module_in_a_subprocess(keras_file, tmp_path):
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfface.export",
            "--model",
            keras_file,
            "--export_dir",
            str(tmp_path),
            "--name",
            "faces",
            "--version",
            "5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"to {os.path.join(str(tmp_path), 'faces', '5')}" in proc.stdout
    assert os.path.isfile(os.path.join(str(tmp_path), "faces", "5", "saved_model.pb"))
