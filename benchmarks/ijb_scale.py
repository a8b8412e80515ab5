"""IJB 1:1 evaluation at the benchmark's scale, without the images: how long the metadata
parse, template pooling, pair scoring and the ROC / TAR@FAR take (everything after the
embeddings), and the per-core rate of decoding and aligning loose crops.

The defaults are IJB-B's sizes as insightface's `ijb_evals.py` prints them for the release
(227,630 images, 12,115 templates, 8,010,270 pairs of which 10,270 genuine; 1,845
distinct first templates). Metadata is random but shaped like the release (media of 1–6
images; pairs as described in `write_release`), written in the release's format to a
temporary folder and read back with `load_ijb_protocol`; embeddings are random float32
[N, --dim] (raw and flipped).

    PYTHONPATH=. python benchmarks/ijb_scale.py [--dim 512] [--crops 256]

`--crops N` also times `embed_loose_crops` with a trivial model on N synthetic 160×160
loose crops (decode + five-point alignment to 112×112), per worker count. Numbers are
only comparable on a quiet machine; the load at run time is printed.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import machine  # noqa: E402
from tfface.eval import ijb  # noqa: E402
from tfface.eval import ijb_protocol  # noqa: E402
from tfface.eval import template_pooling  # noqa: E402
from tfface.eval import verification  # noqa: E402


def write_release(directory, images, templates, pairs, genuine, subjects, seed):
    """Random metadata in the release's format; returns nothing (read it back)."""
    rng = np.random.default_rng(seed)
    meta = os.path.join(directory, "IJBB", "meta")
    os.makedirs(meta)
    os.makedirs(os.path.join(directory, "IJBB", "loose_crop"))
    subject_of_template = rng.integers(0, subjects, templates)
    template_of_image = np.sort(rng.integers(0, templates, images))
    media = np.zeros(images, np.int64)
    next_media, k = 0, 0
    while k < images:  # media of 1–6 consecutive images of one template
        run = int(rng.integers(1, 7))
        stop = min(k + run, images)
        same = template_of_image[k:stop] == template_of_image[k]
        stop = k + int(np.argmin(same)) if not same.all() else stop
        media[k:stop] = next_media
        next_media += 1
        k = stop
    with open(os.path.join(meta, "ijbb_face_tid_mid.txt"), "w") as f:
        f.writelines(
            f"{i + 1}.jpg {t + 1} {m + 1}\n"
            for i, (t, m) in enumerate(zip(template_of_image, media, strict=True))
        )
    points = rng.uniform(20, 100, (images, 10))
    scores = rng.uniform(0.1, 1.0, images)
    with open(os.path.join(meta, "ijbb_name_5pts_score.txt"), "w") as f:
        for i in range(images):
            coords = " ".join(f"{v:.3f}" for v in points[i])
            f.write(f"{i + 1}.jpg {coords} {scores[i]:.3f}\n")
    # Modelled on the release's pair counts: each subject's first template is on the left
    # (IJB-B: 1,845 distinct left templates, 10,270 right ones, disjoint); every other
    # template is paired once with its subject's left one (10,270 genuine pairs) and the
    # impostor pairs join left and right templates of different subjects.
    left = np.arange(subjects)
    subject_of_template[:subjects] = left
    right = np.arange(subjects, templates)
    gen = np.column_stack([subject_of_template[right], right])[:genuine]
    draw = int((pairs - len(gen)) * 1.1)
    imp = np.column_stack(
        [rng.integers(0, subjects, draw), rng.integers(subjects, templates, draw)]
    )
    imp = imp[subject_of_template[imp[:, 0]] != subject_of_template[imp[:, 1]]][: pairs - len(gen)]
    table = np.concatenate(
        [
            np.column_stack([gen, np.ones(len(gen), int)]),
            np.column_stack([imp, np.zeros(len(imp), int)]),
        ]
    )
    table[:, :2] += 1
    table = table[rng.permutation(len(table))]
    with open(os.path.join(meta, "ijbb_template_pair_label.txt"), "w") as f:
        for start in range(0, len(table), 1_000_000):
            chunk = table[start : start + 1_000_000]
            f.write("\n".join(f"{a} {b} {c}" for a, b, c in chunk.tolist()) + "\n")


