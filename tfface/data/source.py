"""The one interface every data source implements (folder, tfrecord, rec, tfds, synthetic).

A `Source` is an indexable set of identity-labelled face images:
- `labels`: int64 numpy array [num_examples], label of example i (0 … num_identities-1);
- `identities`: list of identity names, indexed by label;
- `report`: the `BadInputReport` of everything skipped so far (never silent);
- `dataset(...)`: a sequential `tf.data.Dataset` of (uint8 image [H, W, 3], int64 label);
- `images_for_indices(indices_ds)`: maps a dataset of int64 index batches [N] to
  (uint8 images [N, H, W, 3], int64 labels [N]); this is what the P×K sampler feeds.

Sources are constructed by `tfface.data.load(spec)`, where spec is written the same way
everywhere: `synthetic`, `synthetic:N` (N identities), `folder:PATH`, `tfrecord:GLOB`,
`rec:PATH` (PATH.rec + PATH.idx) or `tfds:NAME`.
"""

import abc
import dataclasses

import numpy as np


@dataclasses.dataclass
class Manifest:
    """Identities and per-identity image counts of a source."""

    identities: list
    counts: np.ndarray  # int64 [num_identities]

    @property
    def num_identities(self):
        return len(self.identities)

    @property
    def num_images(self):
        return int(np.sum(self.counts))


class Source(abc.ABC):
    """Abstract identity-labelled image source; see the module docstring."""

    labels: np.ndarray
    identities: list

    @property
    def manifest(self):
        counts = np.bincount(self.labels, minlength=len(self.identities)).astype(np.int64)
        return Manifest(list(self.identities), counts)

    @property
    def num_examples(self):
        return int(self.labels.shape[0])

    @abc.abstractmethod
    def dataset(self, shuffle=False, seed=None):
        """Sequential tf.data.Dataset of (uint8 image [H, W, 3], int64 label)."""

    @abc.abstractmethod
    def images_for_indices(self, indices_ds):
        """Maps a dataset of int64 index batches [N] to (uint8 [N, H, W, 3], int64 [N])."""
