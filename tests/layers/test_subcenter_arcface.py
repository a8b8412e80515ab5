import math

import keras
import numpy as np

from tests.layers import reference
from tests.layers.golden import deg
from tests.layers.head_test_base import DIM
from tests.layers.head_test_base import HeadChecks
from tfface.layers import ArcFace
from tfface.layers import SubCenterArcFace
from tfface.testing import TestCase

K = 3


def subcenter_logits(x, w, labels, k, scale=64.0, m=0.5):
    """Deng et al. (ECCV 2020): cos θ_j = max over the K columns j·K + k of class j; the
    target gets ArcFace's cos(θ_y + m) (with its fallback), the rest s·cos θ_j."""
    _, table = reference.cosine_table(x, w)
    classes = w.shape[1] // k
    logits = np.zeros((x.shape[0], classes))
    for i in range(x.shape[0]):
        for j in range(classes):
            value = -1.0
            for c in range(k):
                value = max(value, table[i][j * k + c])
            if labels is not None and j == int(labels[i]):
                value = reference.target_value("ArcFace", value, {"margin": m})
            logits[i, j] = scale * value
    return logits


def counts_by_loops(x, w, labels, k):
    """[C, K] counts of each class's samples per nearest own sub-centre."""
    _, table = reference.cosine_table(x, w)
    counts = np.zeros((w.shape[1] // k, k), dtype=np.int64)
    for i in range(x.shape[0]):
        y = int(labels[i])
        best = 0
        for c in range(1, k):
            if table[i][y * k + c] > table[i][y * k + best]:
                best = c
        counts[y, best] += 1
    return counts


def unit(degrees):
    return np.array([math.cos(deg(degrees)), math.sin(deg(degrees))], "float32")


class SubCenterArcFaceTest(HeadChecks, TestCase):
    layer_cls = SubCenterArcFace
    init_kwargs = {"num_classes": 6, "sub_centers": K}
    centers_per_class = K

    def reference_logits(self, x, w, labels, frozen_x=None):
        return subcenter_logits(x, w, labels, K)

    def test_golden_nearest_subcenter_takes_the_margin(self):
        """Class 0 has sub-centres at 0° and 90°, class 1 at 180° and 270°. An embedding at
        80° is 10° from class 0's second sub-centre: target 64·cos(10° + 0.5 rad)
        = 64·cos(0.6745329) = 49.9839; class 1: nearest sub-centre 180° at 100°,
        64·cos 100° = −11.1135. Inference: 64·cos 10° = 63.0277."""
        head = SubCenterArcFace(num_classes=2, sub_centers=2)
        head.build((None, 2))
        head.kernel.assign(np.stack([unit(a) for a in (0, 90, 180, 270)], axis=1))
        x = unit(80)[None]
        logits = keras.ops.convert_to_numpy(head([x, np.array([0])]))
        self.assertAllClose(
            logits, [[64 * math.cos(deg(10) + 0.5), 64 * math.cos(deg(100))]], atol=1e-4
        )
        self.assertAllClose(logits, [[49.9839, -11.1135]], atol=1e-4)
        self.assertAllClose(head(x)[0, 0], 63.0277, atol=1e-4)

    def test_column_layout_is_class_major(self):
        """Column c·K + k is sub-centre k of class c (insightface's reshape to [C, K])."""
        head = SubCenterArcFace(num_classes=4, sub_centers=K)
        head.build((None, DIM))
        w = np.random.default_rng(0).normal(size=(DIM, 4 * K)).astype("float32")
        head.kernel.assign(w)
        for column in (0, 5, 7, 11):
            x = w[:, column][None]
            logits = keras.ops.convert_to_numpy(head(x))[0]
            self.assertEqual(int(np.argmax(logits)), column // K)
            self.assertAllClose(logits[column // K], 64.0, atol=1e-4)

    def test_one_subcenter_is_arcface(self):
        x, w, labels = self.random_case(1)
        head = SubCenterArcFace(num_classes=6, sub_centers=1)
        arcface = ArcFace(num_classes=6)
        for layer in (head, arcface):
            layer.build(x.shape)
            layer.kernel.assign(w[:, :6])
        self.assertAllEqual(head([x, labels]), arcface([x, labels]))
        self.assertAllEqual(head(x), arcface(x))

    def test_finite_gradients_when_every_subcenter_is_at_plus_minus_one(self):
        """All K sub-centres of class 0 equal: the embedding at cos θ = 1 and −1 to all."""
        w = np.random.default_rng(2).normal(size=(DIM, 6 * K)).astype("float32")
        w[:, :K] = w[:, :1]
        x = np.stack([w[:, 0], -w[:, 0]]).astype("float32")
        labels = np.zeros(2, "int64")
        for policy in ("float32", "mixed_float16"):
            with self.subTest(policy=policy):
                self._check_finite_gradients(x, w, labels, policy)

    # --- dropping noisy samples --------------------------------------------------
    def _trained_head(self, seed=3, classes=5, n=40):
        rng = np.random.default_rng(seed)
        head = SubCenterArcFace(num_classes=classes, sub_centers=K)
        head.build((None, DIM))
        w = rng.normal(size=(DIM, classes * K)).astype("float32")
        head.kernel.assign(w)
        x = rng.normal(size=(n, DIM)).astype("float32")
        labels = rng.integers(0, classes, size=n).astype("int64")
        return head, w, x, labels

    def test_counts_and_dominant_match_loops(self):
        head, w, x, labels = self._trained_head()
        expected = counts_by_loops(x.astype(np.float64), w.astype(np.float64), labels, K)
        counts = head.subcenter_counts(x, labels)
        self.assertEqual(counts.dtype, np.int64)
        self.assertAllEqual(counts, expected)
        self.assertEqual(int(counts.sum()), len(x))
        dominant = head.dominant_subcenters(x, labels)
        for c in range(5):
            self.assertEqual(dominant[c], int(np.argmax(expected[c])), msg=f"class {c}")
        cos = head.subcenter_cosines(x, labels)
        self.assertEqual(cos.shape, (len(x), K))
        _, table = reference.cosine_table(x.astype(np.float64), w.astype(np.float64))
        for i in (0, 7, 39):
            y = int(labels[i])
            self.assertAllClose(cos[i], table[i][y * K : (y + 1) * K], atol=1e-6)

    def test_counts_of_batches_add_up(self):
        head, _, x, labels = self._trained_head(seed=4)
        total = head.subcenter_counts(x[:15], labels[:15]) + head.subcenter_counts(
            x[15:], labels[15:]
        )
        self.assertAllEqual(total, head.subcenter_counts(x, labels))

    def test_noisy_mask_at_the_75_degree_threshold(self):
        """Class 0: sub-centres at 0°, 90°, 200°; six samples near 0° make 0° dominant
        (74.9°, 75.1° and 140° are nearest to 90°). 74.9° is kept, 75.1° and 140° are
        dropped: the angle is measured to the *dominant* sub-centre, not the nearest."""
        head = SubCenterArcFace(num_classes=1, sub_centers=K)
        head.build((None, 2))
        head.kernel.assign(np.stack([unit(0), unit(90), unit(200)], axis=1))
        angles = [0.0, 5.0, -5.0, 10.0, -10.0, 3.0, 74.9, 75.1, 140.0]
        x = np.stack([unit(a) * 3.0 for a in angles])
        labels = np.zeros(len(angles), "int64")
        self.assertAllEqual(head.subcenter_counts(x, labels), [[6, 3, 0]])
        self.assertAllEqual(head.dominant_subcenters(x, labels), [0])
        mask = head.noisy_sample_mask(x, labels)
        self.assertAllEqual(mask, [False] * 7 + [True, True])
        self.assertAllEqual(head.noisy_sample_mask(x, labels, max_angle=80.0), [False] * 8 + [True])
        # A dominant sub-centre counted elsewhere: 90° → samples beyond 75° of it drop.
        mask = head.noisy_sample_mask(x, labels, dominant=np.array([1]))
        self.assertAllEqual(mask, [True] * 6 + [False, False, False])

    def test_dominant_kernel_starts_an_arcface(self):
        head, w, x, labels = self._trained_head(seed=5)
        dominant = head.dominant_subcenters(x, labels)
        kernel = head.dominant_kernel(dominant)
        self.assertEqual(kernel.shape, (DIM, 5))
        self.assertEqual(kernel.dtype, np.float32)
        for c in range(5):
            self.assertAllEqual(kernel[:, c], w[:, c * K + dominant[c]])
        arcface = ArcFace(num_classes=5)
        arcface.build((None, DIM))
        arcface.kernel.assign(kernel)
        self.assertEqual(tuple(arcface(x).shape), (len(x), 5))

    def test_drop_methods_reject_bad_input(self):
        head = SubCenterArcFace(num_classes=2, sub_centers=K)
        x = np.ones((3, DIM), "float32")
        labels = np.array([0, 1, 1])
        with self.assertRaisesRegex(ValueError, "is not built"):
            head.subcenter_counts(x, labels)
        head.build((None, DIM))
        with self.assertRaisesRegex(ValueError, r"Received: features shape=\(3, 2\)"):
            head.subcenter_counts(x[:, :2], labels)
        with self.assertRaisesRegex(ValueError, "Received: labels shape=\\(2,\\)"):
            head.subcenter_counts(x, labels[:2])
        with self.assertRaisesRegex(ValueError, "dtype=float"):
            head.subcenter_counts(x, labels.astype("float32"))
        with self.assertRaisesRegex(ValueError, r"Received: labels in \[0, 2\]"):
            head.subcenter_counts(x, np.array([0, 1, 2]))
        with self.assertRaisesRegex(ValueError, r"Received: dominant in \[0, 3\]"):
            head.noisy_sample_mask(x, labels, dominant=np.array([0, 3]))
        with self.assertRaisesRegex(ValueError, r"Received: dominant shape=\(3,\)"):
            head.dominant_kernel(np.array([0, 1, 2]))
        with self.assertRaisesRegex(ValueError, "Received: max_angle=0"):
            head.noisy_sample_mask(x, labels, max_angle=0)

    def test_rejects_bad_arguments(self):
        for value in (0, 1.5, True):
            with self.assertRaisesRegex(ValueError, f"Received: sub_centers={value}"):
                SubCenterArcFace(num_classes=3, sub_centers=value)
        with self.assertRaisesRegex(ValueError, "Received: margin=2.0"):
            SubCenterArcFace(num_classes=3, margin=2.0)