def time_alignment(num_crops, workers_list, seed=0):
    from PIL import Image

    from tfface.align.align_face import warp_affine
    from tfface.data.synthetic import SyntheticFaces

    rng = np.random.default_rng(seed)
    faces, points = SyntheticFaces(112, seed=seed).render(np.arange(num_crops), np.zeros(num_crops))
    directory = tempfile.mkdtemp()
    paths, moved = [], []
    for i in range(num_crops):
        angle, scale = np.radians(rng.uniform(-20, 20)), rng.uniform(1.0, 1.3)
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        m = np.array([[c, -s, 80 - 55.5 * (c - s)], [s, c, 80 - 55.5 * (s + c)], [0, 0, 1]])
        path = os.path.join(directory, f"{i}.jpg")
        Image.fromarray(warp_affine(faces[i], m, 160)).save(path, quality=95)
        paths.append(path)
        moved.append(points[i] @ m[:2, :2].T + m[:2, 2])
    moved = np.array(moved, np.float32)
    rates = {}
    for workers in workers_list:
        start = time.perf_counter()
        ijb.embed_loose_crops(
            lambda x: x.mean((1, 2)), paths, moved, 112, batch_size=64, workers=workers
        )
        rates[workers] = num_crops / (time.perf_counter() - start)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=227_630)
    parser.add_argument("--templates", type=int, default=12_115)
    parser.add_argument("--pairs", type=int, default=8_010_270)
    parser.add_argument("--genuine", type=int, default=10_270, help="<= templates − subjects")
    parser.add_argument("--subjects", type=int, default=1_845)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--crops", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine.describe())
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        write_release(
            directory,
            args.images,
            args.templates,
            args.pairs,
            args.genuine,
            args.subjects,
            args.seed,
        )
        print(f"wrote the metadata in {time.perf_counter() - start:.1f} s")
        t = {}
        start = time.perf_counter()
        protocol = ijb_protocol.load_ijb_protocol(directory, "IJBB")
        t["parse and check the three meta files"] = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    n = protocol.templates.size
    emb = rng.normal(size=(n, args.dim)).astype(np.float32)
    flips = (emb + 0.5 * rng.normal(size=(n, args.dim))).astype(np.float32)
    start = time.perf_counter()
    pooled = template_pooling.pool_templates(
        emb, protocol.templates, protocol.medias, flips, protocol.faceness
    )
    t[f"pool {n} images into {pooled.template_ids.size} templates (D={args.dim})"] = (
        time.perf_counter() - start
    )
    start = time.perf_counter()
    scores = pooled.scores(protocol.template1, protocol.template2)
    t[f"score {scores.size} template pairs"] = time.perf_counter() - start
    start = time.perf_counter()
    roc = verification.roc_curve(scores, protocol.labels)
    verification.equal_error_rate(scores, protocol.labels, roc=roc)
    for rule in verification.TAR_FAR_RULES:
        verification.tar_at_far(scores, protocol.labels, rule=rule, roc=roc)
    t["ROC, EER, TAR@FAR (both rules)"] = time.perf_counter() - start
    start = time.perf_counter()
    result, _ = ijb.evaluate_ijb(protocol, emb, flips)
    t["evaluate_ijb (pool + score + metrics)"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        ijb.write_ijb_report(result, os.path.join(out, "r.json"), os.path.join(out, "r.png"))
        t["write JSON + ROC PNG"] = time.perf_counter() - start
    for what, seconds in t.items():
        print(f"| {what} | {seconds:.2f} s |")
    print(f"genuine {protocol.num_genuine}, impostor {protocol.num_impostor}")
    if args.crops:
        for workers, rate in time_alignment(args.crops, (1, 2)).items():
            print(
                f"| decode + align {args.crops} 160×160 crops, {workers} worker(s) | "
                f"{rate:.0f} crops/s |"
            )


if __name__ == "__main__":
    main()
