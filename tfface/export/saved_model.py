"""SavedModel export of a tfface embedding model, with TF Serving signatures and warmup.

`export_saved_model` writes `<export_dir>/<name>/<version>/`, the layout TF Serving polls.
The version is first written to a hidden temporary directory beside it and then renamed
into place, so a poller never sees a half-written model.
"""

import math
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from tfface import model_metadata
from tfface.api_export import tfface_export
from tfface.export import layout
from tfface.export import warmup

EMBED_SIGNATURE = warmup.EMBED_SIGNATURE
EMBED_JPEG_SIGNATURE = warmup.EMBED_JPEG_SIGNATURE
VERIFY_SIGNATURE = warmup.VERIFY_SIGNATURE
# Embeddings and the feature norm ‖x‖ (a quality score), for models that provide it.
EMBED_QUALITY_SIGNATURE = "embed_quality"

# Embeddings must be unit vectors; float16 models round their norm to ~1e-3.
_NORM_TOLERANCE = 1e-2


def _backing_variable(variable):
    value = variable.value if isinstance(variable, keras.Variable) else variable
    if not isinstance(value, tf.Variable):
        raise ValueError(
            "Export needs the TensorFlow backend: every model variable must be backed by a "
            f"tf.Variable. Received: {getattr(variable, 'path', variable)!r} backed by "
            f"{type(value).__name__}"
        )
    return value


class _ServingModule(tf.Module):
    """The object `tf.saved_model.save` writes: the model's variables plus three functions.

    Only the model's variables are tracked, not the Keras object graph, so the SavedModel
    holds nothing but variables, `tf.function` graphs and `threshold`, and loads with plain
    TensorFlow (no tfface import, no custom objects) and in TF Serving.
    """

    def __init__(self, model, image_size, threshold, features_model=None):
        super().__init__(name="tfface_serving")
        # The backing tf.Variables, not the Keras variable wrappers: with the wrappers the
        # SavedModel still loads through `tf.saved_model.load`, but the session-based
        # loader that TF Serving and `saved_model_cli run` use fails with "Could not find
        # variable dense/bias" (see BUILD_NOTES.md, Export). `.value` is read outside any autocast
        # scope, so it is the variable itself, never a cast copy.
        self.model_variables = [_backing_variable(v) for v in model.variables]
        self.threshold = None
        if threshold is not None:
            self.threshold = tf.Variable(
                threshold, dtype=tf.float32, trainable=False, name="threshold"
            )
        size = image_size
        image_spec = lambda name: tf.TensorSpec([None, size, size, 3], tf.float32, name=name)

        def embed(images):
            # Signature shapes are not enforced when a server or a restored function is fed;
            # a fully convolutional model would quietly embed the wrong size.
            tf.debugging.assert_equal(
                tf.shape(images)[1:],
                tf.constant([size, size, 3]),
                message=f"images must be [N, {size}, {size}, 3] float32 pixels in 0-255",
            )
            return tf.cast(model(images, training=False), tf.float32)

        def decode(encoded):
            # expand_animations=False: a GIF yields its first frame, not a 4-D stack.
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
            # antialias: photos are usually larger than S, and plain bilinear aliases.
            return tf.image.resize(image, [size, size], method="bilinear", antialias=True)

        @tf.function(input_signature=[image_spec("images")])
        def serving_default(images):
            return {"embeddings": embed(images)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def embed_jpeg(images):
            decoded = tf.map_fn(
                decode,
                images,
                fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
            )
            return {"embeddings": embed(decoded)}

        self.serving_default = serving_default
        self.embed_jpeg = embed_jpeg
        self.embed_quality = None
        if features_model is not None:

            @tf.function(input_signature=[image_spec("images")])
            def embed_quality(images):
                tf.debugging.assert_equal(
                    tf.shape(images)[1:],
                    tf.constant([size, size, 3]),
                    message=f"images must be [N, {size}, {size}, 3] float32 pixels in 0-255",
                )
                embeddings, features = features_model(images, training=False)
                features = tf.cast(features, tf.float32)
                return {
                    "embeddings": tf.cast(embeddings, tf.float32),
                    "embedding_norm": tf.norm(features, axis=-1),
                }

            self.embed_quality = embed_quality

        if self.threshold is not None:
            threshold_var = self.threshold

            @tf.function(input_signature=[image_spec("images_a"), image_spec("images_b")])
            def verify(images_a, images_b):
                # Without this check a batch of 1 would silently broadcast against N.
                n = tf.shape(images_a)[0]
                tf.debugging.assert_equal(
                    n,
                    tf.shape(images_b)[0],
                    message="verify: images_a and images_b must have the same batch size",
                )
                # One model call over both halves: inference-mode layers are per-sample.
                embeddings = embed(tf.concat([images_a, images_b], axis=0))
                a, b = embeddings[:n], embeddings[n:]
                similarity = tf.reduce_sum(a * b, axis=-1)
                return {
                    "similarity": similarity,
                    "same_person": similarity >= threshold_var,
                    # Per row, so REST "instances" responses stay row-shaped.
                    "threshold": tf.fill(tf.shape(similarity), tf.identity(threshold_var)),
                }

            self.verify = verify

    def signatures(self):
        signatures = {
            EMBED_SIGNATURE: self.serving_default.get_concrete_function(),
            EMBED_JPEG_SIGNATURE: self.embed_jpeg.get_concrete_function(),
        }
        if self.threshold is not None:
            signatures[VERIFY_SIGNATURE] = self.verify.get_concrete_function()
        if self.embed_quality is not None:
            signatures[EMBED_QUALITY_SIGNATURE] = self.embed_quality.get_concrete_function()
        return signatures


def features_model(model):
    """`model` → [unit embeddings, features before its final `L2Normalize`], the same
    layers (`tfface.models.build_embedding_model` names that layer "l2_normalize")."""
    try:
        features = model.get_layer("l2_normalize").input
    except ValueError:
        raise ValueError(
            "A model with the quality score 'embedding_norm' must end in the L2Normalize "
            "layer named 'l2_normalize' (`tfface.models.build_embedding_model`). "
            f"Received: a model without it ({model.name})"
        ) from None
    return keras.Model(model.input, [model.output, features], name=f"{model.name}_quality")


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model. Received: model of type {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            "`model` must be built before export (call it once or build it from an Input)."
        )
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) > 1:
        raise ValueError(f"`model` must take a single image input. Received: {len(inputs)} inputs")


