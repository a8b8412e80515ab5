"""A SavedModel that answers 1:N by itself: the embedding model plus a small gallery.

`export_gallery_model` writes the embedding signatures of `export_saved_model`
(`serving_default`, `embed_jpeg`, and `verify` with a threshold) and two more:

- `identify`: `embeddings` float32 [B, D] (probe embeddings, e.g. from `serving_default`)
  → `labels` string [B, k], `scores` float32 [B, k] (cosine, best first), `identity`
  string [B] (the best label, or "unknown" below the open-set threshold) and `known` bool
  [B].
- `identify_jpeg`: `images` string [B] (encoded aligned crops, decoded and resized to S in
  the graph) → the same outputs.

Search is exact and in the graph: one [B, N] matrix product with the gallery, a per-identity
max (or mean) over its rows, and `top_k` over identities. The gallery is stored as
non-trainable variables (rows, row → identity index, identity names), so the SavedModel
loads in TF Serving's session loader and `tf.saved_model.load` alike and stays under the
2 GB graph-proto limit. Memory per request is B × N floats for the similarities; the
gallery itself is N × D × 4 bytes. See BENCHMARKS.md ("Serving a gallery in the
SavedModel") for where this stops being sensible; past it, serve `serving_default` and
search a `tfface.gallery.Gallery` next to the server.

Detection and alignment stay outside the graph: a client (or `tfface.recognition`) finds
and aligns faces and sends crops or their embeddings.
"""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from tfface import model_metadata
from tfface.api_export import tfface_export
from tfface.export import warmup
from tfface.export.saved_model import _check_embeddings
from tfface.export.saved_model import _check_model
from tfface.export.saved_model import _check_name
from tfface.export.saved_model import _check_threshold
from tfface.export.saved_model import _resolve_image_size
from tfface.export.saved_model import _save_and_publish
from tfface.export.saved_model import _ServingModule
from tfface.export.saved_model import _version_dir
from tfface.unit_vectors import ZeroNormError
from tfface.unit_vectors import l2_normalize_rows

IDENTIFY_SIGNATURE = "identify"
IDENTIFY_JPEG_SIGNATURE = "identify_jpeg"
UNKNOWN = "unknown"
GALLERY_METADATA_FILE = "tfface_gallery.json"
_BY = ("max", "mean")


class _GalleryServingModule(_ServingModule):
    def __init__(self, model, image_size, threshold, rows, row_identity, names, k, by, open_set):
        super().__init__(model, image_size, threshold)
        self.gallery_rows = tf.Variable(rows, trainable=False, name="gallery_rows")
        self.gallery_row_identity = tf.Variable(
            row_identity, trainable=False, name="gallery_row_identity"
        )
        self.gallery_names = tf.Variable(names, trainable=False, name="gallery_names")
        self.open_set_threshold = tf.Variable(
            -2.0 if open_set is None else open_set,
            dtype=tf.float32,
            trainable=False,
            name="open_set_threshold",
        )
        num_ids = len(names)
        dim = rows.shape[1]

        def search(embeddings):
            tf.debugging.assert_equal(
                tf.shape(embeddings)[1],
                dim,
                message=f"identify: embeddings must be [B, {dim}] float32",
            )
            probes = tf.math.l2_normalize(embeddings, axis=1)
            # [N, B]: rows first, so the per-identity reduction is a segment op over rows.
            sims = tf.matmul(self.gallery_rows, probes, transpose_b=True)
            reduce = tf.math.unsorted_segment_max if by == "max" else tf.math.unsorted_segment_mean
            per_identity = tf.transpose(reduce(sims, self.gallery_row_identity, num_ids))
            scores, index = tf.math.top_k(per_identity, k=k)
            labels = tf.gather(self.gallery_names, index)
            known = scores[:, 0] >= self.open_set_threshold
            return {
                "labels": labels,
                "scores": scores,
                "identity": tf.where(known, labels[:, 0], tf.constant(UNKNOWN)),
                "known": known,
            }

        @tf.function(input_signature=[tf.TensorSpec([None, dim], tf.float32, name="embeddings")])
        def identify(embeddings):
            return search(embeddings)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def identify_jpeg(images):
            return search(self.embed_jpeg(images)["embeddings"])

        self.identify = identify
        self.identify_jpeg = identify_jpeg

    def signatures(self):
        signatures = super().signatures()
        signatures[IDENTIFY_SIGNATURE] = self.identify.get_concrete_function()
        signatures[IDENTIFY_JPEG_SIGNATURE] = self.identify_jpeg.get_concrete_function()
        return signatures


