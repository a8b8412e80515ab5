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
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    from tfface import model_metadata

    source = model_metadata.read_saved_model_metadata(path)["threshold_source"]
    assert source == "--threshold given to the export"


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
    from tfface import model_metadata

    source = model_metadata.read_saved_model_metadata(path)["threshold_source"]
    assert source.startswith(f"--eval_data=bin:{bin_pack}: threshold {expected.threshold:.4f}")


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
    # TensorFlow's start-up banner (TF_CPP_MIN_LOG_LEVEL does not reach it) came twice.
    assert "absl::InitializeLog" not in proc.stderr and "oneDNN" not in proc.stderr
    assert f"to {os.path.join(str(tmp_path), 'faces', '5')}" in proc.stdout
    assert os.path.isfile(os.path.join(str(tmp_path), "faces", "5", "saved_model.pb"))


# --- ONNX / LiteRT ---------------------------------------------------------------------
@pytest.mark.parametrize("runtime", ["onnx", "litert"])
def test_cli_exports_onnx_and_litert_int8_saying_what_calibrated_it(
    model, keras_file, tmp_path, capsys, runtime
):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("ai_edge_litert")
    from tfface.export import PortableModel

    crops = tmp_path / "crops"
    crops.mkdir()
    for i, image in enumerate(make_images(6, seed=2)):
        Image.fromarray(image.astype(np.uint8)).save(crops / f"{i}.png")
    (crops / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    args = ["--model", keras_file, "--export_dir", str(tmp_path / "out"), "--name", "faces"]
    path = main(
        [*args, "--format", runtime, "--quantize", "int8", "--calibration_data", str(crops)]
    )
    out, err = capsys.readouterr()
    model_file = os.path.join(path, "model.onnx" if runtime == "onnx" else "model.tflite")
    assert f"Exported {keras_file} to {model_file} ({runtime}, int8, " in out
    assert f"int8 calibrated on 6 aligned crops from {crops} (1 unreadable skipped)" in out
    assert f"skipped {crops / 'broken.jpg'}" in err
    assert "check: cosine to the Keras model on 16 synthetic faces" in out
    portable = PortableModel(path)
    assert portable.metadata["calibration"].startswith("6 aligned crops")
    images = make_images(3)
    got = portable.embed(images)
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    assert np.sum(got * keras.ops.convert_to_numpy(model(images)), axis=1).min() > 0.9

    # Without --calibration_data: synthetic faces on the model's template, and it says so.
    path = main([*args, "--format", runtime, "--quantize", "int8", "--calibration_count", "20"])
    assert (
        "int8 calibrated on 20 synthetic faces (tfface.data.synthetic, seed 0) aligned on "
        "the arcface template at 16x16" in capsys.readouterr().out
    )
    assert path.endswith(os.path.join("faces", "2"))


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--quantize", "int8"], "--quantize=int8 with --format=savedmodel"),
        (["--format", "onnx", "--calibration_data", "x"], "only used with --quantize int8"),
        (["--format", "onnx", "--calibration_count", "9"], "--calibration_count=9"),
        (["--format", "onnx", "--warmup_batch_sizes", "2"], "--warmup_batch_sizes=2 with"),
        (["--format", "tflite"], "invalid choice: 'tflite'"),
        (["--format", "litert", "--quantize", "int4"], "invalid choice: 'int4'"),
        (
            ["--format", "litert", "--quantize", "int8", "--calibration_data", "/nope"],
            "--calibration_data=/nope",
        ),
        (
            ["--format", "litert", "--quantize", "int8", "--calibration_count", "0"],
            "--calibration_count=0",
        ),
        (["--name", ".hidden"], "--name=.hidden"),
    ],
)
def test_cli_format_flag_errors_exit_2(keras_file, tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit) as e:
        main(["--model", keras_file, "--export_dir", str(tmp_path), *extra])
    assert e.value.code == 2
    assert match in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_calibration_folder_without_images_exits_2(keras_file, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no crops here")
    with pytest.raises(SystemExit) as e:
        main(
            ["--model", keras_file, "--export_dir", str(tmp_path / "out"), "--format", "onnx"]
            + ["--quantize", "int8", "--calibration_data", str(tmp_path / "empty")]
        )
    assert e.value.code == 2
    assert (
        f"holds no image files (.jpg, .jpeg, .png, .bmp). Received: --calibration_data="
        f"{tmp_path / 'empty'}" in capsys.readouterr().err
    )


# --- an existing version (issue 17, defect 5) -------------------------------------------
def test_cli_existing_version_names_the_path_and_exits_2(keras_file, tmp_path, capsys):
    """It was a FileExistsError traceback (exit 1) telling a CLI user to 'pass
    overwrite=True'; now: the path, --overwrite or the next free version, exit 2."""
    existing = tmp_path / "faces" / "3"
    (existing / "variables").mkdir(parents=True)
    args = ["--model", keras_file, "--export_dir", str(tmp_path), "--name", "faces"]
    for fmt in ([], ["--format", "onnx"]):
        with pytest.raises(SystemExit) as e:
            main([*args, "--version", "3", *fmt])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"{existing} already exists. Pass --overwrite to replace it, or --version 4" in err
        assert "overwrite=True" not in err
        assert os.listdir(existing) == ["variables"]
    # --overwrite replaces it.
    assert main([*args, "--version", "3", "--overwrite"]) == str(existing)
    assert os.path.isfile(existing / "saved_model.pb")


def test_cli_existing_version_exits_before_tensorflow_is_imported(keras_file, tmp_path):
    (tmp_path / "faces" / "1").mkdir(parents=True)
    code, _, errors, imported = run_module(
        "tfface.export",
        *("--model", keras_file, "--export_dir", str(tmp_path), "--name", "faces"),
        *("--version", "1"),
        timeout=120,
    )
    assert code == 2
    assert f"{tmp_path / 'faces' / '1'} already exists. Pass --overwrite" in errors
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras")]


def test_cli_version_taken_during_export_exits_2(keras_file, tmp_path, capsys):
    """Another exporter publishes the same version while this one converts: the same advice
    and exit 2, not a traceback."""
    from unittest import mock

    final = os.path.join(str(tmp_path), "faces", "1")
    real_rename = os.rename

    def competitor_publishes_first(src, dst):
        if dst == final and not os.path.exists(final):
            os.makedirs(os.path.join(final, "variables"))
        return real_rename(src, dst)

    with mock.patch.object(os, "rename", side_effect=competitor_publishes_first):
        with pytest.raises(SystemExit) as e:
            main(["--model", keras_file, "--export_dir", str(tmp_path), "--name", "faces"])
    assert e.value.code == 2
    assert f"{final} already exists. Pass --overwrite to replace it, or --version 2" in (
        capsys.readouterr().err
    )


# --- start-up noise (issue 17, defect 9) ------------------------------------------------
def test_cli_prints_no_tensorflow_banner(keras_file, tmp_path):
    """`python -m tfface.export` printed TensorFlow's start-up banner twice (its two shared
    libraries each print it; main() imported TensorFlow unfiltered). A LiteRT int8 export
    also runs the converter and the interpreter, whose notices are dropped too. Run as a
    user would: without the suite's TF_CPP_MIN_LOG_LEVEL."""
    pytest.importorskip("ai_edge_litert")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "tfface.export", "--model", keras_file, "--export_dir"]
        + [str(tmp_path), "--format", "litert", "--quantize", "int8"]
        + ["--calibration_count", "10"],
        env=dict(env, PYTHONPATH=REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"to {tmp_path / 'tfface' / '1' / 'model.tflite'} (litert, int8" in proc.stdout
    for noise in ("absl::InitializeLog", "oneDNN", "cuda", "fully_quantize", "XNNPACK"):
        assert noise not in proc.stderr, proc.stderr
