"""IResNet against insightface's published sizes (arcface_torch README: r50 43.6 M params /
6.3 GFLOPs, r100 65.2 M / 12.1 GFLOPs, "FLOPs" there being multiply-accumulates), all at
112×112 input and 512-D output."""

import numpy as np
import pytest

from tfface.models import count_macs
from tfface.models import create_backbone


def _pytorch_param_count(model):
    # PyTorch counts BN affine weights but not running statistics (Keras's non-trainable
    # moving mean/variance), and it counts the embedding BN's frozen scale (512), which
    # this port drops (scale=False).
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable + model.output.shape[-1]


@pytest.mark.parametrize(
    "name, published_params, published_macs",
    [("iresnet50", 43.6e6, 6.3e9), ("iresnet100", 65.2e6, 12.1e9)],
)
def test_published_size(name, published_params, published_macs):
    model = create_backbone(name, image_size=112, embedding_dim=512)
    # Published figures carry one decimal in millions / billions.
    assert abs(_pytorch_param_count(model) - published_params) < 0.05e6
    assert abs(count_macs(model) - published_macs) < 0.05e9
    # 112 / 16 = 7: the FC layer sees insightface's 7×7×512 map.
    assert model.get_layer("head_fc").input.shape[-1] == 7 * 7 * 512


def test_stage_depths():
    model = create_backbone("iresnet50", image_size=32, embedding_dim=8)
    adds = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    per_stage = [sum(n.startswith(f"stage{s}_") for n in adds) for s in range(1, 5)]
    assert per_stage == [3, 4, 14, 3]


def test_image_size_must_be_a_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16.*Received: image_size=100"):
        create_backbone("iresnet50", image_size=100)
