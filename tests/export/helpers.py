"""Tiny embedding model and images shared by the export tests."""

import keras
import numpy as np

IMAGE_SIZE = 16
EMBEDDING_DIM = 8
THRESHOLD = 0.25


def make_embedding_model(image_size=IMAGE_SIZE, embedding_dim=EMBEDDING_DIM, seed=7):
    """Images in 0–255 → unit embeddings, with BatchNorm statistics that are not the defaults.

    Built from Keras layers only, so the export tests do not depend on tfface.models. Random
    moving statistics make a missing non-trainable variable in the export change the output.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(embedding_dim)(x)
    outputs = keras.layers.UnitNormalization(axis=-1)(x)
    model = keras.Model(inputs, outputs, name="tiny_embedder")
    rng = np.random.default_rng(seed)
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    bn.moving_mean.assign(rng.normal(0.0, 0.5, size=bn.moving_mean.shape).astype("float32"))
    bn.moving_variance.assign(
        rng.uniform(0.5, 2.0, size=bn.moving_variance.shape).astype("float32")
    )
    return model


def make_images(n, image_size=IMAGE_SIZE, seed=0):
    """Whole-valued pixels, so PNG round trips are lossless."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, image_size, image_size, 3)).astype("float32")


def png_bytes(image):
    """PNG bytes of a uint8-castable [H, W, 3] image (what `embed_jpeg` decodes)."""
    import tensorflow as tf

    return tf.io.encode_png(np.asarray(image, dtype=np.uint8)).numpy()


def run_in_session_loader(path, feeds_by_signature):
    """Runs signatures of the SavedModel at `path` through the TF1 session loader, which is
    what TF Serving and `saved_model_cli` use (stricter than `tf.saved_model.load`).

    `feeds_by_signature`: {signature: {input name: array}}; returns {signature: {output
    name: array}}.
    """
    import tensorflow as tf

    results = {}
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        for key, feeds in feeds_by_signature.items():
            signature = meta_graph.signature_def[key]
            feed_dict = {signature.inputs[k].name: v for k, v in feeds.items()}
            fetches = {k: v.name for k, v in signature.outputs.items()}
            results[key] = sess.run(fetches, feed_dict=feed_dict)
    return results
