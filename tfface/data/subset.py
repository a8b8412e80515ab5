"""`SubsetSource`: some examples of another `Source`, relabelled 0 … k-1 (a train split)."""

import numpy as np
import tensorflow as tf

from tfface.data.source import Source


class SubsetSource(Source):
    """The examples `indices` of `parent`, with their identities relabelled contiguously.

    Args:
        parent: a `tfface.data` `Source`.
        indices: int example indices of `parent` to keep (sorted and deduplicated).
        name: a description for logs (default: "<parent name> (subset)").

    The `report` is the parent's (what its scan skipped). Reading goes through
    `parent.images_for_indices`, so decoding, resizing and bad-input handling are the
    parent's.
    """

    def __init__(self, parent, indices, name=None):
        self.parent = parent
        self.indices = np.unique(np.asarray(indices, np.int64))
        if self.indices.size and (self.indices[0] < 0 or self.indices[-1] >= parent.num_examples):
            raise ValueError(
                f"`indices` must lie in [0, {parent.num_examples}). Received: "
                f"[{self.indices[0]}, {self.indices[-1]}]"
            )
        parent_labels = np.asarray(parent.labels, np.int64)[self.indices]
        kept, self.labels = np.unique(parent_labels, return_inverse=True)
        self.labels = self.labels.astype(np.int64)
        self.parent_labels = kept.astype(np.int64)  # subset label → parent label
        self.identities = [parent.identities[k] for k in kept]
        self.report = getattr(parent, "report", None)
        self.name = name or f"{getattr(parent, 'name', type(parent).__name__)} (subset)"

    def __repr__(self):
        return (
            f"SubsetSource({self.name!r}, examples={self.num_examples}, "
            f"identities={len(self.identities)})"
        )

    def images_for_indices(self, indices_ds):
        to_parent = tf.constant(self.indices)
        labels = tf.constant(self.labels)

        def parent_indices(batch):
            return tf.gather(to_parent, tf.cast(batch, tf.int64))

        def relabel(batch, element):
            images, _ = element
            return images, tf.gather(labels, tf.cast(batch, tf.int64))

        batches = indices_ds.map(lambda b: tf.cast(b, tf.int64))
        images = self.parent.images_for_indices(batches.map(parent_indices))
        return tf.data.Dataset.zip((batches, images)).map(relabel)

    def dataset(self, shuffle=False, seed=None):
        if shuffle and seed is None:
            raise ValueError(f"{self.name}: `seed` is required when shuffle=True.")
        ds = tf.data.Dataset.range(self.num_examples)
        if shuffle:
            ds = ds.shuffle(self.num_examples, seed=seed, reshuffle_each_iteration=True)
        return self.images_for_indices(ds.batch(64)).unbatch()