def gallery_arrays(gallery):
    """(embeddings float32 [N, D], row names [N]) of a `tfface.gallery.Gallery`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gallery.npz")
        gallery.export(path)
        with np.load(path, allow_pickle=False) as data:
            embeddings = data["embeddings"].astype(np.float32)
            names = json.loads(data["manifest"].tobytes().decode())["names"]
    return embeddings, names


def _check_gallery(embeddings, labels, dim):
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[1] != dim or embeddings.shape[0] == 0:
        raise ValueError(
            f"`gallery` embeddings must be a non-empty [N, {dim}] array (the model's "
            f"embedding size). Received shape {embeddings.shape}"
        )
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("`gallery` embeddings must be finite.")
    try:
        unit = l2_normalize_rows(embeddings)
    except ZeroNormError:
        raise ValueError("`gallery` embeddings must not be all-zero rows.") from None
    labels = [str(label) for label in labels]
    if len(labels) != len(embeddings):
        raise ValueError(
            f"`labels` must name every gallery row. Received {len(labels)} labels for "
            f"{len(embeddings)} rows"
        )
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    row_identity = np.array([index[label] for label in labels], np.int32)
    return unit, row_identity, names


@tfface_export("tfface.export.export_gallery_model")
def export_gallery_model(
    model,
    gallery,
    export_dir,
    labels=None,
    name="tfface_gallery",
    version=None,
    k=5,
    by="max",
    threshold=None,
    identify_threshold=None,
    image_size=None,
    overwrite=False,
    template=None,
):
    """Exports an embedding model with a gallery and `identify` signatures; returns the
    version directory (`<export_dir>/<name>/<version>/`, published atomically).

    Args:
        model: a built `keras.Model` (as for `export_saved_model`).
        gallery: a `tfface.gallery.Gallery` built by this model, or float [N, D] row
            embeddings with `labels`.
        export_dir: base directory.
        labels: [N] identity name of each row when `gallery` is an array.
        name, version, overwrite, image_size, template: as in `export_saved_model`.
        k: identities returned per probe (capped at the number of identities).
        by: "max" (an identity scores its best row) or "mean" (its mean similarity).
        threshold: 1:1 threshold for `verify` (no `verify` signature when None).
        identify_threshold: open-set threshold; a best score below it gives "unknown".
            Default `threshold`; with neither, every probe gets its best label.

    Example:
    ```python
    gallery = tfface.gallery.Gallery.open("people.gallery")
    path = export_gallery_model(model, gallery, "/models", name="people", k=5,
                                identify_threshold=0.45)
    out = tf.saved_model.load(path).signatures["identify"](embeddings=probes)
    out["labels"], out["scores"], out["identity"]
    ```
    """
    _check_model(model)
    _check_name(name)
    if by not in _BY:
        raise ValueError(f"`by` must be one of {_BY}. Received: by={by!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive int. Received: k={k!r}")
    threshold = _check_threshold(threshold)
    open_set = _check_threshold(identify_threshold)
    open_set = threshold if open_set is None else open_set
    image_size = _resolve_image_size(model, image_size)
    dim = _check_embeddings(model, image_size, seed=0)
    fingerprint = model_metadata.model_fingerprint(model)
    if hasattr(gallery, "search"):
        stored = gallery.model_info
        if stored.get("fingerprint") not in (None, fingerprint):
            raise ValueError(
                f"`gallery` was built by model {stored.get('name')!r} (fingerprint "
                f"{stored.get('fingerprint')}), not by this model ({fingerprint}); its rows "
                "would not compare with this model's embeddings."
            )
        if labels is not None:
            raise ValueError("`labels` only apply when `gallery` is an array of embeddings.")
        embeddings, labels = gallery_arrays(gallery)
    elif labels is None:
        raise ValueError("`labels` are required when `gallery` is an array of embeddings.")
    else:
        embeddings = gallery
    rows, row_identity, names = _check_gallery(embeddings, labels, dim)
    k = min(int(k), len(names))

    metadata = model_metadata.build_metadata(
        name=name,
        image_size=image_size,
        embedding_size=dim,
        fingerprint=fingerprint,
        threshold=threshold,
        template=model_metadata.model_template(model) if template is None else template,
    )
    gallery_metadata = {
        "identities": len(names),
        "rows": int(len(rows)),
        "k": k,
        "by": by,
        "identify_threshold": open_set,
        "unknown_label": UNKNOWN,
        "signatures": [IDENTIFY_SIGNATURE, IDENTIFY_JPEG_SIGNATURE],
    }
    signature_names = [warmup.EMBED_SIGNATURE, warmup.EMBED_JPEG_SIGNATURE]
    if threshold is not None:
        signature_names.append(warmup.VERIFY_SIGNATURE)
    records = warmup.build_warmup_requests(name, image_size, signature_names)
    probe = np.random.default_rng(0).normal(size=(1, dim)).astype(np.float32)
    records.append(
        warmup._request(name, IDENTIFY_SIGNATURE, {"embeddings": tf.make_tensor_proto(probe)})
    )

    final_dir = _version_dir(export_dir, name, version, overwrite)
    module = _GalleryServingModule(
        model,
        image_size,
        threshold,
        rows,
        row_identity,
        np.array(names, dtype=object),
        k,
        by,
        open_set,
    )

    def write_gallery_metadata(tmp_dir):
        with open(os.path.join(tmp_dir, warmup.WARMUP_DIRNAME, GALLERY_METADATA_FILE), "w") as f:
            json.dump(gallery_metadata, f, indent=2)

    _save_and_publish(module, final_dir, overwrite, records, metadata, write_gallery_metadata)
    return final_dir
