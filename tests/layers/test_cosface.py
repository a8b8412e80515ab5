import math

import numpy as np

from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tests.layers.head_test_base import HeadChecks
from tfface.layers import CosFace
from tfface.testing import TestCase


class CosFaceTest(HeadChecks, TestCase):
    layer_cls = CosFace
    init_kwargs = {"num_classes": 6}
    reference_params = {"scale": 64.0, "margin": 0.35}

    def test_golden_sixty_degrees(self):
        """θ = 60°, m = 0.35, s = 64: target 64 · (0.5 − 0.35) = 9.6; class 1 at 30°:
        64 · cos 30° = 55.42563; inference target 64 · 0.5 = 32."""
        head = CosFace(num_classes=2)
        x = at_angles(head, [60.0])
        self.assertAllClose(
            head([x, np.array([0])]),
            np.array([[64 * (0.5 - 0.35), 64 * math.cos(deg(30))]]),
            atol=1e-4,
        )
        self.assertAllClose(head(x), np.array([[32.0, 64 * math.cos(deg(30))]]), atol=1e-4)

    def test_rejects_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: margin=-1"):
            CosFace(num_classes=2, margin=-1)
        with self.assertRaisesRegex(ValueError, "Received: scale=-2"):
            CosFace(num_classes=2, scale=-2)
        with self.assertRaisesRegex(ValueError, "Received: scale=None"):
            CosFace(num_classes=2, scale=None)
