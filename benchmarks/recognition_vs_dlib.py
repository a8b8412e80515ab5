"""Photo → identities through tfface and through dlib's own pipeline, on the same photos in
one run: throughput (photos/s, faces/s), stage split and accuracy against known identities.

    make wheel-photos .venv-dlib/.installed
    python benchmarks/recognition_vs_dlib.py                 # 2 timed passes after a warm-up
    python benchmarks/recognition_vs_dlib.py --threads 1     # TensorFlow on one core

tfface: `Recognizer()` (MTCNN → dlib's 5-point predictor and face chip in NumPy →
pretrained dlib_resnet_v1, compiled → `tfface.gallery.Gallery` top-1, open-set threshold
0.9156, dlib's 0.6 in cosine form), its stages timed one by one as `identify` chains them.
dlib: `tools/dlib_recognition_worker.py` in .venv-dlib (dlib-bin 20; HOG detector with one
upsampling → 5-point predictor → `compute_face_descriptor` → nearest descriptor, unknown at
distance >= 0.6: what the face_recognition package does with its defaults).

People with known identity (every face is a different person): the six faces of
insightface's `t1.jpg` (named t1#1..t1#6 left to right), Tom Hanks, Eileen Collins (the
astronaut), Grace Hopper, and the cameraman, who is not enrolled (right answer: unknown).
Each pipeline enrols everyone but the cameraman from the original photos, then identifies
every face in the probe photos: each original mirrored, scaled ×0.8 and brightened ×1.2,
rotated 8°, and re-encoded as JPEG quality 60, plus the README's demo group photo
(`sample_photos.group_photo`: astronaut, Hopper and cameraman rotated and rescaled side by
side). A face's true place is its MTCNN box centre in the original, moved with the photo; a
pipeline finds it when one of its boxes holds that point.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402
from PIL import Image  # noqa: E402
from PIL import ImageEnhance  # noqa: E402
from wheel_photos import load_wheel_photos  # noqa: E402

STAGES = ("decode", "detect", "align", "embed", "search")
WORKER = os.path.join(ROOT, "tools", "dlib_recognition_worker.py")
SOURCES = {
    "t1": None,  # six people, named by place
    "tom_hanks": "Tom Hanks",
    "astronaut": "Eileen Collins",
    "grace_hopper": "Grace Hopper",
    "cameraman": "unknown",
}
# The originals in `sample_photos.group_photo` (its names).
DEMO_NAMES = {
    "astronaut": "Eileen Collins",
    "grace_hopper": "Grace Hopper",
    "cameraman": "cameraman",
}


def rotate_points(points, angle, size):
    """Where PIL's `rotate(angle)` (counter-clockwise, same size) moves `points` [N, 2]."""
    t = math.radians(angle)
    c = np.array(size, np.float64) / 2
    d = np.asarray(points, np.float64) - c
    return c + np.stack([d[:, 0] * math.cos(t) + d[:, 1] * math.sin(t),
                         -d[:, 0] * math.sin(t) + d[:, 1] * math.cos(t)], axis=1)  # fmt: skip


