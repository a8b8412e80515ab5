import math

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_curves_come_from_the_layers(script):
    """The layers' outputs at θ = 0°, 60°, 120° against the papers' formulas:
    softmax and NormFace cos θ, CosFace cos θ − 0.35, ArcFace cos(θ + 0.5) (before π − m),
    combined cos(θ + 0.3) − 0.2, SphereFace with λ = 5: (5 cos θ + ψ(θ)) / 6 where
    ψ(60°) = −cos 240° − 2 = −1.5."""
    margin_curves = script("margin_curves")
    theta = np.radians([0.0, 60.0, 120.0])
    values = {
        label: margin_curves.target_values(make, scale, theta)
        for label, make, scale in margin_curves.HEADS
    }
    np.testing.assert_allclose(values["Softmax"], np.cos(theta), atol=1e-6)
    np.testing.assert_allclose(values["NormFace (s=64)"], np.cos(theta), atol=1e-6)
    np.testing.assert_allclose(values["CosFace (m=0.35)"], np.cos(theta) - 0.35, atol=1e-6)
    np.testing.assert_allclose(values["ArcFace (m=0.5)"], np.cos(theta + 0.5), atol=1e-5)
    np.testing.assert_allclose(
        values["Combined (1, 0.3, 0.2)"], np.cos(theta + 0.3) - 0.2, atol=1e-5
    )
    np.testing.assert_allclose(values["SphereFace (m=4, λ=5)"][1], (5 * 0.5 - 1.5) / 6, atol=1e-5)
    np.testing.assert_allclose(values["SphereFace (m=4, λ=0)"][1], -1.5, atol=1e-5)


def test_draw_writes_a_png(script, tmp_path):
    margin_curves = script("margin_curves")
    theta, values = margin_curves.curves(num=9)
    assert theta.shape == (9,) and math.isclose(theta[-1], math.pi)
    path = tmp_path / "sub" / "margins.png"
    margin_curves.draw(theta, values, str(path))
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_rejects_bad_points(script, capsys):
    margin_curves = script("margin_curves")
    with pytest.raises(SystemExit) as exit_:
        margin_curves.main(["--points=1"])
    assert exit_.value.code == 2
    assert "--points=1" in capsys.readouterr().err
