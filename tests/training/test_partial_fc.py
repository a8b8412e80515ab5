"""`PartialFC`: the sharded head equals the replicated head at r = 1; sampling touches
only the sampled rows; the canonical checkpoint layout re-shards."""

import numpy as np
import pytest
import tensorflow as tf

from tfface import layers
from tfface.training.partial_fc import PartialFC
from tfface.training.strategy import mirrored_strategy

pytestmark = pytest.mark.tensorflow_only

B, D, C = 8, 6, 10

# Every margin head whose hook PartialFC reuses (not re-implemented): (class, kwargs).
HEADS = {
    "arcface": (layers.ArcFace, {"scale": 16.0, "margin": 0.3}),
    "cosface": (layers.CosFace, {"scale": 16.0, "margin": 0.2}),
    "combined": (layers.CombinedMargin, {"scale": 16.0, "m1": 1.0, "m2": 0.2, "m3": 0.1}),
    "normface": (layers.NormFace, {"scale": 16.0}),
    "sphereface": (layers.SphereFace, {}),
    "curricularface": (layers.CurricularFace, {}),
    "adaface": (layers.AdaFace, {}),
    "subcenter": (layers.SubCenterArcFace, {"sub_centers": 3}),
}


def _data(seed=0, num_classes=C, dim=D, batch=B):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, dim)).astype(np.float32)
    y = rng.integers(0, num_classes, size=batch).astype(np.int64)
    y[0] = num_classes - 1  # a positive in the last (padded) shard
    return x, y


def _full_head(name, kernel, x, y):
    cls, kwargs = HEADS[name]
    head = cls(kernel.shape[1] // getattr(cls, "centers_per_class", 1), **kwargs)
    if name == "subcenter":
        head = cls(kernel.shape[1] // kwargs["sub_centers"], **kwargs)
    head.build([(None, x.shape[1]), (None,)])
    head.kernel.assign(kernel)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = head([x, tf.constant(y)], training=True)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y), logits)
        )
    gx, gw = tape.gradient(loss, [x, head.kernel])
    return float(loss), gx.numpy(), gw.numpy()


def _partial_fc(name, num_classes, strategy, batch, sample_rate=1.0, **kwargs):
    cls, head_kwargs = HEADS[name]
    return PartialFC(
        cls(num_classes, **head_kwargs),
        D,
        strategy=strategy,
        sample_rate=sample_rate,
        global_batch_size=batch,
        **kwargs,
    )


def _shards(strategy, value):
    n = strategy.num_replicas_in_sync
    size = len(value) // n
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(value[ctx.replica_id_in_sync_group * size :][:size])
    )


def _partial_fc_gradients(pfc, strategy, x, y):
    """(loss, ∂L/∂x [B, D], ∂L/∂W [D, C·K]) as the trainer computes them (loss / N)."""
    n = strategy.num_replicas_in_sync

    def replica(x_local, y_local, y_all):
        var = pfc.shards[pfc.local_index()]
        with tf.GradientTape() as tape:
            tape.watch(x_local)
            loss, _ = pfc(x_local, y_local, global_labels=y_all)
            scaled = loss / n
        gx, gw = tape.gradient(scaled, [x_local, var])
        return loss, gx, tf.convert_to_tensor(gw)

    @tf.function
    def step(x, y, y_all):
        return strategy.run(replica, args=(x, y, y_all))

    loss, gx, gw = step(_shards(strategy, x), _shards(strategy, y), tf.constant(y))
    losses = [float(v) for v in strategy.experimental_local_results(loss)]
    gx = np.concatenate([v.numpy() for v in strategy.experimental_local_results(gx)])
    gw = np.concatenate([v.numpy() for v in strategy.experimental_local_results(gw)])
    gw = gw.reshape(-1, D)[: pfc.num_classes * pfc.centers_per_class].T
    return losses, gx, gw


def _strategy(replicas):
    if replicas == 1:
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    return mirrored_strategy(["/cpu:0", "/cpu:1"])


@pytest.mark.parametrize("name", sorted(HEADS))
def test_r1_equals_full_head_on_one_device(name):
    x, y = _data()
    strategy = _strategy(1)
    pfc = _partial_fc(name, C, strategy, B)
    kernel = np.random.default_rng(1).normal(size=(D, C * pfc.centers_per_class))
    pfc.set_weights(kernel)
    loss, gx, gw = _full_head(name, kernel.astype(np.float32), x, y)
    losses, pgx, pgw = _partial_fc_gradients(pfc, strategy, x, y)
    np.testing.assert_allclose(losses, [loss], rtol=1e-5)
    np.testing.assert_allclose(pgx, gx, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pgw, gw, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["arcface", "combined", "curricularface", "subcenter"])
def test_r1_equals_full_head_on_two_replicas(name):
    x, y = _data(seed=2)
    strategy = _strategy(2)
    pfc = _partial_fc(name, C - 1, strategy, B)  # 9 classes: the second shard is padded
    y = np.minimum(y, C - 2)
    kernel = np.random.default_rng(3).normal(size=(D, (C - 1) * pfc.centers_per_class))
    pfc.set_weights(kernel)
    loss, gx, gw = _full_head(name, kernel.astype(np.float32), x, y)
    losses, pgx, pgw = _partial_fc_gradients(pfc, strategy, x, y)
    np.testing.assert_allclose(losses, [loss, loss], rtol=1e-5)
    np.testing.assert_allclose(pgx, gx, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pgw, gw, rtol=1e-4, atol=1e-6)
