"""Input-pipeline throughput: folder JPEG → decode → augment → P×K batch, vs raw decode.

Writes a temporary identity folder of synthetic JPEG faces (default 1,000 identities × 10
images at 112×112, quality 95), then measures in one run:

(a) `pk_batches(load("folder:TMP"), P, K, augment=True)`: images/s of finished float32
    P×K batches (read, decode, resize check, augment, batch);
(b) raw decode: tf.data list → read_file → decode_jpeg (parallel, AUTOTUNE) → batch, the
    ceiling for (a); the script prints (a) / (b) (target ≥ 50 %);
(a') the same with `interpolation="nearest"` and with augment=False;
(c) synthetic rendering: `SyntheticFaces.render` images/s on one core (NumPy, BLAS pinned
    to one thread), and `pk_batches` on a `SyntheticSource`.

The 1-minute load average is printed before and after: numbers taken while other jobs run
are not comparable with a quiet machine.

Usage:
    python benchmarks/input_pipeline.py                     # defaults, ~1–2 min quiet
    python benchmarks/input_pipeline.py --identities 200 --images 10 --batches 20
"""

import os

# Pin NumPy's BLAS to one thread before NumPy is imported: (c) is a one-core figure.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from tfface.data import load  # noqa: E402
from tfface.data import pk_batches  # noqa: E402
from tfface.data.synthetic import SyntheticFaces  # noqa: E402
from tfface.data.synthetic import SyntheticSource  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402


def write_folder(root, identities, images, size, seed):
    faces = SyntheticFaces(image_size=size, seed=seed)
    ids = np.repeat(np.arange(identities), images)
    var = np.tile(np.arange(images), identities)
    paths = []
    for start in range(0, ids.shape[0], 512):
        batch, _ = faces.render(ids[start : start + 512], var[start : start + 512])
        for img, i, v in zip(
            batch, ids[start : start + 512], var[start : start + 512], strict=True
        ):
            folder = os.path.join(root, f"id_{i:05d}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{v:03d}.jpg")
            buffer = io.BytesIO()
            Image.fromarray(img).save(buffer, "JPEG", quality=95)
            with open(path, "wb") as f:
                f.write(buffer.getvalue())
            paths.append(path)
    return paths


def rate(iterator, batches, batch_size, warmup=3):
    """(images per wall second, images per process CPU second): the second is the one to
    compare on a shared machine, the first the one to report on a quiet one."""
    for _ in range(warmup):
        next(iterator)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    n = batches * batch_size
    return round(n / (time.perf_counter() - start), 1), round(n / (time.process_time() - cpu), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--p", type=int, default=32, help="identities per batch")
    parser.add_argument("--k", type=int, default=4, help="images per identity")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--render_images", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(describe(), flush=True)
    result = {"cpu_count": os.cpu_count(), "load_before": round(os.getloadavg()[0], 2)}
    batch = args.p * args.k
    s = args.image_size

    # (c) synthetic render, one core.
    faces = SyntheticFaces(image_size=s, seed=args.seed)
    faces.render(np.arange(256), np.arange(256))  # warm-up
    ids = np.arange(args.render_images) % 997
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, args.render_images, 1024):
        faces.render(ids[i : i + 1024], ids[i : i + 1024] + 7)
    result["synthetic_render_images_per_s_1core"] = round(
        args.render_images / (time.perf_counter() - start), 1
    )
    result["synthetic_render_images_per_cpu_s"] = round(
        args.render_images / (time.process_time() - cpu), 1
    )

    root = tempfile.mkdtemp(prefix="tfface_bench_")
    try:
        start = time.perf_counter()
        paths = write_folder(root, args.identities, args.images, s, args.seed)
        result["folder_write_s"] = round(time.perf_counter() - start, 1)
        result["folder_images"] = len(paths)

        # (b) raw read + decode, parallel.
        raw = (
            tf.data.Dataset.from_tensor_slices(paths)
            .shuffle(len(paths), seed=args.seed)
            .repeat()
            .map(
                lambda p: tf.io.decode_jpeg(tf.io.read_file(p), channels=3),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .batch(batch)
            .prefetch(tf.data.AUTOTUNE)
        )
        wall, cpu = rate(iter(raw), args.batches, batch)
        result["raw_decode_images_per_s"], result["raw_decode_images_per_cpu_s"] = wall, cpu

        # (a) folder → decode → augment → P×K.
        source = load(f"folder:{root}", image_size=s)
        pk = pk_batches(source, args.p, args.k, seed=args.seed, image_size=s, augment=True)
        wall, cpu = rate(iter(pk), args.batches, batch)
        result["pk_folder_images_per_s"], result["pk_folder_images_per_cpu_s"] = wall, cpu
        result["pk_over_raw"] = round(wall / result["raw_decode_images_per_s"], 3)
        result["pk_over_raw_cpu"] = round(cpu / result["raw_decode_images_per_cpu_s"], 3)

        # The same augmentation with nearest-neighbour resampling (the cheaper warp), and
        # no augmentation at all (sampling + read + decode + batch only).
        for name, kwargs in (
            ("pk_folder_nearest", dict(augment_kwargs=dict(interpolation="nearest"))),
            ("pk_folder_no_augment", dict(augment=False)),
        ):
            pk = pk_batches(source, args.p, args.k, seed=args.seed, image_size=s, **kwargs)
            wall, cpu = rate(iter(pk), args.batches, batch)
            result[f"{name}_images_per_s"], result[f"{name}_images_per_cpu_s"] = wall, cpu
            result[f"{name}_over_raw"] = round(wall / result["raw_decode_images_per_s"], 3)
            result[f"{name}_over_raw_cpu"] = round(cpu / result["raw_decode_images_per_cpu_s"], 3)

        # P×K straight from the renderer (the default training input).
        synth = SyntheticSource(args.identities, args.images, image_size=s, seed=args.seed)
        pk = pk_batches(synth, args.p, args.k, seed=args.seed, image_size=s, augment=True)
        wall, cpu = rate(iter(pk), args.batches, batch)
        result["pk_synthetic_images_per_s"], result["pk_synthetic_images_per_cpu_s"] = wall, cpu
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["load_after"] = round(os.getloadavg()[0], 2)
    result["config"] = vars(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
