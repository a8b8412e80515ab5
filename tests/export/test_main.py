"""`python -m tfface.export`: a saved .keras model becomes a TF Serving version dir."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface.export.__main__ import main

from .helpers import make_images

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
