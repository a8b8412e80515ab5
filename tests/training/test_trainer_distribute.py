"""MirroredStrategy on two logical CPUs must train exactly like one device on the same batch."""

import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import tiny_model
from tests.training.conftest import two_replicas
from tfface.training import objective as objective_lib
from tfface.training.schema import TrainConfig
from tfface.training.trainer import STEP_APPLIED
from tfface.training.trainer import Trainer


def _config(tmp_path, name, **kwargs):
    defaults = dict(
        loss="softmax",
        steps=3,
        image_size=8,
        embedding_dim=8,
        identities_per_batch=4,
        images_per_identity=2,
        model_dir=str(tmp_path / name),
        learning_rate=0.05,
        optimizer="sgd",
        lr_schedule="constant",
        log_every=1,
    )
    defaults.update(kwargs)
    return TrainConfig(**defaults)


def _train(tmp_path, name, strategy, data, **kwargs):
    trainer = Trainer(
        _config(tmp_path, name, **kwargs),
        strategy=strategy,
        model=tiny_model,
        dataset=data,
        log=lambda *a: None,
    )
    losses = []
    for images, labels in data:
        loss, _ = trainer.train_step(images, labels)
        losses.append(float(loss))
    weights = [np.asarray(v.numpy()) for v in trainer.trainable_variables]
    return trainer, losses, weights


def _one_device():
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def _assert_same(a, b):
    (_, losses_a, weights_a), (_, losses_b, weights_b) = a, b
    np.testing.assert_allclose(losses_a, losses_b, atol=1e-5)
    assert len(weights_a) == len(weights_b)
    for wa, wb in zip(weights_a, weights_b, strict=True):
        np.testing.assert_allclose(wa, wb, atol=1e-5)


@pytest.mark.parametrize("loss", ["softmax", "arcface"])
def test_mirrored_equals_one_device_for_heads(tmp_path, make_data, loss):
    data = make_data()
    kwargs = {"head_kwargs": {"scale": 8.0}} if loss == "arcface" else {}
    single = _train(tmp_path, "one", _one_device(), data, loss=loss, **kwargs)
    mirrored = _train(tmp_path, "two", two_replicas(), data, loss=loss, **kwargs)
    _assert_same(single, mirrored)
    # The loss must actually move, or the comparison proves nothing.
    assert single[1][0] != single[1][-1]


def _semihard():
    """The real miner when tfface.losses has it; until then a test-local batch-all stand-in."""
    from tfface import losses

    if hasattr(losses, "triplet_semihard_loss"):
        return "semihard", None

    def batch_all(labels, embeddings, margin=1.0, distance_metric="L2", return_stats=False):
        d = tf.reduce_sum(tf.square(embeddings[:, None] - embeddings[None]), -1)
        same = tf.equal(labels[:, None], labels[None])
        pos = tf.logical_and(same, tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool)))
        t = d[:, :, None] - d[:, None, :] + margin
        mask = tf.logical_and(pos[:, :, None], tf.logical_not(same)[:, None, :])
        t = tf.where(mask, tf.nn.relu(t), 0.0)
        n = tf.reduce_sum(tf.cast(mask, tf.float32))
        loss = tf.reduce_sum(t) / n
        stats = {
            "positive_pairs": tf.reduce_sum(tf.cast(pos, tf.int32)),
            "active_fraction": tf.reduce_sum(tf.cast(t > 0, tf.float32)) / n,
        }
        return (loss, stats) if return_stats else loss

    return "semihard", batch_all


@pytest.fixture
def triplet_fn(monkeypatch):
    mining, stand_in = _semihard()
    if stand_in is not None:
        # The objective calls the `tfface.losses` function its head-table entry names.
        from tfface import losses

        monkeypatch.setattr(losses, "triplet_semihard_loss", stand_in, raising=False)
    return mining


def test_global_mining_mirrored_equals_one_device(tmp_path, make_data, triplet_fn):
    data = make_data(p=4, k=3, num_classes=8)
    kwargs = dict(loss="triplet", mining=triplet_fn, mining_scope="global", triplet_margin=0.5)
    kwargs["images_per_identity"] = 3
    single = _train(tmp_path, "one", _one_device(), data, **kwargs)
    mirrored = _train(tmp_path, "two", two_replicas(), data, **kwargs)
    _assert_same(single, mirrored)
    assert single[1][0] != single[1][-1]


