"""Is the synthetic face data hard for raw pixels yet learnable? (LFW-protocol check.)

Builds held-out verification pairs from `tfface.data.synthetic` (identities
`HELDOUT_ID_OFFSET + i`, never seen in training): 10 folds × (300 same + 300 different
pairs), in LFW file order. Each fold's threshold is the one that maximises accuracy on the
other nine folds, applied to the held-out fold; mean ± std over folds is reported.

1. Raw pixels: cosine similarity of the flattened uint8 images (target: ≤ 70%).
2. `--train_check`: trains a tiny Keras CNN with NormFace-style cosine logits (s·cos θ,
   softmax cross-entropy) on training identities 0 … N-1 for `--train_cpu_seconds` of CPU,
   then scores cosine similarity of its embeddings on the same pairs (target: ≥ 90%).

Usage:
    python benchmarks/synthetic_difficulty.py                       # raw pixels, 112 px
    python benchmarks/synthetic_difficulty.py --image_size=64 --train_check
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfface.data.synthetic import HELDOUT_ID_OFFSET  # noqa: E402
from tfface.data.synthetic import SyntheticFaces  # noqa: E402

NUM_FOLDS = 10
PAIRS_PER_SIDE = 300


def make_pairs(image_size, seed, nuisance=1.0):
    """LFW-style held-out pairs: uint8 images [2, 6000, S, S, 3] and bool issame [6000]."""
    faces = SyntheticFaces(image_size=image_size, seed=seed, nuisance=nuisance)
    rng = np.random.default_rng(seed + 7)
    n_same = NUM_FOLDS * PAIRS_PER_SIDE
    # Disjoint held-out identities for every pair, as in LFW (a person appears in few pairs).
    same_ids = np.arange(n_same)
    diff_ids = n_same + rng.permutation(2 * n_same).reshape(n_same, 2)
    ids_a, ids_b, var_a, var_b, issame = [], [], [], [], []
    for fold in range(NUM_FOLDS):
        sl = slice(fold * PAIRS_PER_SIDE, (fold + 1) * PAIRS_PER_SIDE)
        ids_a += [same_ids[sl], diff_ids[sl, 0]]
        ids_b += [same_ids[sl], diff_ids[sl, 1]]
        var_a += [np.zeros(PAIRS_PER_SIDE, np.int64)] * 2
        var_b += [np.ones(PAIRS_PER_SIDE, np.int64)] * 2
        issame += [np.ones(PAIRS_PER_SIDE, bool), np.zeros(PAIRS_PER_SIDE, bool)]
    ids = np.stack([np.concatenate(ids_a), np.concatenate(ids_b)]) + HELDOUT_ID_OFFSET
    var = np.stack([np.concatenate(var_a), np.concatenate(var_b)])
    images = np.stack([faces.render(ids[k], var[k])[0] for k in range(2)])
    return images, np.concatenate(issame)


def cached(args, name, fn):
    """fn() → (a, b), stored under --cache_dir keyed by size, seed and nuisance."""
    if not args.cache_dir:
        return fn()
    path = os.path.join(
        args.cache_dir, f"{name}_s{args.image_size}_seed{args.seed}_n{args.nuisance}.npz"
    )
    if os.path.exists(path):
        data = np.load(path)
        return data["a"], data["b"]
    a, b = fn()
    os.makedirs(args.cache_dir, exist_ok=True)
    np.savez(path, a=a, b=b)
    return a, b


def lfw_accuracy(similarity, issame):
    """10-fold accuracy: threshold chosen on nine folds, applied to the tenth."""
    fold = np.arange(similarity.shape[0]) // (2 * PAIRS_PER_SIDE)
    candidates = np.unique(similarity)
    accs = []
    for k in range(NUM_FOLDS):
        train = fold != k
        pred = similarity[train][None, :] >= candidates[:, None]
        train_acc = (pred == issame[train][None, :]).mean(1)
        threshold = candidates[np.argmax(train_acc)]
        accs.append(np.mean((similarity[~train] >= threshold) == issame[~train]))
    return float(np.mean(accs)), float(np.std(accs))


def cosine(a, b):
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    num = np.sum(a * b, 1)
    return num / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def train_check(args, pairs, issame):
    import keras
    import tensorflow as tf

    tf.random.set_seed(args.seed)
    keras.utils.set_random_seed(args.seed)
    faces = SyntheticFaces(image_size=args.image_size, seed=args.seed)
    n_id, k_img = args.train_identities, args.train_images_per_identity
    t0 = time.perf_counter()
    labels = np.repeat(np.arange(n_id), k_img)
    var = np.tile(np.arange(k_img), n_id) + 1000  # never the variation seeds of the pairs
    x, _ = cached(
        args,
        f"train_{n_id}x{k_img}",
        lambda: (
            np.concatenate(
                [
                    faces.render(labels[i : i + 2048], var[i : i + 2048])[0]
                    for i in range(0, len(labels), 2048)
                ]
            ),
            labels,
        ),
    )
    render_s = time.perf_counter() - t0

    s = args.image_size
    inputs = keras.Input((s, s, 3))
    h = keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    for filters in [int(w) for w in args.widths.split(",")]:
        h = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dropout(0.2)(h)
    emb = keras.layers.Dense(128)(h)
    embedder = keras.Model(inputs, emb)

    class CosineLogits(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], n_id), initializer="glorot_normal")

        def call(self, e):
            e = keras.ops.normalize(e, axis=-1)
            w = keras.ops.normalize(self.w, axis=0)
            return args.scale * keras.ops.matmul(e, w)

    logits = CosineLogits()(emb)
    model = keras.Model(inputs, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    def aug(img, lab):
        img = tf.image.random_flip_left_right(img, seed=args.seed)
        return tf.cast(img, tf.float32), lab

    ds = (
        tf.data.Dataset.from_tensor_slices((x, labels))
        .shuffle(len(labels), seed=args.seed)
        .map(aug)
        .batch(args.batch_size)
        .repeat()
        .prefetch(2)
    )

    class Budget(keras.callbacks.Callback):
        # CPU seconds of this process (all threads), not wall time: the budget then means
        # the same amount of training on a quiet or a shared machine.
        def on_train_begin(self, logs=None):
            self.start = time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            if time.process_time() - self.start > args.train_cpu_seconds:
                self.model.stop_training = True

    t0, c0 = time.perf_counter(), time.process_time()
    hist = model.fit(ds, steps_per_epoch=100, epochs=10_000, callbacks=[Budget()], verbose=2)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = sum(1 for _ in hist.history["loss"]) * 100

    def embed(imgs):
        e = embedder.predict(imgs.astype(np.float32), batch_size=256, verbose=0)
        ef = embedder.predict(imgs[:, :, ::-1].astype(np.float32), batch_size=256, verbose=0)
        return e + ef

    sim = cosine(embed(pairs[0]), embed(pairs[1]))
    mean, std = lfw_accuracy(sim, issame)
    return {
        "train_identities": n_id,
        "train_images": int(len(labels)),
        "render_seconds": round(render_s, 1),
        "train_wall_seconds": round(train_s, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "approx_steps": steps,
        "final_train_accuracy": round(float(hist.history["accuracy"][-1]), 4),
        "cnn_lfw_accuracy": round(mean, 4),
        "cnn_lfw_std": round(std, 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nuisance", type=float, default=1.0)
    parser.add_argument("--train_check", action="store_true")
    parser.add_argument(
        "--train_cpu_seconds",
        type=float,
        default=360,
        help="training budget in process CPU seconds (360 ≈ 3 min on 2 quiet cores)",
    )
    parser.add_argument("--cache_dir", default=None, help="reuse rendered arrays across runs")
    parser.add_argument("--train_identities", type=int, default=2000)
    parser.add_argument("--train_images_per_identity", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--widths", default="32,64,96,128", help="filters of the 4 stages")
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--scale", type=float, default=16.0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    pairs, issame = cached(
        args, "pairs", lambda: make_pairs(args.image_size, args.seed, args.nuisance)
    )
    result = {"image_size": args.image_size, "seed": args.seed, "nuisance": args.nuisance}
    result["pairs_render_seconds"] = round(time.perf_counter() - t0, 1)
    mean, std = lfw_accuracy(cosine(pairs[0], pairs[1]), issame)
    result["raw_pixel_lfw_accuracy"] = round(mean, 4)
    result["raw_pixel_lfw_std"] = round(std, 4)
    centred = [p.reshape(p.shape[0], -1).astype(np.float64) for p in pairs]
    centred = [c - c.mean(1, keepdims=True) for c in centred]
    result["raw_pixel_centred_lfw_accuracy"] = round(lfw_accuracy(cosine(*centred), issame)[0], 4)
    print(json.dumps(result), flush=True)
    if args.train_check:
        result.update(train_check(args, pairs, issame))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