def variants(photo, points):
    """{variant: (uint8 photo, points moved with it, file format)} for one original."""
    im = Image.fromarray(photo)
    w, h = im.size
    scaled = im.resize((round(w * 0.8), round(h * 0.8)), Image.BILINEAR)
    return {
        "mirror": (np.asarray(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
                   np.stack([w - 1 - points[:, 0], points[:, 1]], 1), "png"),
        "x0.8 bright": (np.asarray(ImageEnhance.Brightness(scaled).enhance(1.2)),
                        (points + 0.5) * np.array([scaled.width / w, scaled.height / h]) - 0.5,
                        "png"),
        "rot8": (np.asarray(im.rotate(8, resample=Image.BILINEAR, fillcolor=(255,) * 3)),
                 rotate_points(points, 8, (w, h)), "png"),
        "jpeg60": (photo, points, "jpeg"),
    }  # fmt: skip


def group_truth(photos, people):
    """`sample_photos.group_photo`'s photo and its faces' (name, point), computed with the
    same rotations and sizes it uses."""
    from tfface.recognition import sample_photos

    photo = sample_photos.group_photo(photos)
    height, x, truth = 360, 0, []
    for angle, name in zip(
        (6, -5, 0), (*sample_photos.ENROLLED, sample_photos.STRANGER), strict=True
    ):
        h, w = photos[name].shape[:2]
        point = rotate_points(people[name][None], angle, (w, h))[0]
        scale = height / h
        identity = "unknown" if name == sample_photos.STRANGER else name
        truth.append((identity, (point + 0.5) * scale - 0.5 + [x, 0]))
        x += round(w * scale)
    return photo, truth


def match(boxes, point):
    """Index of the box holding `point` (the one whose centre is nearest), or None."""
    best, best_d = None, math.inf
    for i, (left, top, right, bottom) in enumerate(boxes):
        if left <= point[0] <= right and top <= point[1] <= bottom:
            d = math.hypot((left + right) / 2 - point[0], (top + bottom) / 2 - point[1])
            if d < best_d:
                best, best_d = i, d
    return best


def build_photos(tmp, recognizer):
    """Writes the originals and probes; returns (enrolment [(path, [(name, point)])],
    probes [(path, [(name, point)])])."""
    wheel = load_wheel_photos()
    from tfface.recognition import sample_photos

    demo = sample_photos.source_photos()
    originals = {**wheel, "cameraman": demo["cameraman"]}
    enrol, probes, demo_points = [], [], {}
    for key, photo in originals.items():
        boxes, _, _ = recognizer.detect(photo)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        if key == "t1":
            centres = centres[np.argsort(centres[:, 0])]
            names = [f"t1#{i + 1}" for i in range(len(centres))]
        else:
            # The subject: the largest face (each portrait holds one).
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            centres = centres[[int(np.argmax(areas))]]
            names = [SOURCES[key]]
        faces = list(zip(names, centres, strict=True))
        path = os.path.join(tmp, f"{key}.png")
        Image.fromarray(photo).save(path)
        if key != "cameraman":
            enrol.append((path, [(n, p) for n, p in faces if n != "unknown"]))
        if key in DEMO_NAMES:
            demo_points[DEMO_NAMES[key]] = centres[0]
        for variant, (image, points, fmt) in variants(photo, centres).items():
            path = os.path.join(tmp, f"{key} {variant}.{'jpg' if fmt == 'jpeg' else 'png'}")
            if fmt == "jpeg":
                Image.fromarray(image).save(path, quality=60)
            else:
                Image.fromarray(image).save(path)
            probes.append((path, list(zip(names, points, strict=True))))
    group, truth = group_truth(demo, demo_points)
    path = os.path.join(tmp, "demo group.png")
    Image.fromarray(group).save(path)
    probes.append((path, truth))
    return enrol, probes


def run_tfface(recognizer, gallery, probes, repeats):
    from tfface.recognition import load_image

    runs = []
    for _ in range(1 + repeats):
        totals = {s: [0.0, 0.0] for s in STAGES}

        def timed(stage, fn, *args, totals=totals):
            wall, cpu = time.perf_counter(), time.process_time()
            out = fn(*args)
            totals[stage][0] += time.perf_counter() - wall
            totals[stage][1] += time.process_time() - cpu
            return out

        results = []
        for path, _ in probes:
            image = timed("decode", load_image, path)
            boxes, _, landmarks = timed("detect", recognizer.detect, image)
            crops = timed("align", recognizer.align, image, landmarks)
            embeddings = timed("embed", recognizer.embed, crops)
            found = timed("search", recognizer.search, embeddings, gallery, 1)
            results.append(
                [
                    (box.tolist(), identity)
                    for box, (_, identity, _, _) in zip(boxes, found, strict=True)
                ]
            )
        runs.append(totals)
    return results, runs


def run_dlib(python, enrol, probes, repeats, tmp):
    from tfface.weights import files

    job = {
        "enrol": [
            {"path": p, "faces": [{"name": n, "point": [float(v) for v in pt]} for n, pt in faces]}
            for p, faces in enrol
        ],
        "probes": [p for p, _ in probes],
    }
    job_path, out_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "dlib.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    model = files.package_file(files.DLIB_PACKAGE, files.DLIB_RESNET_FILE)
    shape = files.package_file(files.DLIB_PACKAGE, files.DLIB_SHAPE_PREDICTOR_FILE)
    cmd = [python, WORKER, "--model", model, "--predictor", shape, "--repeats", str(repeats)]
    proc = subprocess.run([*cmd, job_path, out_path], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dlib worker failed:\n{proc.stderr[-4000:]}")
    with open(out_path) as f:
        out = json.load(f)
    results = [[(face["box"], face["identity"]) for face in p["faces"]] for p in out["probes"]]
    return results, out["timing"]["runs"], out


def score(results, probes):
    """Per GT face: (found, identity or None); plus detections matching no face."""
    answers, false = [], 0
    for faces, (_, truth) in zip(results, probes, strict=True):
        boxes = [box for box, _ in faces]
        used = set()
        for _, point in truth:
            i = match(boxes, point)
            answers.append(None if i is None else faces[i][1])
            if i is not None:
                used.add(i)
        false += len(faces) - len(used)
    return answers, false


def summarise(runs):
    """{stage: (wall s, cpu s)}: the median over the timed passes (the first is warm-up)."""
    timed = runs[1:] or runs
    return {s: tuple(statistics.median(r[s][k] for r in timed) for k in (0, 1)) for s in STAGES}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed passes after a warm-up")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: all)")
    parser.add_argument(
        "--dlib_python",
        default=os.environ.get(
            "TFFACE_DLIB_PYTHON", os.path.join(ROOT, ".venv-dlib", "bin", "python")
        ),
        help="interpreter with dlib-bin (make .venv-dlib/.installed)",
    )
    args = parser.parse_args(argv)
    if not os.path.isfile(args.dlib_python):
        raise SystemExit(f"{args.dlib_python} is missing: run `make .venv-dlib/.installed`.")

    import tfface  # noqa: F401, I001  (imports TensorFlow without its start-up lines)
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfface.gallery import Gallery
    from tfface.recognition import Recognizer

    print(describe())
    t = time.perf_counter()
    recognizer = Recognizer()
    tf_load = time.perf_counter() - t
    tmp = tempfile.mkdtemp(prefix="recognition_vs_dlib_")
    enrol, probes = build_photos(tmp, recognizer)
    gallery = Gallery.open(
        os.path.join(tmp, "people.gallery"), model_info=recognizer.model.model_info()
    )
    for path, faces in enrol:
        found = recognizer.faces(path)
        boxes = [f.box for f in found]
        for name, point in faces:
            i = match(boxes, point)
            if i is not None:
                gallery.enroll(name, found[i].embedding[None], sources=[path])
    tf_results, tf_runs = run_tfface(recognizer, gallery, probes, args.repeats)
    dlib_results, dlib_runs, dlib_out = run_dlib(args.dlib_python, enrol, probes, args.repeats, tmp)

    truth = [name for _, faces in probes for name, _ in faces]
    print(
        f"\n{len(probes)} probe photos, {len(truth)} faces of known identity "
        f"({truth.count('unknown')} of the stranger); enrolled: tfface "
        f"{len(gallery.identities())} people, dlib {len(dlib_out['enrolled'])}; "
        f"timed passes: {args.repeats} after a warm-up (median); tfface model load "
        f"{tf_load:.1f} s, dlib {dlib_out['timing']['load_s']:.1f} s; TF intra-op threads "
        f"{args.threads or 'all'}"
    )
    rows = {}
    for label, results, runs in (
        ("tfface", tf_results, tf_runs),
        ("dlib", dlib_results, dlib_runs),
    ):
        answers, false = score(results, probes)
        stages = summarise(runs)
        wall = sum(v[0] for v in stages.values())
        cpu = sum(v[1] for v in stages.values())
        detected = sum(len(r) for r in results)
        rows[label] = answers
        found = sum(a is not None for a in answers)
        correct = sum(a == t for a, t in zip(answers, truth, strict=True))
        print(
            f"\n{label}: {len(probes) / wall:.2f} photos/s, {detected / wall:.2f} faces/s "
            f"(wall {wall:.2f} s, cpu {cpu:.2f} s for {len(probes)} photos, {detected} faces); "
            f"found {found}/{len(truth)}, correct {correct}/{len(truth)}, {false} other detections"
        )
        print(
            "  stage s wall/cpu: "
            + ", ".join(f"{s} {w:.2f}/{c:.2f}" for s, (w, c) in stages.items())
        )
    both = [(a, b) for a, b in zip(rows["tfface"], rows["dlib"], strict=True)]
    agree = sum(a == b for a, b in both if a is not None and b is not None)
    found_both = sum(a is not None and b is not None for a, b in both)
    print(f"\nagree on {agree}/{found_both} faces both found")
    i = 0
    print("\nper face (truth: tfface / dlib), differences only:")
    for path, faces in probes:
        for name, _ in faces:
            a, b = rows["tfface"][i], rows["dlib"][i]
            if a != name or b != name:
                print(f"  {os.path.basename(path)}: {name}: {a} / {b}")
            i += 1
    gallery.close()
    print("\n" + describe())


if __name__ == "__main__":
    main()
