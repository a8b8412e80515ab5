"""Parity with tensorflow-addons 0.23 (TF 2.15), run in its own virtualenv.

`make parity` sets TFFACE_TFA_PYTHON to .venv-tfa/bin/python; every case runs in one
worker process (tools/tfa_parity_worker.py). Where tfa is sound the values and gradients
agree within 1e-5; where tfa is wrong by construction the documented difference is
asserted instead:
  * no positive pair in the batch: tfa returns NaN (0/0), tfface returns 0;
  * triplet_hard_loss with anchors that have no positive: tfa averages over all B anchors,
    giving each positive-less anchor relu(margin − min_n d(a,n) + d(a,a)) (soft:
    softplus(d(a,a) − min_n d(a,n))); tfface averages over the anchors that have a positive.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tests.losses import reference
from tfface.losses import triplet_hard_loss
from tfface.losses import triplet_semihard_loss

pytestmark = pytest.mark.parity

WORKER = pathlib.Path(__file__).resolve().parents[2] / "tools" / "tfa_parity_worker.py"
METRICS = ("L2", "squared-L2", "angular")
MARGIN = 1.0
CASES = [
    (batch, kind, seed)
    for seed, batch in enumerate((8, 32, 128, 256))
    for kind in ("pk", "mixed", "no_positive")
] + [(128, "large_classes", 4), (256, "large_classes", 5)]
TOL = 1e-5


@pytest.fixture(scope="module")
def tfa_outputs(tmp_path_factory):
    python = os.environ.get("TFFACE_TFA_PYTHON")
    if not python:
        pytest.skip(
            "TFFACE_TFA_PYTHON is not set: run `make parity`, which points it at "
            ".venv-tfa/bin/python (TF 2.15 + tensorflow-addons 0.23)"
        )
    tmp = tmp_path_factory.mktemp("tfa_parity")
    inputs = {"margin": np.float32(MARGIN)}
    for i, (batch, kind, seed) in enumerate(CASES):
        labels, emb = reference.random_batch(seed, batch, 16, kind)
        inputs[f"labels_{i}"], inputs[f"embeddings_{i}"] = labels, emb
    np.savez(tmp / "in.npz", **inputs)
    proc = subprocess.run(
        [python, str(WORKER), "parity", str(tmp / "in.npz"), str(tmp / "out.npz")],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
    )
    assert proc.returncode == 0, f"tfa worker failed:\n{proc.stderr[-4000:]}"
    return inputs, dict(np.load(tmp / "out.npz"))


def _ours(fn, labels, emb, **kwargs):
    x = tf.constant(emb)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = fn(tf.constant(labels), x, margin=MARGIN, **kwargs)
    return float(loss), tape.gradient(loss, x).numpy()


def _distances(emb, metric):
    """float64 NumPy distances with tfa's conventions (only for the documented offsets)."""
    x = emb.astype(np.float64)
    if metric == "angular":
        x = x / np.sqrt(np.maximum((x * x).sum(1, keepdims=True), 1e-12))
        return np.maximum(1.0 - x @ x.T, 0.0)
    sq = np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0.0)
    return sq if metric == "squared-L2" else np.sqrt(sq)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"B{b}-{k}" for b, k, _ in CASES])
@pytest.mark.parametrize("metric", METRICS)
def test_semihard_parity(tfa_outputs, case, metric):
    inputs, out = tfa_outputs
    labels, emb = inputs[f"labels_{case}"], inputs[f"embeddings_{case}"]
    value, grad = _ours(triplet_semihard_loss, labels, emb, distance_metric=metric)
    tfa_value = out[f"{case}/semihard/{metric}/value"]
    if CASES[case][1] == "no_positive":
        assert np.isnan(tfa_value), "tfa was expected to return NaN without positive pairs"
        assert value == 0.0 and np.all(grad == 0.0)
        return
    np.testing.assert_allclose(value, tfa_value, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(grad, out[f"{case}/semihard/{metric}/grad"], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("soft", [False, True], ids=["hinge", "soft"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"B{b}-{k}" for b, k, _ in CASES])
@pytest.mark.parametrize("metric", METRICS)
def test_hard_parity(tfa_outputs, case, metric, soft):
    inputs, out = tfa_outputs
    labels, emb = inputs[f"labels_{case}"], inputs[f"embeddings_{case}"]
    value, grad = _ours(triplet_hard_loss, labels, emb, soft=soft, distance_metric=metric)
    key = f"{case}/{'hard_soft' if soft else 'hard'}/{metric}"
    tfa_value = out[f"{key}/value"]
    same = labels[:, None] == labels[None, :]
    has_pos = (same & ~np.eye(len(labels), dtype=bool)).any(1)
    if has_pos.all():
        np.testing.assert_allclose(value, tfa_value, atol=TOL, rtol=TOL)
        np.testing.assert_allclose(grad, out[f"{key}/grad"], atol=TOL, rtol=TOL)
        return
    # Documented difference: tfa also averages the positive-less anchors, whose "hardest
    # positive" falls back to the row minimum d(a, a).
    d = _distances(emb, metric)
    gap = d.min(1) - np.where(same, np.inf, d).min(1)
    extra = np.log1p(np.exp(gap)) if soft else np.maximum(gap + MARGIN, 0.0)
    rebuilt = (value * has_pos.sum() + extra[~has_pos].sum()) / len(labels)
    np.testing.assert_allclose(rebuilt, tfa_value, atol=TOL, rtol=TOL)
    if has_pos.any() and extra[~has_pos].sum() > TOL:
        assert abs(value - tfa_value) > TOL, "expected tfa to differ on positive-less anchors"


def test_parity_summary(tfa_outputs):
    """Worst differences over every case where tfa is sound (printed; run with -s)."""
    inputs, out = tfa_outputs
    worst = {}
    for case, (_, kind, _) in enumerate(CASES):
        labels, emb = inputs[f"labels_{case}"], inputs[f"embeddings_{case}"]
        same = labels[:, None] == labels[None, :]
        all_have_pos = (same & ~np.eye(len(labels), dtype=bool)).any(1).all()
        for metric in METRICS:
            runs = [("semihard", triplet_semihard_loss, {})] if kind != "no_positive" else []
            if all_have_pos:
                runs += [("hard", triplet_hard_loss, {}), ("hard_soft", triplet_hard_loss, {})]
            for name, fn, kwargs in runs:
                kwargs = {"soft": True} if name == "hard_soft" else kwargs
                value, grad = _ours(fn, labels, emb, distance_metric=metric, **kwargs)
                key = f"{case}/{name}/{metric}"
                w = worst.setdefault(name, [0.0, 0.0, 0])
                w[0] = max(w[0], abs(value - float(out[f"{key}/value"])))
                w[1] = max(w[1], float(np.abs(grad - out[f"{key}/grad"]).max()))
                w[2] += 1
    for name, (dv, dg, n) in sorted(worst.items()):
        print(f"tfa parity {name}: max|dloss|={dv:.2e} max|dgrad|={dg:.2e} over {n} cases")
        assert dv <= TOL and dg <= TOL
    assert set(worst) == {"semihard", "hard", "hard_soft"}
