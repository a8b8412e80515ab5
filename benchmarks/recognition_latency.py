"""End-to-end photo → identities latency on CPU, split into the stages users pay for.

    python benchmarks/recognition_latency.py                       # dlib_resnet_v1, 5 repeats
    python benchmarks/recognition_latency.py --model models/faces --gallery_rows 1000,1000000

For each photo (a 512×512 portrait, a 1027×360 group photo with three faces, and the
portrait upscaled to 4096×4096) the Recognizer's stages are timed one by one, exactly as
`Recognizer.identify` chains them: decode (PNG file → RGB array), detect (MTCNN, on a
copy downscaled to `max_detect_side` for the huge photo), align (similarity warp to the
model's crop), embed (the model on every face) and search (top-5 in an embedded
`tfface.gallery.Gallery` of clustered unit vectors, one row per enrolled face, 5 rows per
identity). Each figure is the median over `--repeats` runs after one warm-up run; wall
time and process CPU time are both printed (CPU time is the better single-core estimate
on a shared machine).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402
from PIL import Image  # noqa: E402

from tfface.recognition import Recognizer  # noqa: E402
from tfface.recognition import load_image  # noqa: E402
from tfface.recognition import sample_photos  # noqa: E402

STAGES = ("decode", "detect", "align", "embed", "search")


def clustered_rows(rows, dim, per_identity=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((rows // per_identity, dim)).astype(np.float32)
    x = np.repeat(centres / np.linalg.norm(centres, axis=1, keepdims=True), per_identity, 0)
    x += 0.75 * rng.standard_normal(x.shape).astype(np.float32) / np.sqrt(dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build_gallery(path, rows, model_info, batch=5000):
    from tfface.gallery import Gallery

    gallery = Gallery.open(path, model_info=model_info)
    vectors = clustered_rows(rows, model_info["embedding_size"])
    per = 5
    for start in range(0, rows, batch):
        block = vectors[start : start + batch]
        for j in range(0, len(block), per):
            gallery.enroll(f"person{(start + j) // per:07d}", block[j : j + per])
    return gallery


def time_stages(recognizer, path, gallery, k=5):
    """{stage: (wall s, cpu s)} and the number of faces, for one photo file."""
    out = {}

    def timed(stage, fn, *args):
        w, c = time.perf_counter(), time.process_time()
        result = fn(*args)
        out[stage] = (time.perf_counter() - w, time.process_time() - c)
        return result

    image = timed("decode", load_image, path)
    boxes, scores, landmarks = timed("detect", recognizer.detect, image)
    crops = timed("align", recognizer.align, image, landmarks)
    embeddings = timed("embed", recognizer.embed, crops)
    timed("search", recognizer.search, embeddings, gallery, k)
    return out, len(boxes)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default="dlib_resnet_v1", help="Recognizer model")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per photo")
    parser.add_argument(
        "--gallery_rows", default="1000,100000", help="comma-separated gallery sizes (rows)"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.gallery_rows.split(",")]

    tmp = tempfile.mkdtemp(prefix="recognition_latency_")
    photos = sample_photos.source_photos()
    files = {
        "portrait 512x512 (1 face)": photos["Eileen Collins"],
        "group 1027x360 (3 faces)": sample_photos.group_photo(photos),
        "huge 4096x4096 (1 face)": np.asarray(
            Image.fromarray(photos["Eileen Collins"]).resize((4096, 4096), Image.BICUBIC)
        ),
    }
    paths = {}
    for i, (name, image) in enumerate(files.items()):
        paths[name] = os.path.join(tmp, f"photo{i}.png")
        Image.fromarray(image).save(paths[name])

    t = time.perf_counter()
    recognizer = Recognizer(args.model)
    print(
        f"model {recognizer.model.name}: {recognizer.model.image_size}px crops, "
        f"D={recognizer.model.embedding_size}, loaded in {time.perf_counter() - t:.1f} s"
    )
    print(describe())
    for rows in sizes:
        t = time.perf_counter()
        gallery = build_gallery(
            os.path.join(tmp, f"g{rows}.gallery"), rows, recognizer.model.model_info()
        )
        print(
            f"\ngallery: {rows:,} rows ({rows // 5:,} identities) enrolled in "
            f"{time.perf_counter() - t:.1f} s"
        )
        header = f"{'photo':28s} {'faces':>5s} " + " ".join(f"{s:>14s}" for s in STAGES)
        print(header + f" {'total':>14s}   (ms, median wall / cpu)")
        for name, path in paths.items():
            time_stages(recognizer, path, gallery)  # warm-up: traces, caches, gallery load
            runs = []
            for _ in range(args.repeats):
                stages, faces = time_stages(recognizer, path, gallery)
                runs.append(stages)
            cells = []
            total_w = total_c = 0.0
            for stage in STAGES:
                w = statistics.median(r[stage][0] for r in runs) * 1000
                c = statistics.median(r[stage][1] for r in runs) * 1000
                total_w, total_c = total_w + w, total_c + c
                cells.append(f"{w:7.1f}/{c:6.1f}")
            print(
                f"{name:28s} {faces:5d} "
                + " ".join(f"{c:>14s}" for c in cells)
                + f" {total_w:7.1f}/{total_c:6.1f}"
            )
        gallery.close()
    print("\n" + describe())


if __name__ == "__main__":
    main()
