"""Fine-tuning the pretrained dlib_resnet_v1: runs, checkpoints, resumes, keeps frozen blocks.

Drives `tfface.training.Trainer` with the pretrained backbone (all but its last residual
block frozen) through the trainer's `model=` hook, at dlib's 150×150 input, on two fixed
P×K batches: two steps with a checkpoint, then a second Trainer on the same model_dir
resumes for a third.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import FixedData
from tests.training.conftest import fixed_batches
from tfface import models
from tfface.training.config import TrainConfig
from tfface.training.trainer import Trainer

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow_only]


def _config(model_dir, steps):
    return TrainConfig(
        backbone="dlib_resnet_v1",
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


def test_fine_tune_checkpoint_and_resume(tmp_path, dlib_cache):
    def pretrained_model(config):
        backbone, spec = models.load_pretrained_backbone(
            config.backbone, trainable_blocks=1, cache=dlib_cache
        )
        return models.build_embedding_model(
            backbone, config.image_size, config.embedding_dim, normalization=spec.normalization
        )

    data = FixedData(fixed_batches(3, 2, 2, 150, 4, seed=0), 4)
    reference, _ = models.load_pretrained_backbone("dlib_resnet_v1", cache=dlib_cache)

    def run(steps, log=lambda *a: None):
        trainer = Trainer(
            _config(tmp_path / "run", steps),
            strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
            model=pretrained_model,
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
