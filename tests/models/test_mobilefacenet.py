"""MobileFaceNet against Chen et al. 2018, Table 2: 0.99 M parameters, 221 M MAdds at
112×112 with a 128-D output (0.44 GFLOPs at 2 FLOPs per multiply-add)."""

import numpy as np
import pytest

from tfface.models import count_macs
from tfface.models import create_backbone


def test_published_size():
    model = create_backbone("mobilefacenet", image_size=112, embedding_dim=128)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # The paper's count leaves out some BN/PReLU vectors: within 2% of 0.99 M.
    assert abs(trainable - 0.99e6) / 0.99e6 < 0.02
    assert abs(count_macs(model) - 221e6) / 221e6 < 0.01
    # The global depthwise conv covers the whole 7×7 map.
    assert model.get_layer("gdc").kernel_size == (7, 7)


def test_gdc_follows_the_input_size():
    model = create_backbone("mobilefacenet", image_size=64, embedding_dim=32)
    assert model.get_layer("gdc").kernel_size == (4, 4)
    assert tuple(model.output.shape) == (None, 32)


def test_image_size_must_be_a_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16.*Received: image_size=50"):
        create_backbone("mobilefacenet", image_size=50)
