"""Pixel normalisation of 0–255 images, as the face-recognition codebases do it."""

import keras
from keras import ops

from tfface.api_export import tfface_export

MODES = ("insightface", "facenet", "dlib")
# dlib's input_rgb_image defaults, also stored in dlib_face_recognition_resnet_model_v1.dat.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)


@tfface_export("tfface.layers.ImageNormalization")
class ImageNormalization(keras.layers.Layer):
    """Maps float pixels in [0, 255] to the range a backbone was trained on.

    - `"insightface"`: ((x / 255) − 0.5) / 0.5, i.e. [−1, 1] (ArcFace, MobileFaceNet).
    - `"facenet"`: (x − 127.5) / 128, i.e. [−0.996, 0.996] (facenet `fixed_image_standardization`).
    - `"dlib"`: (x − mean_c) / 256 with RGB means (122.782, 117.001, 104.298) (dlib's
      `input_rgb_image`, the input of its face recognition ResNet).

    Args:
        mode: one of `"insightface"`, `"facenet"`, `"dlib"`. Defaults to `"insightface"`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float or integer images [N, H, W, C] with values in [0, 255].

    Example:

    >>> import numpy as np
    >>> layer = ImageNormalization("facenet")
    >>> keras.ops.convert_to_numpy(layer(np.array([0.0, 127.5, 255.0]))).tolist()
    [-0.99609375, 0.0, 0.99609375]

    Reference:
        insightface `recognition/arcface_torch/dataset.py` (Normalize(0.5, 0.5));
        facenet `src/facenet.py` `fixed_image_standardization`; dlib `dlib/dnn/input.h`.
    """

    def __init__(self, mode="insightface", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "insightface":
            return (x / 255.0 - 0.5) / 0.5
        if self.mode == "dlib":
            return (x - ops.convert_to_tensor(DLIB_MEAN_RGB, dtype=self.compute_dtype)) / 256.0
        return (x - 127.5) / 128.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config
