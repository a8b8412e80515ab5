"""dlib's own photo → identities pipeline, for `benchmarks/recognition_vs_dlib.py`.

Runs inside .venv-dlib (the `dlib-bin` wheel); never imported by tfface. It is what the
`face_recognition` package does with its defaults, written against dlib directly: HOG
frontal face detector with one upsampling, the 5-point shape predictor,
`compute_face_descriptor(image, shape)` (no jitter), and nearest enrolled descriptor by
Euclidean distance, "unknown" at distance >= 0.6.

  python tools/dlib_recognition_worker.py --model RESNET.dat --predictor SHAPE5.dat \\
      --repeats R JOB.json OUT.json

JOB.json: {"enrol": [{"path": P, "faces": [{"name": N, "point": [x, y]}, ...]}, ...],
"probes": [P, ...]}. Each enrolment face is the detection whose box holds its point.
OUT.json: {"enrolled": [names found], "probes": [{"path", "faces": [{"box": [l, t, r, b],
"identity", "distance"}]}], "timing": {"runs": [{stage: [wall s, cpu s]}], "load_s"}}.
Every probe pass is timed (the first one is the warm-up), stages summed over the probes.
"""

import argparse
import json
import sys
import time

import dlib
import numpy as np
from PIL import Image

STAGES = ("decode", "detect", "align", "embed", "search")
THRESHOLD = 0.6


class Timer:
    def __init__(self):
        self.totals = {s: [0.0, 0.0] for s in STAGES}

    def __call__(self, stage, fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.totals[stage][0] += time.perf_counter() - wall
        self.totals[stage][1] += time.process_time() - cpu
        return out


def decode(path):
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--predictor", required=True)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("job")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    with open(args.job) as f:
        job = json.load(f)

    start = time.perf_counter()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(args.predictor)
    net = dlib.face_recognition_model_v1(args.model)
    load_s = time.perf_counter() - start

    def describe(image, timer):
        boxes = timer("detect", detector, image, 1)
        shapes = timer("align", lambda: [predictor(image, b) for b in boxes])
        if not shapes:
            return [], np.zeros((0, 128))
        # Face by face, as face_recognition's face_encodings does; the call cuts dlib's
        # face chip itself, so for dlib "embed" includes the chip and "align" is the
        # predictor alone.
        vectors = timer(
            "embed",
            lambda: np.array([np.array(net.compute_face_descriptor(image, s, 0)) for s in shapes]),
        )
        return list(boxes), vectors

    names, gallery = [], []
    enrol_timer = Timer()
    for item in job["enrol"]:
        image = decode(item["path"])
        boxes, vectors = describe(image, enrol_timer)
        for face in item["faces"]:
            x, y = face["point"]
            hits = [
                i
                for i, b in enumerate(boxes)
                if b.left() <= x <= b.right() and b.top() <= y <= b.bottom()
            ]
            if hits:
                names.append(face["name"])
                gallery.append(vectors[hits[0]])
    gallery = np.array(gallery).reshape(-1, 128)

    def search(vectors):
        out = []
        for v in vectors:
            distances = np.linalg.norm(gallery - v, axis=1)
            best = int(np.argmin(distances)) if len(distances) else -1
            found = best >= 0 and distances[best] < THRESHOLD
            out.append(
                (names[best] if found else "unknown", float(distances[best]) if best >= 0 else None)
            )
        return out

    runs, results = [], []
    for _ in range(1 + args.repeats):
        timer = Timer()
        results = []
        for path in job["probes"]:
            image = timer("decode", decode, path)
            boxes, vectors = describe(image, timer)
            decisions = timer("search", search, vectors)
            results.append(
                {
                    "path": path,
                    "faces": [
                        {
                            "box": [b.left(), b.top(), b.right(), b.bottom()],
                            "identity": name,
                            "distance": distance,
                        }
                        for b, (name, distance) in zip(boxes, decisions, strict=True)
                    ],
                }
            )
        runs.append(timer.totals)
    with open(args.out, "w") as f:
        json.dump(
            {
                "enrolled": names,
                "probes": results,
                "timing": {"runs": runs, "load_s": load_s},
                "dlib": dlib.__version__,
            },
            f,
        )


if __name__ == "__main__":
    sys.exit(main())
