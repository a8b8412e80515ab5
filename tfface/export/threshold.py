"""The `verify` threshold of an export, calibrated on verification pairs.

Two rules, both over every pair of the evaluation set (so the figures printed with them
are in-sample, as a threshold shipped with a model is):

- "accuracy": the cosine threshold that maximises accuracy
  (`tfface.eval.verification.best_accuracy_threshold`);
- a target false-accept rate: the lowest threshold whose FAR on the impostor pairs does not
  exceed it (`far_threshold`, facenet's rule). Below 1 / N_impostor no threshold can show
  that FAR on these pairs; the threshold then sits just above every impostor score and
  `resolvable` is False.
"""

import dataclasses

import numpy as np

from tfface.eval import embed
from tfface.eval import verification


@dataclasses.dataclass
class Calibration:
    """A threshold and what it does on the pairs it was fitted on."""

    threshold: float
    rule: str  # "accuracy" or "far=<target>"
    accuracy: float
    tar: float  # true-accept rate (VAL) at the threshold
    far: float  # false-accept rate at the threshold
    num_pairs: int
    num_impostors: int
    resolvable: bool = True

    def summary(self):
        note = "" if self.resolvable else " (target FAR below 1/impostors: not resolvable)"
        return (
            f"threshold {self.threshold:.4f} ({self.rule}{note}) on {self.num_pairs} pairs: "
            f"accuracy {self.accuracy:.4f}, TAR {self.tar:.4f} at FAR {self.far:.5f}"
        )


def pair_scores(embed_fn, images, first, second, flip=False, batch_size=64):
    """Cosine scores of the pairs (`first[i]`, `second[i]`) of uint8 `images` [N, S, S, 3]."""
    emb = embed.embed_images(
        embed_fn, lambda i: images[i], len(images), batch_size=batch_size, flip=flip
    )
    return np.sum(emb[first] * emb[second], axis=1)


def calibrate(scores, issame, far_target=None):
    """A `Calibration`: accuracy-maximising without `far_target`, else FAR <= far_target."""
    scores = np.asarray(scores, np.float64)
    issame = np.asarray(issame, bool)
    if far_target is None:
        threshold, _ = verification.best_accuracy_threshold(scores, issame)
        rule, resolvable = "accuracy", True
    else:
        if not 0.0 < far_target < 1.0:
            raise ValueError(f"`far_target` must be in (0, 1). Received: far_target={far_target}")
        threshold = verification.far_threshold(scores, issame, far_target)
        rule = f"far={far_target:g}"
        resolvable = far_target * np.sum(~issame) >= 1.0
    # The SavedModel keeps a float32 threshold and compares float32 similarities: round up
    # to float32, so the FAR fitted here (strictly above an impostor score) still holds.
    threshold32 = np.float32(np.clip(threshold, -1.0, 1.0))
    if float(threshold32) < threshold and threshold32 < 1.0:  # compared in float64
        threshold32 = np.nextafter(threshold32, np.float32(np.inf))
    threshold = float(threshold32)
    tar, far = verification.val_far(scores, issame, threshold)
    accuracy = float(np.mean((scores >= threshold) == issame))
    return Calibration(
        threshold=threshold,
        rule=rule,
        accuracy=accuracy,
        tar=float(tar),
        far=float(far),
        num_pairs=int(issame.size),
        num_impostors=int(np.sum(~issame)),
        resolvable=bool(resolvable),
    )
