"""Does a model's embedding_norm quality score fall when the face gets worse?

    python benchmarks/quality_norm.py MODEL [--identities=100] [--images=4]

MODEL: a SavedModel or `.keras` file that provides the quality score (trained with
`--loss=adaface` or `--loss=magface`). Held-out synthetic faces (identities disjoint from
training, `tfface.data.synthetic.heldout_images` at the model's crop size) are embedded as
rendered and after three degradations: Gaussian blur (σ = 2 px), additive Gaussian noise
(σ = 40 grey levels) and darkening (×0.25). Printed per condition: the mean and standard
deviation of ‖x‖, and the fraction of faces whose degraded copy scores lower than the
clean one (0.5 = the score does not see the degradation).
"""

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def degrade(images, kind, rng):
    from PIL import Image
    from PIL import ImageFilter

    x = images.astype(np.float32)
    if kind == "blur":
        return np.stack(
            [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(2))) for im in images]
        ).astype(np.float32)
    if kind == "noise":
        return np.clip(x + rng.normal(0.0, 40.0, x.shape), 0, 255)
    if kind == "dark":
        return x * 0.25
    return x


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tfface.data.synthetic.source import heldout_images
    from tfface.recognition import FaceModel

    model = FaceModel(args.model)
    if "embedding_norm" not in model.quality_scores:
        parser.error(f"{args.model} provides no embedding_norm quality score")
    images, _ = heldout_images(args.identities, args.images, model.image_size, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    norms = {}
    for kind in ("clean", "blur", "noise", "dark"):
        _, scores = model.embed_with_quality(degrade(images, kind, rng))
        norms[kind] = scores["embedding_norm"]
    print(f"{args.model}: {len(images)} held-out synthetic faces ({args.identities} identities)")
    print("| condition | mean ‖x‖ | std | fraction scoring below clean |")
    print("|---|---|---|---|")
    for kind, values in norms.items():
        below = "–" if kind == "clean" else f"{np.mean(values < norms['clean']):.3f}"
        print(f"| {kind} | {values.mean():.3f} | {values.std():.3f} | {below} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