def test_replica_mining_differs_from_global(tmp_path, make_data, triplet_fn):
    """Per-replica mining sees half the negatives: its loss must differ (the test has teeth)."""
    data = make_data(num_batches=1, p=4, k=3, num_classes=8)
    kwargs = dict(loss="triplet", mining=triplet_fn, triplet_margin=0.5, images_per_identity=3)
    glob = _train(tmp_path, "g", two_replicas(), data, mining_scope="global", **kwargs)
    rep = _train(tmp_path, "r", two_replicas(), data, mining_scope="replica", **kwargs)
    assert abs(glob[1][0] - rep[1][0]) > 1e-4


def test_global_mining_gradient_equals_concatenated_batch(triplet_fn):
    """∂/∂θ of the scaled per-replica loss, Σ-reduced, equals the single-device gradient."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    labels = np.repeat(np.arange(4), 3).astype(np.int64)
    w0 = rng.normal(size=(5, 3)).astype(np.float32)
    obj = objective_lib.Objective("triplet", 4, mining=triplet_fn, triplet_margin=0.5)

    def loss_and_grad(w, xs, ys, scale):
        with tf.GradientTape() as tape:
            emb = tf.math.l2_normalize(tf.matmul(xs, w), axis=-1)
            loss, _ = obj(emb, ys)
            scaled = loss * scale
        return loss, tape.gradient(scaled, w)

    w = tf.Variable(w0)
    ref_loss, ref_grad = loss_and_grad(w, tf.constant(x), tf.constant(labels), 1.0)

    strategy = two_replicas()
    with strategy.scope():
        wm = tf.Variable(w0)

    def shard(a):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: a[ctx.replica_id_in_sync_group * 6 : (ctx.replica_id_in_sync_group + 1) * 6]
        )

    @tf.function
    def step(xs, ys):
        def fn(xs, ys):
            loss, grad = loss_and_grad(wm, xs, ys, 1.0 / strategy.num_replicas_in_sync)
            grad = tf.distribute.get_replica_context().all_reduce("sum", grad)
            return loss, grad

        loss, grad = strategy.run(fn, args=(xs, ys))
        return strategy.experimental_local_results(loss), strategy.experimental_local_results(grad)

    losses, grads = step(shard(x), shard(labels))
    for loss, grad in zip(losses, grads, strict=True):
        np.testing.assert_allclose(loss, ref_loss, atol=1e-6)
        np.testing.assert_allclose(grad, ref_grad, atol=1e-6)
    assert float(tf.reduce_max(tf.abs(ref_grad))) > 1e-4


@pytest.mark.parametrize("loss", ["center", "sphereface"])
def test_stateful_heads_mirrored_equal_one_device(tmp_path, make_data, loss):
    """Center loss (centers updated outside the optimizer) and SphereFace (λ counter)."""
    data = make_data()
    single = _train(tmp_path, "one", _one_device(), data, loss=loss)
    mirrored = _train(tmp_path, "two", two_replicas(), data, loss=loss)
    _assert_same(single, mirrored)
    layer_a = single[0].objective.center or single[0].objective.head
    layer_b = mirrored[0].objective.center or mirrored[0].objective.head
    for wa, wb in zip(layer_a.non_trainable_weights, layer_b.non_trainable_weights, strict=True):
        np.testing.assert_allclose(np.asarray(wa.numpy()), np.asarray(wb.numpy()), atol=1e-5)
    state = np.asarray(layer_a.non_trainable_weights[0].numpy())
    assert np.any(state != 0), "the layer state never moved, so the comparison is empty"


def test_mirrored_skipped_step_rolls_back_forward_state(tmp_path, make_data):
    """A NaN batch under MirroredStrategy: the update is skipped and the centers that the
    forward pass moved (NaN features into the moving average) come back on every replica."""
    data = make_data()
    trainer = Trainer(
        _config(tmp_path, "nan", loss="center"),
        strategy=two_replicas(),
        model=tiny_model,
        dataset=data,
        log=lambda *a: None,
    )
    images, labels = data[0]
    trainer.train_step(images, labels)
    assert int(trainer.last_status) == STEP_APPLIED
    centers = trainer.objective.center.non_trainable_weights
    before = [np.asarray(w.numpy()) for w in centers]
    assert np.any(before[0] != 0), "the first step must move the centers"
    trainer.train_step(np.full_like(images, np.nan), labels)
    # SKIPPED or NONFINITE_LOSS: whether the loss sees the NaN depends on the CPU (oneDNN).
    assert int(trainer.last_status) != STEP_APPLIED
    for w, b in zip(centers, before, strict=True):
        for replica_value in trainer.strategy.experimental_local_results(w):
            np.testing.assert_array_equal(np.asarray(replica_value.numpy()), b)
