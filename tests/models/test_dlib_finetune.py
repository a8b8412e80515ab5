"""Fine-tuning the pretrained dlib_resnet_v1 (`train.py --backbone=dlib_resnet_v1 --pretrained`).

The flag checks run in the default suite (they exit 2 before any model exists). The slow
test drives `tfface.training.Trainer` with `pretrained=True, trainable_blocks=1` at dlib's
150×150 input on fixed P×K batches: two steps with a checkpoint, then a second Trainer on
the same model_dir resumes for a third; the frozen layers keep dlib's weights, block 14 and
the final dense layer move.
"""

import numpy as np
import pytest

from tfface import models
from tfface.training.preflight import check_inputs
from tfface.training.schema import TrainConfig


def _config(model_dir, steps, **kwargs):
    values = dict(
        backbone="dlib_resnet_v1",
        pretrained=True,
        trainable_blocks=1,
        loss="triplet",
        mining="semihard",
        steps=steps,
        image_size=150,
        embedding_dim=128,
        identities_per_batch=2,
        images_per_identity=2,
        model_dir=str(model_dir),
        learning_rate=1e-3,
        optimizer="adam",
        lr_schedule="constant",
        log_every=1,
        checkpoint_every=1,
        evaluate=False,
        export=False,
    )
    values.update(kwargs)
    return TrainConfig(**values)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"backbone": "small_cnn", "image_size": 64}, "--pretrained: tfface has weights for"),
        ({"image_size": 112}, "takes --image_size=150 --embedding_dim=128"),
        ({"embedding_dim": 64}, "Received: --image_size=150 --embedding_dim=64"),
        ({"trainable_blocks": 15}, r"--trainable_blocks must be in \[0, 14\]"),
        ({"pretrained": False}, "--trainable_blocks applies to --pretrained runs only"),
    ],
)
def test_pretrained_flag_errors(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        check_inputs(_config(tmp_path, 1, **overrides))


@pytest.mark.slow
@pytest.mark.tensorflow_only
def test_fine_tune_checkpoint_and_resume(tmp_path, dlib_cache, monkeypatch):
    import tensorflow as tf

    from tests.training.conftest import FixedData
    from tests.training.conftest import fixed_batches
    from tfface.training.trainer import Trainer

    monkeypatch.setenv("TFFACE_CACHE", dlib_cache)
    data = FixedData(fixed_batches(3, 2, 2, 150, 4, seed=0), 4)
    reference, _ = models.load_pretrained_backbone("dlib_resnet_v1", cache=dlib_cache)

    def run(steps, log=lambda *a: None):
        trainer = Trainer(
            _config(tmp_path / "run", steps),
            strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
            dataset=data,
            log=log,
        )
        return trainer, trainer.fit()

    first, summary = run(2)
    assert summary["final_step"] == 2
    logs = []
    second, summary = run(3, logs.append)
    assert summary["start_step"] == 2 and summary["final_step"] == 3
    assert any("Resumed from" in line for line in logs)

    backbone = second.model.get_layer("dlib_resnet_v1")
    for layer in backbone.layers:
        for now, before in zip(
            layer.get_weights(), reference.get_layer(layer.name).get_weights(), strict=True
        ):
            if layer.name.startswith(("block14", "head")):
                assert not np.array_equal(now, before), f"{layer.name} did not train"
            else:
                np.testing.assert_array_equal(now, before, err_msg=f"{layer.name} moved")
