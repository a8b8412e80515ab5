import math

import keras
import numpy as np

from tests.layers.elastic_checks import ElasticChecks
from tests.layers.golden import at_angles
from tests.layers.golden import deg
from tfface.layers import CosFace
from tfface.layers import ElasticCosFace
from tfface.testing import TestCase


class ElasticCosFaceTest(ElasticChecks, TestCase):
    layer_cls = ElasticCosFace
    init_kwargs = {"num_classes": 6, "seed": 1}
    kind = "cos"
    mean_margin = 0.35

    def test_golden_zero_spread_is_cosface(self):
        """σ = 0: every draw is m = 0.35. θ = 60°: 64·(0.5 − 0.35) = 9.6."""
        head = ElasticCosFace(num_classes=2, std=0.0, seed=0)
        x = at_angles(head, [60.0])
        logits = keras.ops.convert_to_numpy(head([x, np.zeros(1, "int64")], training=True))
        self.assertAllClose(logits[0, 0], 64 * (math.cos(deg(60)) - 0.35), atol=1e-4)
        self.assertAllClose(logits[0, 0], 9.6, atol=1e-4)

    def test_evaluation_equals_cosface(self):
        x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
        labels = np.array([0, 1, 2, 3, 4, 0])
        head = ElasticCosFace(num_classes=5, seed=3)
        cosface = CosFace(num_classes=5, margin=0.35)
        for layer in (head, cosface):
            layer.build(x.shape)
        cosface.kernel.assign(head.kernel)
        self.assertAllClose(head([x, labels]), cosface([x, labels]), atol=1e-5)

    def test_default_spread_is_the_official_one(self):
        head = ElasticCosFace(num_classes=2)
        self.assertEqual((head.scale, head.margin, head.std, head.plus), (64.0, 0.35, 0.05, False))


class ElasticCosFacePlusTest(ElasticChecks, TestCase):
    """ElasticFace-Cos+ with the official σ = 0.02."""

    layer_cls = ElasticCosFace
    init_kwargs = {"num_classes": 6, "plus": True, "std": 0.02, "seed": 2}
    kind = "cos"
    mean_margin = 0.35
