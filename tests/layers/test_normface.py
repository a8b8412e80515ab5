import numpy as np

from tests.layers.golden import at_angles
from tests.layers.head_test_base import HeadChecks
from tfface.layers import NormFace
from tfface.testing import TestCase


class NormFaceTest(HeadChecks, TestCase):
    layer_cls = NormFace
    init_kwargs = {"num_classes": 6, "scale": 16.0}
    reference_params = {"scale": 16.0}

    def test_golden_sixty_degrees(self):
        """s = 16, θ = 60° to class 0 and 30° to class 1, radius 5 (ignored: features are
        normalised): logits 16 · (0.5, 0.8660254) = (8, 13.856406), with or without labels."""
        head = NormFace(num_classes=2, scale=16.0)
        x = at_angles(head, [60.0], radius=5.0)
        expected = np.array([[8.0, 16 * np.cos(np.deg2rad(30))]])
        self.assertAllClose(head([x, np.array([0])]), expected, atol=1e-4)
        self.assertAllClose(head(x), expected, atol=1e-4)

    def test_rejects_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: scale=0"):
            NormFace(num_classes=2, scale=0)
        with self.assertRaisesRegex(ValueError, "Received: num_classes=2.5"):
            NormFace(num_classes=2.5)