def _resolve_image_size(model, image_size):
    shape = None
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        # A subclassed model has no input shape; `image_size` must then say it.
        pass
    if shape is not None and (len(shape) != 4 or shape[-1] not in (3, None)):
        raise ValueError(
            f"`model` must take images [N, S, S, 3]. Received: model.input_shape={shape}"
        )
    model_size = None
    if shape is not None and shape[1] is not None and shape[2] is not None:
        if shape[1] != shape[2]:
            raise ValueError(
                f"`model` must take square images [N, S, S, 3]. Received: model.input_shape={shape}"
            )
        model_size = int(shape[1])
    if image_size is None:
        if model_size is None:
            raise ValueError(
                "`image_size` is required when the model's input size is not fixed. "
                f"Received: image_size=None, model.input_shape={shape}"
            )
        return model_size
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(
            f"`image_size` must be a positive int. Received: image_size={image_size!r}"
        )
    if image_size < 1:
        raise ValueError(f"`image_size` must be a positive int. Received: image_size={image_size}")
    if model_size is not None and model_size != image_size:
        raise ValueError(
            f"`image_size` disagrees with the model's input size {model_size}. "
            f"Received: image_size={image_size}"
        )
    return int(image_size)


def _check_embeddings(model, image_size, seed):
    """Runs the model on 2 probe images; returns D after checking [2, D] unit vectors."""
    rng = np.random.default_rng(seed)
    probe = rng.uniform(0.0, 255.0, size=(2, image_size, image_size, 3)).astype(np.float32)
    out = keras.ops.convert_to_numpy(model(probe, training=False)).astype(np.float64)
    if out.ndim != 2 or out.shape[0] != 2:
        raise ValueError(
            "`model` must map images [N, S, S, 3] to embeddings [N, D]. "
            f"Received: output shape {out.shape} for input shape {probe.shape}"
        )
    norms = np.linalg.norm(out, axis=-1)
    if not np.all(np.abs(norms - 1.0) <= _NORM_TOLERANCE):
        raise ValueError(
            "`model` must output L2-normalised embeddings (build it with "
            "`tfface.models.build_embedding_model`, which ends in L2Normalize). "
            f"Received: embedding norms {norms.tolist()} on probe images"
        )
    return out.shape[1]


def _check_threshold(threshold):
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(
            f"`threshold` must be a float cosine similarity in [-1, 1]. "
            f"Received: threshold={threshold!r}"
        )
    threshold = float(threshold)
    if not math.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
        raise ValueError(
            f"`threshold` must be a float cosine similarity in [-1, 1]. "
            f"Received: threshold={threshold}"
        )
    return threshold


# The version-directory layout is shared with the ONNX and LiteRT exports (and checked by
# `python -m tfface.export` before TensorFlow loads): see tfface/export/layout.py.
_check_name = layout.check_name
existing_versions = layout.existing_versions
_version_dir = layout.version_dir


