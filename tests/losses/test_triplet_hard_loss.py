import numpy as np

from tests.losses import reference
from tests.losses.triplet_checks import TripletLossChecks
from tfface.losses import TripletHardLoss
from tfface.losses import triplet_hard_loss
from tfface.testing import TestCase

LINE_X = np.array([[0.0], [2.0], [-2.0], [5.0], [1.0]], "float32")
LINE_Y = np.array([0, 0, 1, 1, 2], "int32")


class TripletHardLossTest(TripletLossChecks, TestCase):
    loss_fn = staticmethod(triplet_hard_loss)
    loss_cls = TripletHardLoss
    reference_fn = staticmethod(reference.hard_loss)
    has_soft = True

    def test_golden_line(self):
        """Points 0, 2, -2, 5, 1 with labels 0, 0, 1, 1, 2 and margin 4 (L2 = |x_i - x_j|):

                  a=0  a=1  a=2  a=3  a=4
            a=0 [  0    2    2    5    1 ]
            a=1 [  2    0    4    3    1 ]
            a=2 [  2    4    0    7    3 ]
            a=3 [  5    3    7    0    4 ]
            a=4 [  1    1    3    4    0 ]

        Hardest positive / hardest negative per anchor:
          a=0: 2 / 1 (point 1) → relu(2 - 1 + 4) = 5
          a=1: 2 / 1           → 5
          a=2: 7 / 2           → 9
          a=3: 7 / 3           → 8
          a=4 is a singleton: no positive, so it is left out (tfa would add
          relu(0 - 1 + 4) = 3, its "hardest positive" being d(a, a) = 0).
        Loss = (5 + 5 + 9 + 8) / 4 = 6.75; tfa gives (27 + 3) / 5 = 6.
        Soft: mean of softplus(1), softplus(1), softplus(5), softplus(4).
        """
        loss, stats = triplet_hard_loss(LINE_Y, LINE_X, margin=4.0, return_stats=True)
        self.assertAllClose(loss, 6.75)
        self.assertEqual(int(stats["positive_pairs"]), 4)
        self.assertAllClose(stats["active_fraction"], 1.0)
        soft = triplet_hard_loss(LINE_Y, LINE_X, soft=True)
        expected = np.mean(np.log1p(np.exp([1.0, 1.0, 5.0, 4.0])))
        self.assertAllClose(soft, expected, atol=1e-6)
        self.assertAllClose(
            reference.hard_loss_tfa_semantics(LINE_Y, LINE_X, margin=4.0), 6.0, atol=1e-12
        )

    def test_golden_inactive(self):
        """Margin 0.5: gaps are 1, 1, 5, 4 → all active; margin 0 with points moved so that
        a=0's gap is negative: with x = 0, 2, 9, 12 (labels 0, 0, 1, 1) the gaps are
        2 - 9 = -7, 2 - 7 = -5, 3 - 7 = -4, 3 - 10 = -7: every triplet inactive, loss 0."""
        x = np.array([[0.0], [2.0], [9.0], [12.0]], "float32")
        loss, stats = triplet_hard_loss(np.array([0, 0, 1, 1]), x, margin=0.0, return_stats=True)
        self.assertAllClose(loss, 0.0)
        self.assertAllClose(stats["active_fraction"], 0.0)

    def test_soft_must_be_bool(self):
        with self.assertRaisesRegex(ValueError, "soft=1"):
            TripletHardLoss(soft=1)
