"""Threshold calibration for export: accuracy-maximising and at a target FAR."""

import numpy as np
import pytest

from tfface.export.threshold import calibrate

# 4 genuine pairs and 5 impostors, scores readable by eye.
SCORES = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.5, 0.2, 0.1, 0.0])
ISSAME = np.array([True, True, True, True, False, False, False, False, False])


def test_accuracy_threshold():
    """Two cuts reach 7/9: between 0.8 and 0.7 (accepts 0.9, 0.8: two false rejects) and
    between 0.6 and 0.5 (one false accept, one false reject). Ties go to the higher one,
    as facenet's argmax over ascending distances: the midpoint 0.75."""
    c = calibrate(SCORES, ISSAME)
    assert c.threshold == pytest.approx(0.75)
    assert c.accuracy == pytest.approx(7 / 9)
    assert (c.tar, c.far) == pytest.approx((2 / 4, 0 / 5))
    assert c.rule == "accuracy" and c.resolvable


def test_far_threshold():
    """FAR <= 0.2 allows one of 5 impostors (0.7): the lowest such threshold is just above
    the second-highest impostor 0.5 (in float32, what the SavedModel compares: 0.5 + 2**-24
    rounded up, never down onto the impostor); FAR <= 0.1 allows none: just above 0.7."""
    c = calibrate(SCORES, ISSAME, far_target=0.2)
    assert 0.5 < c.threshold < 0.5 + 1e-7 and c.far == pytest.approx(0.2)
    assert np.float32(c.threshold) > np.float32(0.5)
    assert c.tar == pytest.approx(3 / 4)
    c = calibrate(SCORES, ISSAME, far_target=0.1)
    assert 0.7 < c.threshold < 0.7 + 1e-7 and c.far == 0.0 and c.tar == pytest.approx(0.5)
    assert not c.resolvable  # 0.1 · 5 impostors < 1
    assert "not resolvable" in c.summary()


def test_far_target_range():
    with pytest.raises(ValueError, match="far_target=0"):
        calibrate(SCORES, ISSAME, far_target=0)
