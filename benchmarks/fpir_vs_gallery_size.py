"""How the open-set false-positive identification rate grows with the gallery size.

    python benchmarks/fpir_vs_gallery_size.py            # pretrained dlib_resnet_v1
    python benchmarks/fpir_vs_gallery_size.py --identities 100 --repeats 3   # quicker

Faces: synthetic held-out identities (`tfface.data.synthetic.heldout_images`, never trained
on), rendered at the model's crop size and embedded by the model as aligned crops. Half the
identities form the pool of people that can be enrolled (image 0 is the template, the
others are mated probes); every image of the other half is a stranger. For each gallery
size N, `--repeats` random draws of N enrolled people:

- FPIR at a fixed threshold t1: the one at which a gallery of ONE person falsely accepts
  `--fpir` of the strangers (the 1:1 FAR threshold); printed beside 1 - (1 - FAR)^N, what
  N independent chances of a false match give (~N x FAR while small);
- the threshold that keeps FPIR <= `--fpir` for that N (`tfface calibrate --fpir` fits the
  same), and the TPIR of the mated probes at it (rank 1 and above the threshold).

Figures are means over the repeats. Synthetic faces are not real people: the absolute
similarities are this model's on these faces; the growth with N is the point.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402

from tfface.eval import identification  # noqa: E402


def embed_synthetic(model_name, identities, images, seed):
    from tfface.data.synthetic.source import heldout_images
    from tfface.recognition import Recognizer

    recognizer = Recognizer(model_name)
    crops, labels = heldout_images(
        identities, images, image_size=recognizer.model.image_size, seed=seed
    )
    batches = [recognizer.embed(crops[i : i + 64]) for i in range(0, len(crops), 64)]
    return np.concatenate(batches), labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dlib_resnet_v1")
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--images", type=int, default=4, help="images per identity")
    parser.add_argument("--sizes", default="1,3,10,30,100", help="gallery sizes N")
    parser.add_argument("--fpir", type=float, default=0.01, help="target rate")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    pool = args.identities // 2
    if max(sizes) > pool:
        parser.error(f"--sizes up to {max(sizes)} need --identities >= {2 * max(sizes)}")
    print(describe())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  command: python {' '.join(sys.argv)}")
    start = time.perf_counter()
    x, labels = embed_synthetic(args.model, args.identities, args.images, args.seed)
    print(f"embedded {len(x)} synthetic faces in {time.perf_counter() - start:.1f} s")
    first = np.arange(len(x)) % args.images == 0
    enrolled = labels < pool
    templates, template_ids = x[first & enrolled], labels[first & enrolled]
    mated, mated_ids = x[~first & enrolled], labels[~first & enrolled]
    strangers = x[~enrolled]
    # [strangers, pool] and [mated, pool] cosines against every template (one per person).
    s_scores = strangers @ templates.T
    m_scores = mated @ templates.T
    # t1: the 1:1 threshold, over every (stranger, one-person gallery) attempt.
    t1, far = identification.calibrate_threshold(s_scores.ravel(), args.fpir)
    print(
        f"{len(strangers)} stranger faces, pool of {pool} people; t1 = {t1:.4f} "
        f"(1:1 FAR {far:.4f} over {s_scores.size} attempts)"
    )
    rng = np.random.default_rng(args.seed)
    header = (
        f"{'N':>5}  {'FPIR at t1':>10}  {'1-(1-FAR)^N':>11}  "
        f"{'threshold @ FPIR ' + format(args.fpir, 'g'):>20}  {'TPIR there':>10}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        fpir_t1, thresholds, tpirs = [], [], []
        for _ in range(args.repeats):
            people = rng.choice(pool, size=n, replace=False)
            top = s_scores[:, people].max(axis=1).astype(np.float64)
            fpir_t1.append(np.mean(top >= t1))
            t, _ = identification.calibrate_threshold(top, args.fpir)
            thresholds.append(t)
            probes = np.isin(mated_ids, template_ids[people])
            scores = m_scores[probes][:, people].astype(np.float64)
            column = {pid: j for j, pid in enumerate(template_ids[people].tolist())}
            own = np.array([column[i] for i in mated_ids[probes].tolist()])
            true = scores[np.arange(len(scores)), own]
            rank1 = (scores >= true[:, None]).sum(axis=1) == 1
            tpirs.append(np.mean(rank1 & (true >= t)))
        print(
            f"{n:>5}  {np.mean(fpir_t1):>10.4f}  {1 - (1 - far) ** n:>11.4f}  "
            f"{np.mean(thresholds):>20.4f}  {np.mean(tpirs):>10.3f}"
        )
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
