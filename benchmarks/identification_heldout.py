"""Open-set 1:N metrics on the synthetic held-out identities: raw pixels vs a saved model.

    python benchmarks/identification_heldout.py                                 # raw pixels
    python benchmarks/identification_heldout.py --model=runs/x/embedding_model.keras

The held-out set is train.py's (100 identities never trained on, 10 images each, seed 0):
half the identities are enrolled with one image, their other 9 images are mated probes,
all images of the other half are non-mated probes (`tfface.eval.identification`).
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
from tfface.eval import pairs as pairs_lib  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .keras embedding model")
    parser.add_argument("--image_size", type=int, default=None, help="default: the model's")
    parser.add_argument("--gallery_per_identity", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(describe())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  command: python {' '.join(sys.argv)}")
    model = None
    size = args.image_size or 112
    if args.model:
        import keras

        import tfface  # noqa: F401  (registers tfface layers for loading)

        model = keras.saving.load_model(args.model)
        size = args.image_size or int(model.input_shape[1])
    pair_set = pairs_lib.synthetic_pairs(size, seed=args.seed)
    rows = {"raw pixels": pairs_lib.raw_pixel_embeddings(pair_set.images)}
    if model is not None:
        from tfface.eval.embed import embed_array

        rows[args.model] = embed_array(
            lambda x: np.asarray(model(x, training=False)), pair_set.images
        )
    for name, emb in rows.items():
        r = identification.evaluate_identification(
            emb,
            pair_set.labels,
            gallery_per_identity=args.gallery_per_identity,
            seed=args.seed,
        )
        print(identification.format_identification(r, name))


if __name__ == "__main__":
    main()
