"""train.py: flag validation (in process) and end-to-end runs (subprocess, slow)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import train  # noqa: E402

TINY = [
    "--data=synthetic:40",
    "--image_size=32",
    "--embedding_dim=16",
    "--identities_per_batch=8",
    "--images_per_identity=2",
    "--log_every=2",
]


@pytest.fixture(autouse=True)
def parsed_flags():
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss": "arcface", "mining": "hard"}, "--mining applies to --loss=triplet only"),
        ({"loss": "triplet", "scale": 30.0}, "--scale applies to margin heads only"),
        ({"loss": "sphereface", "scale": 30.0}, "--scale does not apply to sphereface"),
        ({"loss": "normface", "margin": 0.3}, "--margin does not apply to --loss=normface"),
        ({"loss": "arcface", "margins": ["1", "0.3", "0.2"]}, "--margins applies to"),
        ({"loss": "combined", "margins": ["1", "0.3"]}, "three values"),
        ({"steps": 10, "epochs": 2}, "--steps or --epochs, not both"),
        ({"identities_per_batch": 0}, "`identities_per_batch` must be a positive int"),
    ],
)
def test_flag_errors_name_the_flag(overrides, message):
    with flagsaver.flagsaver(**overrides):
        with pytest.raises(ValueError, match=message):
            train.config_from_flags()


def test_per_loss_defaults_and_overrides():
    with flagsaver.flagsaver(loss="arcface"):
        config = train.config_from_flags()
        assert config.head_kwargs == train.HEAD_DEFAULTS["arcface"]
        assert config.model_dir == os.path.join("runs", "arcface")
        assert config.data == train.DEFAULT_HEAD_DATA
    with flagsaver.flagsaver(loss="combined", margins=["1", "0.3", "0.2"], scale=32.0):
        kwargs = train.config_from_flags().head_kwargs
        assert kwargs == {"scale": 32.0, "m1": 1.0, "m2": 0.3, "m3": 0.2}
    with flagsaver.flagsaver(loss="triplet"):
        config = train.config_from_flags()
        assert (config.mining, config.steps) == ("semihard", train.DEFAULT_STEPS)
        assert config.model_dir == os.path.join("runs", "triplet-semihard")
        assert config.data == "synthetic"


def _run(args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def test_bad_flag_exits_with_message(tmp_path):
    result = _run(["--loss=cosface", "--mining=hard", f"--model_dir={tmp_path}"])
    assert result.returncode == 2
    assert "--mining applies to --loss=triplet only" in result.stderr


@pytest.mark.slow
def test_end_to_end_tiny_run_evaluates_and_exports(tmp_path):
    model_dir = tmp_path / "run"
    result = _run([*TINY, "--loss=triplet", "--steps=6", f"--model_dir={model_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for row in ("raw pixels", "untrained net", "trained net", "Exported SavedModel"):
        assert row in out
    assert "6000 pairs, 10 folds" in out
    summary = json.loads((model_dir / "eval" / "summary.json").read_text())
    assert set(summary["results"]) == {"raw pixels", "untrained net", "trained net"}
    assert summary["train"]["final_step"] == 6
    for name in ("heldout.json", "heldout_roc.png", "heldout_scatter.png"):
        assert (model_dir / "eval" / name).exists()
    export = summary["export_path"]
    assert os.path.exists(os.path.join(export, "saved_model.pb"))
    assert -1.0 <= summary["threshold"] <= 1.0
    assert os.listdir(model_dir / "train"), "no TensorBoard events"


def _checkpoint_values(model_dir):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints"))
    values = {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith(("data/", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")):
            continue
        values[name] = reader.get_tensor(name)
    return values


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_matches_uninterrupted(tmp_path):
    args = [
        *TINY,
        "--loss=triplet",
        "--steps=30",
        "--checkpoint_every=4",
        "--evaluate=false",
        "--export=false",
        "--deterministic",
    ]
    model_dir = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train.py"), *args, f"--model_dir={model_dir}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt_dir = model_dir / "checkpoints"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt_dir.exists() and any(f.endswith(".index") for f in os.listdir(ckpt_dir)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    resumed = _run([*args, f"--model_dir={model_dir}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    line = next(x for x in resumed.stdout.splitlines() if x.startswith("Resumed from"))
    start = int(line.split(" at step ")[1].split("/")[0])
    assert 0 < start < 30
    assert "step 30/30" in resumed.stdout

    straight = _run([*args, f"--model_dir={tmp_path / 'straight'}"])
    assert straight.returncode == 0, straight.stderr[-3000:]
    a, b = _checkpoint_values(model_dir), _checkpoint_values(tmp_path / "straight")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "path", sorted(p for p in os.listdir(os.path.join(REPO, "experiments")) if p.endswith(".cfg"))
)
def test_experiment_configs_parse_and_validate(path):
    full = os.path.join(REPO, "experiments", path)
    with open(full) as f:
        assert f.readline().startswith("# Command: python train.py --flagfile=experiments/")
    with flagsaver.flagsaver():
        flags.FLAGS(["train.py", f"--flagfile={full}"])
        config = train.config_from_flags()
    assert config.loss in path
