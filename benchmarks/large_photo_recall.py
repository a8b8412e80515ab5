"""Face recall on large photos: the `max_detect_side` copy alone against copy + full-resolution
tiles (`Recognizer(detect_tiles=...)`), with the detection time of each.

    make wheel-photos && python benchmarks/large_photo_recall.py
    python benchmarks/large_photo_recall.py --faces 60 --width 6000 --height 4000
    python benchmarks/large_photo_recall.py --min_face_size 40     # a 4× cheaper tile pass

Photos:
- the README's group photos: the demo `group.png` (`tfface.recognition.sample_photos`,
  1027×360) and insightface's `t1.jpg` (1280×886). Both are under `max_detect_side`, so
  the tile pass does not run; their faces are counted to show nothing changes.
- a constructed group photo (default 4000×3000) with every face of the wheel photos (t1's
  six, Tom Hanks, the astronaut, Grace Hopper) and the cameraman pasted `--faces` times at
  seeded random places and sizes (face box side log-uniform in [`--min_size`,
  `--max_size`] px), each with the context around it (the box grown 2×). Ground truth is
  each pasted face's MTCNN box from its source photo, moved and scaled with it; a detection
  finds a face when their IoU is >= 0.4.
"""

import argparse
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402
from PIL import Image  # noqa: E402
from wheel_photos import load_wheel_photos  # noqa: E402

from tfface.align import FaceDetector  # noqa: E402
from tfface.recognition import Recognizer  # noqa: E402
from tfface.recognition import sample_photos  # noqa: E402

CONTEXT = 2.0  # pasted region side / face box side


def source_faces(recognizer, photos):
    """[(name, photo, box)] for every confident face of the source photos."""
    out = []
    for name, photo in photos.items():
        boxes, _, _ = recognizer.detect(photo)
        order = np.argsort(boxes[:, 0])
        for j, i in enumerate(order):
            out.append((f"{name}#{j + 1}" if len(boxes) > 1 else name, photo, boxes[i]))
    return out


def constructed_photo(faces, count, width, height, min_size, max_size, seed):
    """(uint8 photo, ground-truth boxes [count, 4], names) of `count` pasted faces."""
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(
        np.clip(rng.normal(150, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    )
    taken, truth, names = [], [], []
    for k in range(count):
        name, photo, box = faces[k % len(faces)]
        side = math.exp(rng.uniform(math.log(min_size), math.log(max_size)))
        scale = side / max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2
        half = CONTEXT * max(box[2] - box[0], box[3] - box[1]) / 2
        region = [centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half]
        region = [round(v) for v in region]
        patch = Image.fromarray(photo).crop(region)  # black beyond the photo's edges
        size = max(2, round(patch.width * scale))
        scale = size / patch.width
        patch = patch.resize((size, size), Image.BILINEAR)
        for _ in range(1000):
            x, y = rng.integers(0, width - size), rng.integers(0, height - size)
            rect = (x, y, x + size, y + size)
            if all(
                rect[2] <= r[0] or r[2] <= rect[0] or rect[3] <= r[1] or r[3] <= rect[1]
                for r in taken
            ):
                break
        else:
            raise SystemExit(f"no room for face {k}: lower --faces or --max_size")
        taken.append(rect)
        canvas.paste(patch, (int(x), int(y)))
        origin = np.array(region[:2], np.float64)
        corner = np.array([x, y], np.float64)
        truth.append(np.concatenate([(box[:2] - origin), (box[2:] - origin)]) * scale)
        truth[-1] += np.tile(corner, 2)
        names.append(name)
    return np.asarray(canvas), np.asarray(truth), names


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def match(truth, boxes, threshold=0.4):
    """found [len(truth)] bool, and the number of detections matching no face."""
    found = np.zeros(len(truth), bool)
    false = 0
    for box in boxes:
        scores = [iou(t, box) for t in truth]
        best = int(np.argmax(scores)) if scores else -1
        if best >= 0 and scores[best] >= threshold and not found[best]:
            found[best] = True
        else:
            false += 1
    return found, false


def timed_detect(recognizer, photo):
    wall, cpu = time.perf_counter(), time.process_time()
    boxes, _, _ = recognizer.detect(photo)
    return boxes, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--faces", type=int, default=40, help="faces pasted")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--min_size", type=float, default=24.0, help="smallest face box side")
    parser.add_argument("--max_size", type=float, default=240.0, help="largest face box side")
    parser.add_argument("--max_detect_side", type=int, default=1600)
    parser.add_argument("--min_face_size", type=float, default=20.0, help="FaceDetector's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(describe())
    detector = FaceDetector(min_face_size=args.min_face_size)
    base = Recognizer(None, detector, max_detect_side=args.max_detect_side, detect_tiles=False)
    tiled = Recognizer(None, detector, max_detect_side=args.max_detect_side, detect_tiles=True)
    wheel = load_wheel_photos()
    demo = sample_photos.group_photo()
    base.detect(demo)  # warm-up: the detector's networks are traced on first use
    print("\nREADME group photos (faces found, detect s wall/cpu):")
    for name, photo in (("demo group.png", demo), ("t1.jpg", wheel["t1"])):
        for label, rec in (("copy", base), ("copy+tiles", tiled)):
            boxes, wall, cpu = timed_detect(rec, photo)
            print(
                f"  {name:15s} {photo.shape[1]}x{photo.shape[0]} {label:10s} "
                f"{len(boxes)} faces  {wall:.2f}/{cpu:.2f} s"
            )

    sources = dict(wheel)
    sources["cameraman"] = sample_photos.source_photos()["cameraman"]
    faces = source_faces(base, sources)
    photo, truth, _ = constructed_photo(
        faces, args.faces, args.width, args.height, args.min_size, args.max_size, args.seed
    )
    sides = np.maximum(truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1])
    scale = min(1.0, args.max_detect_side / max(photo.shape[:2]))
    print(
        f"\nconstructed {args.width}x{args.height}: {len(truth)} faces of {len(faces)} people, "
        f"box side {sides.min():.0f}-{sides.max():.0f} px (x{scale:.2f} in the "
        f"{args.max_detect_side}-px copy: {sides.min() * scale:.0f}-{sides.max() * scale:.0f} px)"
    )
    bins = [(0, 50), (50, 100), (100, 1e9)]
    header = " ".join(
        f"{lo:>3.0f}-{hi:<4.0f}px" if hi < 1e9 else f">={lo:.0f}px" for lo, hi in bins
    )
    print(f"  {'pass':10s} {'recall':>12s}   by face side: {header}   false  detect s wall/cpu")
    for label, rec in (("copy", base), ("copy+tiles", tiled)):
        boxes, wall, cpu = timed_detect(rec, photo)
        found, false = match(truth, boxes)
        cells = []
        for lo, hi in bins:
            sel = (sides >= lo) & (sides < hi)
            cells.append(f"{found[sel].sum():>3d}/{sel.sum():<3d}   ")
        print(
            f"  {label:10s} {found.sum():>4d}/{len(truth)} {found.mean():6.1%}   "
            f"{'':13s}{' '.join(cells)} {false:5d}  {wall:.1f}/{cpu:.1f}"
        )
    print("\n" + describe())


if __name__ == "__main__":
    main()
