import json
import os
import subprocess
import sys

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _summary(accuracy, val=0.1, auc=0.9, raw=0.6):
    trained = {"accuracy_mean": accuracy, "val_mean": val, "auc": auc}
    return {"results": {"trained net": trained, "raw pixels": {"accuracy_mean": raw}}}


def test_aggregate_and_noise_verdict(script):
    """Seeds 0.80/0.82/0.84 (mean 0.82, std 0.02) vs 0.70/0.71/0.72 (mean 0.71, std 0.01):
    gap +11 points, standard error 100·sqrt(0.02²/3 + 0.01²/3) = 1.29 points, outside.
    0.81/0.83/0.82 vs the first: gap 0.0, inside."""
    zoo = script("loss_zoo")
    a = zoo.aggregate([_summary(v) for v in (0.80, 0.82, 0.84)])
    b = zoo.aggregate([_summary(v) for v in (0.70, 0.71, 0.72)])
    c = zoo.aggregate([_summary(v) for v in (0.81, 0.83, 0.82)])
    assert a["accuracy"][0] == pytest.approx(0.82) and a["accuracy"][1] == pytest.approx(0.02)
    gap, inside = zoo.noise_verdict(a["accuracy"], b["accuracy"])
    assert gap == pytest.approx(11.0) and inside is False
    gap, inside = zoo.noise_verdict(c["accuracy"], a["accuracy"])
    assert gap == pytest.approx(0.0, abs=1e-9) and inside is True
    one = zoo.aggregate([_summary(0.9)])
    assert zoo.noise_verdict(one["accuracy"], a["accuracy"])[1] is None
    text = zoo.table({"x": a, "y": b, "z": c})
    lines = text.splitlines()
    assert lines[2].startswith("| x |") and lines[2].endswith("| 0.6000 ± 0.0000 | best |")
    assert "(outside noise)" in lines[-1] and lines[-1].startswith("| y |")


def test_read_scalars_from_event_files(script, tmp_path):
    tf = pytest.importorskip("tensorflow")
    zoo = script("loss_zoo")
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step, value in ((0, 3.0), (10, 2.0), (20, 1.5)):
            tf.summary.write("loss", tf.constant(value), step=step)
            tf.summary.write("other", tf.constant(9.0), step=step)
    writer.flush()
    steps, values = zoo.read_scalars(str(tmp_path))
    np.testing.assert_array_equal(steps, [0, 10, 20])
    np.testing.assert_allclose(values, [3.0, 2.0, 1.5])


def test_draw_writes_pngs(script, tmp_path):
    zoo = script("loss_zoo")
    steps = np.array([0, 10, 20])
    curves = {"softmax": [(steps, np.array([3.0, 2.0, 1.0]))], "empty": [(steps[:0], steps[:0])]}
    zoo.draw_curves(curves, str(tmp_path / "c.png"))
    rocs = {"softmax": (np.array([0.0, 0.001, 0.5, 1.0]), np.array([0.0, 0.3, 0.9, 1.0]), 0.9)}
    zoo.draw_roc(rocs, str(tmp_path / "r.png"))
    for name in ("c.png", "r.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE


def test_commands_use_existing_train_flags(script, tmp_path):
    """train.py accepts every command the zoo builds (absl checks the flags and exits)."""
    zoo = script("loss_zoo")
    args = zoo.parse_args([f"--out={tmp_path}", "--steps=7", "--seeds=3"])
    for name in ("arcface", "triplet-hard"):
        cmd = zoo.command(name, 3, args) + ["--only_check_args"]
        assert f"--model_dir={os.path.join(str(tmp_path), name, 'seed3')}" in cmd
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_reuses_finished_runs(script, tmp_path):
    """A run with eval/summary.json is read back, not trained again."""
    zoo = script("loss_zoo")
    args = zoo.parse_args([f"--out={tmp_path}", "--losses=cosface"])
    eval_dir = tmp_path / "cosface" / "seed0" / "eval"
    eval_dir.mkdir(parents=True)
    (eval_dir / "summary.json").write_text(json.dumps(_summary(0.75)))
    assert zoo.train("cosface", 0, args)["results"]["trained net"]["accuracy_mean"] == 0.75


def test_finished_only_tabulates_what_finished_and_trains_nothing(script, tmp_path, capsys):
    zoo = script("loss_zoo")
    for name, seed, accuracy in (("cosface", 0, 0.7), ("cosface", 2, 0.72), ("arcface", 0, 0.6)):
        eval_dir = tmp_path / name / f"seed{seed}" / "eval"
        eval_dir.mkdir(parents=True)
        (eval_dir / "summary.json").write_text(json.dumps(_summary(accuracy)))
        roc = {"roc_fpr": [0.0, 0.5, 1.0], "roc_tpr": [0.0, 0.8, 1.0], "auc": 0.8}
        (eval_dir / "heldout.json").write_text(json.dumps(roc))
    argv = [f"--out={tmp_path}", "--losses=cosface,arcface,normface", "--seeds=0,1,2"]
    assert zoo.main([*argv, "--finished_only", f"--figures_dir={tmp_path / 'fig'}"]) == 0
    out = capsys.readouterr().out
    assert "not finished, left out: cosface seed 1" in out
    assert "not finished, left out: normface seed 0" in out
    assert "| cosface | 2 | 0.7100 ± 0.0141 |" in out and "| arcface | 1 |" in out
    assert "normface |" not in out and not (tmp_path / "normface" / "seed0" / "train.log").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--losses=arcface,magfce"], "Received: ['magfce']"),
        (["--seeds=a,b"], "--seeds=a,b"),
        (["--steps=0"], "--steps=0"),
    ],
)
def test_bad_arguments_exit_2(script, capsys, argv, message):
    zoo = script("loss_zoo")
    with pytest.raises(SystemExit) as exit_:
        zoo.parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_script_runs_as_a_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join("experiments", "loss_zoo.py"), "--losses=nope"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert proc.returncode == 2 and "--losses" in proc.stderr
