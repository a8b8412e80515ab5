import math

import keras
import numpy as np

from tests.layers.elastic_checks import ElasticChecks
from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tfface.layers import ArcFace
from tfface.layers import ElasticArcFace
from tfface.testing import TestCase


class ElasticArcFaceTest(ElasticChecks, TestCase):
    layer_cls = ElasticArcFace
    init_kwargs = {"num_classes": 6, "seed": 1}
    kind = "arc"
    mean_margin = 0.5

    def test_golden_zero_spread_is_arcface_below_pi_minus_m(self):
        """σ = 0: every draw is m = 0.5. θ = 60°: 64·cos(1.5471976) = 1.5102, as ArcFace.
        θ = 170°: no fallback (official code), 64·cos(2.9670597 + 0.5) = 64·cos(3.4670597)
        = −60.6401, where ArcFace's fallback gives 64·(cos 170° − 0.5·sin(π − 0.5))
        = −78.3693."""
        head = ElasticArcFace(num_classes=2, std=0.0, seed=0)
        x = at_angles(head, [60.0, 170.0])
        logits = keras.ops.convert_to_numpy(head([x, np.zeros(2, "int64")], training=True))
        self.assertAllClose(
            logits[:, 0], [64 * math.cos(deg(60) + 0.5), 64 * math.cos(deg(170) + 0.5)], atol=1e-4
        )
        self.assertAllClose(logits[:, 0], [1.5102, -60.6401], atol=1e-4)
        arcface = ArcFace(num_classes=2)
        x = at_angles(arcface, [60.0, 170.0])
        reference = keras.ops.convert_to_numpy(arcface([x, np.zeros(2, "int64")]))
        self.assertAllClose(logits[0], reference[0], atol=1e-5)
        self.assertAllClose(reference[1, 0], -78.3693, atol=1e-4)

    def test_default_spread_is_the_official_one(self):
        head = ElasticArcFace(num_classes=2)
        self.assertEqual((head.scale, head.margin, head.std, head.plus), (64.0, 0.5, 0.05, False))


class ElasticArcFacePlusTest(ElasticChecks, TestCase):
    """ElasticFace-Arc+ with the official σ = 0.0175."""

    layer_cls = ElasticArcFace
    init_kwargs = {"num_classes": 6, "plus": True, "std": 0.0175, "seed": 2}
    kind = "arc"
    mean_margin = 0.5
