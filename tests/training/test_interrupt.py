"""SIGINT/SIGTERM during training: the step in flight finishes, a checkpoint of it is saved,
`TrainingInterrupted` is raised (train.py: exit 130/143, one line), and a rerun resumes."""

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import FixedData
from tests.training.conftest import tiny_model
from tfface.training import signals
from tfface.training.schema import TrainConfig
from tfface.training.trainer import Trainer
from tfface.training.trainer import TrainingInterrupted

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SignallingData(FixedData):
    """Sends `signum` to this process while the batch of 0-based step `at` is fetched, as a
    Ctrl-C or a cluster's SIGTERM would arrive mid-run."""

    def __init__(self, data, at, signum):
        super().__init__(list(data), data.num_classes)
        self.at = at
        self.signum = signum

    def __iter__(self):
        for i, batch in enumerate(list.__iter__(self)):
            if i == self.at:
                os.kill(os.getpid(), self.signum)
            yield batch


def _config(model_dir, steps):
    return TrainConfig(
        loss="softmax",
        steps=steps,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(model_dir),
        learning_rate=0.05,
        lr_schedule="constant",
        log_every=1,
        checkpoint_every=100,
    )


def _trainer(model_dir, data, steps=6):
    return Trainer(
        _config(model_dir, steps),
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=tiny_model,
        dataset=data,
        log=lambda *a: None,
    )


def _weights(trainer):
    return [
        np.asarray(v.numpy()) for v in trainer.trainable_variables + trainer.optimizer.variables
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_the_step_in_flight_and_resumes(tmp_path, make_data, signum):
    data = make_data(num_batches=6)
    previous = signal.getsignal(signum)
    trainer = _trainer(tmp_path / "run", SignallingData(data, at=2, signum=signum))
    with pytest.raises(TrainingInterrupted) as caught:
        trainer.fit()
    error = caught.value
    # The signal came while step 3's batch was fetched: step 3 ran, then the save.
    assert error.step == 3 and error.signum == signum and error.exit_code == 128 + signum
    assert "interrupted at step 3; rerun the same command to resume" in str(error)
    assert error.checkpoint == tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert error.checkpoint.endswith("ckpt-3")
    assert (
        tf.train.load_checkpoint(error.checkpoint).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")
        == 3
    )
    assert signal.getsignal(signum) is previous, "fit must restore the previous handler"

    resumed = _trainer(tmp_path / "run", data)
    summary = resumed.fit()
    assert summary["start_step"] == 3 and summary["final_step"] == 6
    straight = _trainer(tmp_path / "straight", data)
    straight.fit()
    for a, b in zip(_weights(straight), _weights(resumed), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    "pending, agreed",
    [
        ([0, 0], 0),
        ([0, signal.SIGINT], signal.SIGINT),
        ([signal.SIGINT, signal.SIGTERM, 0], signal.SIGTERM),
        ([signal.SIGTERM, signal.SIGINT], signal.SIGTERM),
    ],
)
def test_workers_agree_on_the_signal_of_highest_precedence(pending, agreed):
    """Each worker's pending signal (0: none), summed as the step's all-reduce sums them:
    every worker decodes the same signal, SIGTERM over SIGINT, 0 when none is pending."""
    counts = sum(tf.stack(signals.pending_counts(tf.constant(int(s), tf.int32))) for s in pending)
    assert int(signals.agreed_signal(counts)) == int(agreed)


def test_signal_on_a_checkpoint_step_saves_once(tmp_path, make_data):
    data = make_data(num_batches=6)
    config = _config(tmp_path, 6)
    config.checkpoint_every = 3
    trainer = Trainer(
        config,
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        model=tiny_model,
        dataset=SignallingData(data, at=2, signum=signal.SIGINT),
        log=lambda *a: None,
    )
    with pytest.raises(TrainingInterrupted, match="at step 3"):
        trainer.fit()
    state = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-3"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_train_py_exits_with_signal_code_and_resumes(tmp_path, signum):
    """A real signal to a train.py process: one line on stderr, exit 128 + signum, a
    checkpoint at the step it names; the same command resumes from there."""
    args = [
        sys.executable,
        os.path.join(REPO, "train.py"),
        "--data=synthetic:40",
        "--image_size=32",
        "--embedding_dim=16",
        "--identities_per_batch=8",
        "--images_per_identity=2",
        "--loss=triplet",
        "--steps=40",
        "--log_every=1",
        "--checkpoint_every=1000",
        "--noevaluate",
        "--noexport",
        f"--model_dir={tmp_path}",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in proc.stdout:
            if line.startswith("step 3/40"):
                break
        else:
            pytest.fail(f"no progress line; stderr:\n{proc.stderr.read()}")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    match = re.search(r"interrupted at step (\d+); rerun the same command to resume", err)
    assert match, err
    step = int(match.group(1))
    assert 3 <= step < 40
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith(f"ckpt-{step}")

    resumed = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"Resumed from {latest} at step {step}/40" in out
    assert "step 40/40" in out