def _save_and_publish(module, final_dir, overwrite, records, metadata, write_extra=None):
    """Saves `module` with its signatures, warmup records and tfface metadata into a
    temporary directory, then publishes it as `final_dir`; nothing half-written remains."""
    tmp_dir = layout.temporary_dir(final_dir)
    try:
        tf.saved_model.save(module, tmp_dir, signatures=module.signatures())
        warmup.write_warmup_requests(tmp_dir, records)
        model_metadata.write_saved_model_metadata(tmp_dir, metadata)
        if write_extra is not None:
            write_extra(tmp_dir)
        layout.publish(tmp_dir, final_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


@tfface_export("tfface.export.export_saved_model")
def export_saved_model(
    model,
    export_dir,
    name="tfface",
    version=None,
    threshold=None,
    image_size=None,
    overwrite=False,
    warmup_batch_sizes=(1,),
    seed=0,
    template=None,
    threshold_source=None,
    quality_scores=None,
):
    """Exports an embedding model as a TF Serving SavedModel; returns the version dir.

    The SavedModel holds three signatures (all images are float32 RGB pixels in 0–255):

    - `serving_default`: `images` float32 [N, S, S, 3] → `embeddings` float32 [N, D].
    - `embed_jpeg`: `images` string [N] (encoded JPEG/PNG/BMP/GIF, any size; decoded and
      resized to S×S in the graph) → `embeddings` float32 [N, D].
    - `verify` (only when `threshold` is given): `images_a`, `images_b` float32
      [N, S, S, 3] → `similarity` float32 [N] (cosine), `same_person` bool [N]
      (`similarity >= threshold`), `threshold` float32 [N].
    - `embed_quality` (only with the quality score "embedding_norm"): `images` float32
      [N, S, S, 3] → `embeddings` float32 [N, D] and `embedding_norm` float32 [N], the
      norm ‖x‖ of the features before L2 normalisation (AdaFace/MagFace models: a face
      quality score, higher is better).

    The loaded object also carries `threshold` (a scalar `tf.Variable`) when exported with
    one. `assets.extra/tf_serving_warmup_requests` holds one `PredictionLog` per signature
    and warmup batch size. `assets.extra/tfface_model.json` records the crop size, the
    alignment template, the threshold, the embedding size and a weights fingerprint, so
    `tfface.recognition` aligns faces the way the model expects (see
    `tfface.model_metadata`).

    Args:
        model: a built `keras.Model` mapping float32 images [N, S, S, 3] in 0–255 to
            L2-normalised embeddings [N, D], e.g. from
            `tfface.models.build_embedding_model`. Checked on two probe images.
        export_dir: base directory; the model goes to `<export_dir>/<name>/<version>/`.
        name: model name (directory and `model_spec.name` of the warmup requests).
        version: non-negative int; default one more than the largest numeric version
            already under `<export_dir>/<name>` (1 for the first export).
        threshold: cosine-similarity threshold in [-1, 1] for `verify`, as calibrated on
            held-out pairs. For unit embeddings a squared-L2 distance threshold t is the
            cosine threshold 1 - t / 2. `None` exports no `verify` signature.
        image_size: S. Default: the model's fixed input size; required if that is `None`.
        overwrite: replace an existing `<version>` directory instead of raising.
        warmup_batch_sizes: batch sizes of the warmup requests.
        seed: seed of the probe and warmup pixels.
        template: the five-point alignment template the model was trained on: a
            `tfface.align` template name ("arcface", "dlib") or [5, 2] crop points, recorded
            in the metadata. Default: the model's `tfface_metadata` template (pretrained
            models carry one), else "arcface".
        threshold_source: which pairs `threshold` was fitted on (text recorded in the
            metadata as `threshold_source`; train.py passes its `--eval_data` and pairs).
        quality_scores: the quality scores the model provides, recorded in the metadata:
            `()` or `("embedding_norm",)`. Default: the model's
            (`tfface.model_metadata.model_quality_scores`; set by AdaFace/MagFace training).

    Returns:
        The path of the written version directory.

    Example:

    ```python
    path = tfface.export.export_saved_model(model, "/models", name="faces", threshold=0.35)
    loaded = tf.saved_model.load(path)
    loaded.signatures["serving_default"](images=images)["embeddings"]
    ```
    """
    _check_model(model)
    _check_name(name)
    if not isinstance(export_dir, (str, os.PathLike)) or not os.fspath(export_dir):
        raise ValueError(
            f"`export_dir` must be a non-empty path. Received: export_dir={export_dir!r}"
        )
    threshold = _check_threshold(threshold)
    image_size = _resolve_image_size(model, image_size)
    embedding_size = _check_embeddings(model, image_size, seed)
    if quality_scores is None:
        quality_scores = model_metadata.model_quality_scores(model)
    quality_scores = model_metadata.check_quality_scores(quality_scores)
    quality_model = features_model(model) if "embedding_norm" in quality_scores else None
    metadata = model_metadata.build_metadata(
        name=name,
        image_size=image_size,
        embedding_size=embedding_size,
        fingerprint=model_metadata.model_fingerprint(model),
        threshold=threshold,
        template=model_metadata.model_template(model) if template is None else template,
        threshold_source=threshold_source,
        quality_scores=quality_scores,
    )
    signature_names = [EMBED_SIGNATURE, EMBED_JPEG_SIGNATURE]
    if threshold is not None:
        signature_names.append(VERIFY_SIGNATURE)
    records = warmup.build_warmup_requests(
        name, image_size, signature_names, batch_sizes=warmup_batch_sizes, seed=seed
    )

    final_dir = _version_dir(export_dir, name, version, overwrite)

    module = _ServingModule(model, image_size, threshold, features_model=quality_model)
    _save_and_publish(module, final_dir, overwrite, records, metadata)
    return final_dir
