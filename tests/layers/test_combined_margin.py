import math

import numpy as np

from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tests.layers.head_test_base import HeadChecks
from tests.layers.head_test_base import random_case
from tfface.layers import ArcFace
from tfface.layers import CombinedMargin
from tfface.layers import CosFace
from tfface.testing import TestCase


class CombinedMarginTest(HeadChecks, TestCase):
    layer_cls = CombinedMargin
    init_kwargs = {"num_classes": 6, "m1": 1.0, "m2": 0.3, "m3": 0.2}
    reference_params = {"scale": 64.0, "m1": 1.0, "m2": 0.3, "m3": 0.2}

    def test_golden_sixty_degrees(self):
        """(m1, m2, m3) = (1, 0.3, 0.2), θ = 60°: 64 · (cos(1.0471976 + 0.3) − 0.2)
        = 64 · (0.2217773 − 0.2) = 1.41975."""
        head = CombinedMargin(num_classes=2, m1=1.0, m2=0.3, m3=0.2)
        x = at_angles(head, [60.0])
        expected = 64 * (math.cos(deg(60) + 0.3) - 0.2)
        self.assertAllClose(head([x, np.array([0])])[0, 0], expected, atol=1e-4)

    def test_special_cases_match_cosface_and_arcface(self):
        """(1, 0, m) is CosFace everywhere; (1, m, 0) is ArcFace wherever θ + m ≤ π."""
        x, w, labels = random_case(11, batch=16)
        combined = CombinedMargin(num_classes=w.shape[1], m1=1.0, m2=0.0, m3=0.35)
        cosface = CosFace(num_classes=w.shape[1], margin=0.35)
        for head in (combined, cosface):
            head.build(x.shape)
            head.kernel.assign(w)
        self.assertAllClose(combined([x, labels]), cosface([x, labels]), atol=1e-4)

        combined = CombinedMargin(num_classes=2, m1=1.0, m2=0.5, m3=0.0)
        arcface = ArcFace(num_classes=2, margin=0.5)
        degrees = np.linspace(0.0, 150.0, 31)
        x = at_angles(combined, degrees)
        at_angles(arcface, degrees)
        labels = np.zeros(len(degrees), "int64")
        self.assertAllClose(combined([x, labels]), arcface([x, labels]), atol=2e-4)

    def test_multiplicative_m1(self):
        """m1 = 2, m2 = m3 = 0 at θ = 30°: 64 · cos 60° = 32."""
        head = CombinedMargin(num_classes=2, m1=2.0, m2=0.0, m3=0.0)
        x = at_angles(head, [30.0])
        self.assertAllClose(head([x, np.array([0])])[0, 0], 32.0, atol=1e-4)

    def test_rejects_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: m1=0"):
            CombinedMargin(num_classes=2, m1=0)
        with self.assertRaisesRegex(ValueError, "Received: m2=-0.1"):
            CombinedMargin(num_classes=2, m2=-0.1)
        with self.assertRaisesRegex(ValueError, "Received: m3=-0.2"):
            CombinedMargin(num_classes=2, m3=-0.2)


class CombinedMarginMultiplicativeTest(HeadChecks, TestCase):
    layer_cls = CombinedMargin
    init_kwargs = {"num_classes": 6, "m1": 1.35, "m2": 0.25, "m3": 0.1, "scale": 32.0}
    reference_params = {"scale": 32.0, "m1": 1.35, "m2": 0.25, "m3": 0.1}
