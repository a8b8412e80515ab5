import numpy as np

from tests.losses import reference
from tests.losses.triplet_checks import TripletLossChecks
from tfface.losses import TripletBatchAllLoss
from tfface.losses import triplet_batch_all_loss
from tfface.testing import TestCase

LINE_X = np.array([[0.0], [2.0], [-2.0], [5.0]], "float32")
LINE_Y = np.array([0, 0, 1, 1], "int32")


class TripletBatchAllLossTest(TripletLossChecks, TestCase):
    loss_fn = staticmethod(triplet_batch_all_loss)
    loss_cls = TripletBatchAllLoss
    reference_fn = staticmethod(reference.batch_all_loss)
    has_soft = True
    reference_sizes = (6, 10)

    def test_golden_line(self):
        """Points 0, 2, -2, 5 with labels 0, 0, 1, 1 (L2 = |x_i - x_j|):

                  a=0  a=1  a=2  a=3
            a=0 [  0    2    2    5 ]
            a=1 [  2    0    4    3 ]
            a=2 [  2    4    0    7 ]
            a=3 [  5    3    7    0 ]

        The 8 valid triplets (a, p, n) and margin + d_ap - d_an with margin 1:
          (0,1,2) 1+2-2 = 1   (0,1,3) 1+2-5 = -2   (1,0,2) 1+2-4 = -1
          (1,0,3) 1+2-3 = 0 (exactly zero: not active)
          (2,3,0) 1+7-2 = 6   (2,3,1) 1+7-4 = 4    (3,2,0) 1+7-5 = 3   (3,2,1) 1+7-3 = 5
        Active: 5 of 8, sum 1 + 6 + 4 + 3 + 5 = 19, loss 19 / 5 = 3.8.
        """
        loss, stats = triplet_batch_all_loss(LINE_Y, LINE_X, margin=1.0, return_stats=True)
        self.assertAllClose(loss, 3.8, atol=1e-6)
        self.assertEqual(int(stats["positive_pairs"]), 4)
        self.assertAllClose(stats["active_fraction"], 5 / 8)

    def test_golden_soft(self):
        """Soft: mean over all 8 triplets of softplus(d_ap - d_an):
        gaps 0, -3, -2, -1, 5, 3, 2, 4 (same table, margin dropped)."""
        loss, stats = triplet_batch_all_loss(LINE_Y, LINE_X, soft=True, return_stats=True)
        gaps = np.array([0.0, -3.0, -2.0, -1.0, 5.0, 3.0, 2.0, 4.0])
        self.assertAllClose(loss, np.mean(np.log1p(np.exp(gaps))), atol=1e-6)
        self.assertAllClose(stats["active_fraction"], 1.0)

    def test_larger_batch_matches_reference_value(self):
        labels, emb = reference.random_batch(9, 30, 6, "mixed")
        expected = reference.batch_all_loss(labels, emb, margin=0.4)
        self.assertAllClose(triplet_batch_all_loss(labels, emb, margin=0.4), expected, atol=1e-5)
