"""The Trainer with `partial_fc`: r = 1 trains like the replicated head, on 1 and 2
replicas, and a checkpoint resumes on another replica count."""

import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import tiny_model
from tests.training.conftest import two_replicas
from tfface.training.schema import TrainConfig
from tfface.training.trainer import Trainer

pytestmark = pytest.mark.tensorflow_only


def _strategy(replicas):
    if replicas == 1:
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    return two_replicas()


def _trainer(tmp_path, name, replicas, data, optimizer="sgd", **kwargs):
    settings = dict(
        loss="arcface",
        head_kwargs={"scale": 8.0},
        steps=3,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(tmp_path / name),
        learning_rate=0.05,
        optimizer=optimizer,
        weight_decay=0.01,
        lr_schedule="constant",
        log_every=1,
        evaluate=False,
        export=False,
    )
    config = TrainConfig(**{**settings, **kwargs})
    return Trainer(config, _strategy(replicas), model=tiny_model, dataset=data, log=lambda *a: 0)


def _kernel(trainer):
    if trainer.partial_fc is not None:
        return trainer.partial_fc.kernel()
    return trainer.objective.head.kernel.numpy()


def _run(trainer, data):
    losses = [float(trainer.train_step(images, labels)[0]) for images, labels in data]
    return losses, [v.numpy() for v in trainer.model.trainable_variables], _kernel(trainer)


# MagFace: its loss has a term of its own (λ_g·g(a), add_loss in the layer) that Partial FC,
# calling only the margin hook, must add like the replicated head's `head.losses`.
HEADS = {
    "arcface": {},
    "magface": {"loss": "magface", "head_kwargs": {"scale": 8.0, "lambda_g": 5.0}},
}


@pytest.mark.parametrize(
    "replicas, optimizer, head",
    [(1, "sgd", "arcface"), (2, "sgd", "arcface"), (1, "adamw", "arcface")]
    + [(2, "adamw", "arcface"), (2, "sgd", "magface")],
)
def test_r1_trains_like_the_replicated_head(tmp_path, make_data, replicas, optimizer, head):
    data = make_data()
    full = _trainer(tmp_path, "full", 1, data, optimizer, **HEADS[head])
    kernel = _kernel(full)
    sharded = _trainer(tmp_path, "pfc", replicas, data, optimizer, partial_fc=1.0, **HEADS[head])
    sharded.partial_fc.set_weights(kernel)
    losses_a, model_a, kernel_a = _run(full, data)
    losses_b, model_b, kernel_b = _run(sharded, data)
    np.testing.assert_allclose(losses_b, losses_a, rtol=1e-5)
    assert losses_a[0] != losses_a[-1]
    for a, b in zip(model_a, model_b, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(kernel_b, kernel_a, atol=1e-5)
    assert not np.allclose(kernel_a, kernel)  # the centres did train


@pytest.mark.slow  # ~30 s: four trainers, two fits each
@pytest.mark.parametrize("first, second", [(2, 1), (1, 2)])
def test_checkpoint_resumes_on_another_replica_count(tmp_path, make_data, first, second):
    data = make_data()
    straight = _trainer(tmp_path, "straight", second, data, partial_fc=1.0)
    kernel = straight.partial_fc.kernel()
    straight.fit()

    run = _trainer(tmp_path, "run", first, data, partial_fc=1.0, steps=2)
    run.partial_fc.set_weights(kernel)
    run.fit()
    saved = run.partial_fc.canonical()
    probe = _trainer(tmp_path, "run", second, data, partial_fc=1.0)
    assert probe.restore()
    for name, value in probe.partial_fc.canonical().items():
        np.testing.assert_array_equal(value.numpy(), saved[name].numpy())  # re-sharded
    resumed = _trainer(tmp_path, "run", second, data, partial_fc=1.0)
    assert resumed.fit()["start_step"] == 2
    np.testing.assert_allclose(resumed.partial_fc.kernel(), straight.partial_fc.kernel(), atol=1e-5)
    for a, b in zip(resumed.model.weights, straight.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # fp16 UnitNormalization ε
def test_mixed_precision_unscales_the_centres_gradient(tmp_path, make_data):
    """Under mixed precision the shard's gradient carries the loss scale; the update
    divides it out, so the centres move as in float32 (not 2^10 times further)."""
    from tfface.training.trainer import STEP_APPLIED

    data = make_data(num_batches=1)
    moves = []
    for mixed in (False, True):
        trainer = _trainer(tmp_path, f"mp{mixed}", 2, data, partial_fc=0.5, mixed_precision=mixed)
        if mixed:
            trainer.optimizer.dynamic_scale.assign(2.0**10)
        before = trainer.partial_fc.kernel()
        loss, _ = trainer.train_step(*data[0])
        assert np.isfinite(float(loss)) and int(trainer.last_status) == STEP_APPLIED
        after = trainer.partial_fc.kernel()
        assert np.isfinite(after).all()
        moves.append(after - before)
    assert np.abs(moves[0]).max() > 0
    np.testing.assert_allclose(moves[1], moves[0], rtol=0.05, atol=1e-4 * np.abs(moves[0]).max())
