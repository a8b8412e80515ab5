import math

import keras
import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_angles_golden(script):
    """Class 0 at ±10° around the x axis, class 1 along y: intra angle 10° for every
    point, class means 90° apart."""
    digits = script("digits_sphere")
    t = math.radians(10.0)
    features = np.array(
        [[math.cos(t), math.sin(t), 0], [math.cos(t), -math.sin(t), 0], [0, 3, 0], [0, 5, 0]]
    )
    intra, inter = digits.angles(features, np.array([0, 0, 1, 1]), 2)
    assert intra == pytest.approx(5.0, abs=1e-6)  # (10 + 10 + 0 + 0) / 4
    assert inter == pytest.approx(90.0, abs=1e-6)


def test_split_is_stratified_and_disjoint(script):
    digits = script("digits_sphere")
    x_train, y_train, x_test, y_test = digits.load_digits_split(seed=0)
    assert x_train.shape[1:] == (8, 8, 1) and len(x_train) + len(x_test) == 1797
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    counts = np.bincount(y_test, minlength=10) / np.bincount(y_train + 0, minlength=10)
    np.testing.assert_allclose(counts, 1 / 3, atol=0.03)


@pytest.mark.parametrize("loss", ["center", "arcface"])
def test_train_one_tiny(script, loss):
    """One epoch on 120 images: finite metrics, features of the requested dimension."""
    digits = script("digits_sphere")
    x_train, y_train, x_test, y_test = digits.load_digits_split(seed=1)
    data = (x_train[:120], y_train[:120], x_test[:60], y_test[:60])
    features, metrics = digits.train_one(
        loss,
        data,
        3,
        epochs=1,
        batch_size=40,
        seed=0,
        center_weight=0.5,
        progress=keras.callbacks.Callback(),
    )
    assert features.shape == (60, 3)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert np.isfinite(metrics["intra"]) and np.isfinite(metrics["inter"])


def test_draw_writes_pngs(script, tmp_path):
    digits = script("digits_sphere")
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 10
    metrics = {"accuracy": 0.5, "intra": 10.0, "inter": 20.0}
    spheres = {"softmax": (rng.normal(size=(30, 3)), metrics)}
    planes = {
        "softmax": (rng.normal(size=(30, 2)), metrics),
        "center": (rng.normal(size=(30, 2)), metrics),
    }
    digits.draw_spheres(spheres, labels, str(tmp_path / "s.png"))
    digits.draw_planes(planes, labels, str(tmp_path / "p.png"))
    for name in ("s.png", "p.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--losses=softmax,triplet"], "Received: ['triplet']"),
        (["--epochs=0"], "--epochs=0"),
        (["--data_dir=/nonexistent"], "--data_dir=/nonexistent"),
    ],
)
def test_bad_arguments_exit_2(script, capsys, argv, message):
    digits = script("digits_sphere")
    with pytest.raises(SystemExit) as exit_:
        digits.parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
