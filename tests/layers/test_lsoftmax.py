import numpy as np

from tests.layers.golden import at_angles
from tests.layers.head_test_base import HeadChecks
from tests.layers.head_test_base import random_case
from tfface.layers import LSoftmax
from tfface.layers import SphereFace
from tfface.testing import TestCase


class LSoftmaxTest(HeadChecks, TestCase):
    layer_cls = LSoftmax
    init_kwargs = {"num_classes": 6, "margin": 2}
    # iteration 20: λ = 1000 / (1 + 0.12 · 20) = 294.1176...
    iteration = 20
    reference_params = {"margin": 2, "lambda": 1000.0 / (1.0 + 0.12 * 20)}

    def test_golden_sixty_degrees(self):
        """m = 2, λ = 0, ‖x‖ = 3, ‖W_0‖ = 2, ‖W_1‖ = 0.5, θ_0 = 60° ∈ [0, π/2] so k = 0:
        ψ = cos 120° = −0.5, target logit 2 · 3 · (−0.5) = −3.
        Class 1 (θ = 30°): 0.5 · 3 · cos 30° = 1.2990381. Inference target: xᵀW_0 = 3.
        """
        head = LSoftmax(num_classes=2, margin=2, base=0.0, lambda_min=0.0)
        x = at_angles(head, [60.0], radius=3.0, weight_norms=(2.0, 0.5))
        other = 1.5 * np.cos(np.deg2rad(30))
        self.assertAllClose(head([x, np.array([0])]), np.array([[-3.0, other]]), atol=1e-5)
        self.assertAllClose(head(x), np.array([[3.0, other]]), atol=1e-5)

    def test_inference_is_plain_inner_product(self):
        x, w, _ = random_case(9)
        head = LSoftmax(num_classes=w.shape[1])
        head.build(x.shape)
        head.kernel.assign(w)
        self.assertAllClose(head(x), x.astype("float64") @ w.astype("float64"), atol=1e-5)

    def test_differs_from_sphereface_only_by_weight_norm(self):
        """With unit-norm class weights L-Softmax and SphereFace give the same logits."""
        x, w, labels = random_case(10)
        w = w / np.linalg.norm(w, axis=0, keepdims=True)
        heads = [cls(num_classes=w.shape[1], margin=3) for cls in (LSoftmax, SphereFace)]
        for head in heads:
            head.build(x.shape)
            head.kernel.assign(w)
        self.assertAllClose(heads[0]([x, labels]), heads[1]([x, labels]), atol=1e-5)


class LSoftmaxNoAnnealingTest(HeadChecks, TestCase):
    layer_cls = LSoftmax
    init_kwargs = {"num_classes": 6, "margin": 4, "base": 0.0, "lambda_min": 0.0}
    reference_params = {"margin": 4, "lambda": 0.0}
