"""The `synthetic` data source: `tfface.data.load("synthetic:N")`, train.py's default data.

`SyntheticSource` is the `Source` of N training (or held-out) identities × K images each,
rendered on demand by `SyntheticFaces`; `heldout_images` renders a held-out evaluation set
at once.

Splits. Training identities are ids `0 … num_identities-1`. Held-out identities are ids
`HELDOUT_ID_OFFSET + i` (10**6 + i) rendered with the same seed: their parameters come from
the same distribution but never coincide with a training id, so verification pairs built
from them measure generalisation to unseen people.

Process settings. The first render in a process (the first batch a `SyntheticSource`
dataset yields, or `heldout_images`) limits NumPy's BLAS to one thread and sets glibc's
malloc thresholds, for the whole process (`process_tuning.py`).
"""

import numpy as np
import tensorflow as tf

from tfface.data.source import Source
from tfface.data.synthetic.renderer import SyntheticFaces
from tfface.data.synthetic.renderer import _is_int

HELDOUT_ID_OFFSET = 10**6


def heldout_images(num_identities, images_per_identity, image_size=112, seed=0, nuisance=1.0):
    """Held-out evaluation images: ids `HELDOUT_ID_OFFSET + i`, i < num_identities.

    Returns:
        (uint8 images [num_identities * images_per_identity, S, S, 3],
         int64 labels [same] in 0 … num_identities-1, identity-major order).
    """
    _check_positive("num_identities", num_identities)
    _check_positive("images_per_identity", images_per_identity)
    faces = SyntheticFaces(image_size=image_size, seed=seed, nuisance=nuisance)
    labels = np.repeat(np.arange(num_identities, dtype=np.int64), images_per_identity)
    var = np.tile(np.arange(images_per_identity, dtype=np.int64), num_identities)
    images = []
    for start in range(0, labels.shape[0], 1024):
        sl = slice(start, start + 1024)
        images.append(faces.render(labels[sl] + HELDOUT_ID_OFFSET, var[sl])[0])
    return np.concatenate(images, 0), labels


def _check_positive(name, value):
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


class SyntheticSource(Source):
    """A `Source` of synthetic faces: `num_identities` × `images_per_identity` examples.

    Example `i` is image `i % images_per_identity` of identity `i // images_per_identity`
    (label = identity index). Images are rendered on demand, a whole index batch at a
    time, so any P×K batch of a 100k-identity source costs only its own images.

    Args:
        num_identities: int >= 1.
        images_per_identity: int >= 1.
        image_size: int, image height and width (default 112).
        seed: int, the synthetic world seed (identities are reproducible per seed).
        split: "train" (identity ids 0 … n-1) or "heldout" (ids `HELDOUT_ID_OFFSET + i`,
            disjoint from every training id, for verification pairs).
        nuisance: float, see `SyntheticFaces`.
        **kwargs: `tfface.data.load` options that do not apply to rendered images
            (`max_pixels`, `on_bad_image`) are accepted and ignored; anything else is an
            error.

    Example:

    >>> source = SyntheticSource(num_identities=100, images_per_identity=10)
    >>> source.num_examples, source.identities[:2]
    (1000, ['synthetic_000000', 'synthetic_000001'])
    """

    _IGNORED_KWARGS = ("max_pixels", "on_bad_image", "check_images")

    def __init__(
        self,
        num_identities=10_000,
        images_per_identity=20,
        image_size=112,
        seed=0,
        split="train",
        nuisance=1.0,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - set(self._IGNORED_KWARGS))
        if unknown:
            raise ValueError(
                f"SyntheticSource got unexpected arguments {unknown}. Accepted: "
                "num_identities, images_per_identity, image_size, seed, split, nuisance."
            )
        _check_positive("num_identities", num_identities)
        _check_positive("images_per_identity", images_per_identity)
        if split not in ("train", "heldout"):
            raise ValueError(f"`split` must be 'train' or 'heldout'. Received: split={split!r}")
        if split == "train" and num_identities > HELDOUT_ID_OFFSET:
            raise ValueError(
                f"`num_identities` must be <= {HELDOUT_ID_OFFSET} for split='train' (ids from "
                f"{HELDOUT_ID_OFFSET} on are held out). Received: num_identities={num_identities}"
            )
        self.num_identities = int(num_identities)
        self.images_per_identity = int(images_per_identity)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.split = split
        self.nuisance = float(nuisance)
        self.faces = SyntheticFaces(image_size=image_size, seed=seed, nuisance=nuisance)
        self.labels = np.repeat(
            np.arange(self.num_identities, dtype=np.int64), self.images_per_identity
        )
        prefix = "synthetic" if split == "train" else "synthetic_heldout"
        self.identities = [f"{prefix}_{i:06d}" for i in range(self.num_identities)]
        self.report = _empty_report(f"synthetic:{self.num_identities}")
        self._id_offset = 0 if split == "train" else HELDOUT_ID_OFFSET

    def __repr__(self):
        return (
            f"SyntheticSource(num_identities={self.num_identities}, "
            f"images_per_identity={self.images_per_identity}, image_size={self.image_size}, "
            f"seed={self.seed}, split={self.split!r})"
        )

    def render_indices(self, indices):
        """NumPy: example indices [N] → (uint8 images [N, S, S, 3], int64 labels [N])."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_examples):
            raise ValueError(
                f"Example indices must be in [0, {self.num_examples}). Received: "
                f"min={indices.min()}, max={indices.max()}"
            )
        labels = indices // self.images_per_identity
        images, _ = self.faces.render(labels + self._id_offset, indices % self.images_per_identity)
        return images, labels

    def _tf_render(self, indices):
        s = self.image_size
        images, labels = tf.numpy_function(
            self.render_indices, [indices], [tf.uint8, tf.int64], stateful=False
        )
        images.set_shape([indices.shape[0], s, s, 3])
        labels.set_shape([indices.shape[0]])
        return images, labels

    def images_for_indices(self, indices_ds):
        return indices_ds.map(
            lambda idx: self._tf_render(tf.cast(idx, tf.int64)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def dataset(self, shuffle=False, seed=None):
        if shuffle and seed is None:
            raise ValueError("SyntheticSource.dataset: `seed` is required when shuffle=True.")
        ds = tf.data.Dataset.range(self.num_examples)
        if shuffle:
            ds = ds.shuffle(self.num_examples, seed=seed, reshuffle_each_iteration=True)
        return self.images_for_indices(ds.batch(256)).unbatch()


def _empty_report(name):
    from tfface.data.bad_input import BadInputReport

    return BadInputReport(name)
