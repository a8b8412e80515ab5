"""Inception-ResNet-v1 against facenet's published sizes.

OpenVINO's model card for facenet-20180408-102900 (512-D, 160×160 input) lists 23.469 M
parameters and 2.846 GFLOPs; that checkpoint's trainable variables are what it counts.
"""

import numpy as np
import pytest

from tfface.models import count_macs
from tfface.models import create_backbone
from tfface.models.inception_resnet_v1 import inception_resnet_v1


def test_published_size_512d_at_the_default_160():
    model = inception_resnet_v1(embedding_dim=512)
    assert tuple(model.input.shape) == (None, 160, 160, 3)
    # 160 → 3×3×1792 after reduction B and the block8 stack.
    assert tuple(model.get_layer("Mixed_8b_add").output.shape) == (None, 3, 3, 1792)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert abs(trainable - 23.469e6) < 0.005e6
    assert abs(2 * count_macs(model) - 2.846e9) / 2.846e9 < 0.01


def test_too_small_input_raises():
    with pytest.raises(ValueError, match=">= 75.*Received: image_size=74"):
        create_backbone("inception_resnet_v1", image_size=74)


def test_matches_keras_facenet_128d_exactly():
    """nyoki-mtl/keras-facenet's Keras port of the 128-D facenet model reports
    Total 22,808,144 / Trainable 22,779,312 / Non-trainable 28,832 parameters."""
    model = create_backbone("inception_resnet_v1", image_size=160, embedding_dim=128)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (model.count_params(), trainable, non_trainable) == (22_808_144, 22_779_312, 28_832)
