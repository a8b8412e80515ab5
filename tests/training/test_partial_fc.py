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


def _step(pfc, strategy, x, y):
    """One forward + sparse update on every replica; returns each shard's sampled rows."""
    n = strategy.num_replicas_in_sync

    def replica(x_local, y_local, y_all):
        var = pfc.shards[pfc.local_index()]
        with tf.GradientTape() as tape:
            loss, _ = pfc(x_local, y_local, global_labels=y_all)
            scaled = loss / n
        grad = tape.gradient(scaled, var)
        pfc.apply(grad.values, grad.indices)
        return grad.indices

    @tf.function
    def step(x, y, y_all):
        return strategy.run(replica, args=(x, y, y_all))

    rows = step(_shards(strategy, x), _shards(strategy, y), tf.constant(y))
    return [r.numpy() for r in strategy.experimental_local_results(rows)]


def _state(pfc):
    return [
        {"w": v.numpy(), **{k: s.numpy() for k, s in slots.items()}}
        for v, slots in zip(pfc.shards, pfc.slots, strict=True)
    ]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_only_sampled_rows_and_slots_change(optimizer):
    num_classes, batch = 40, 4
    strategy = _strategy(2)
    pfc = _partial_fc(
        "arcface",
        num_classes,
        strategy,
        batch,
        sample_rate=0.3,
        optimizer=optimizer,
        weight_decay=0.1,
        learning_rate=0.5,
    )
    assert pfc.num_sampled == 6  # ⌈0.3 · 20⌉ rows of each 20-row shard
    for step in range(3):
        x, y = _data(seed=10 + step, num_classes=num_classes, batch=batch)
        before = _state(pfc)
        rows = _step(pfc, strategy, x, y)
        after = _state(pfc)
        for g, (shard_rows, old, new) in enumerate(zip(rows, before, after, strict=True)):
            assert len(shard_rows) == 6 and len(set(shard_rows)) == 6
            positives = {label - 20 * g for label in y if 20 * g <= label < 20 * (g + 1)}
            assert positives <= set(shard_rows)  # every positive of the global batch kept
            untouched = np.setdiff1d(np.arange(20), shard_rows)
            for name in old:
                np.testing.assert_array_equal(new[name][untouched], old[name][untouched])
                assert not np.array_equal(new[name][shard_rows], old[name][shard_rows]), name


def test_sampling_is_seeded_and_changes_per_step():
    num_classes, batch = 40, 4
    x, y = _data(seed=5, num_classes=num_classes, batch=batch)
    runs = []
    for _ in range(2):
        pfc = _partial_fc("cosface", num_classes, _strategy(1), batch, sample_rate=0.2, seed=7)
        runs.append([_step(pfc, _strategy(1), x, y)[0] for _ in range(2)])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[0][1])  # new negatives each step


def _numpy_arcface_loss(x, y, kernel, classes, scale, margin):
    """Slow reference: ArcFace cross-entropy over the sampled `classes`, explicit loops."""
    total = 0.0
    for i in range(len(y)):
        xi = x[i] / np.linalg.norm(x[i])
        logits = []
        for j in classes:
            wj = kernel[:, j] / np.linalg.norm(kernel[:, j])
            cos = min(max(float(xi @ wj), -1.0), 1.0)
            if j == y[i]:
                theta = np.arccos(cos)
                if theta + margin <= np.pi:
                    cos = np.cos(theta + margin)
                else:  # insightface's fallback past π − m
                    cos = cos - np.sin(np.pi - margin) * margin
            logits.append(scale * cos)
        top = max(logits)
        log_sum = top + np.log(sum(np.exp(v - top) for v in logits))
        total += log_sum - logits[list(classes).index(y[i])]
    return total / len(y)


@pytest.mark.slow
def test_sampled_loss_matches_numpy_reference_on_two_replicas():
    num_classes, batch = 30, 6
    strategy = _strategy(2)
    pfc = _partial_fc("arcface", num_classes, strategy, batch, sample_rate=0.4)
    kernel = np.random.default_rng(4).normal(size=(D, num_classes)).astype(np.float32)
    pfc.set_weights(kernel)
    x, y = _data(seed=6, num_classes=num_classes, batch=batch)

    def replica(x_local, y_local, y_all):
        var = pfc.shards[pfc.local_index()]
        with tf.GradientTape() as tape:
            loss, _ = pfc(x_local, y_local, global_labels=y_all)
        return loss, tape.gradient(loss, var).indices

    loss, rows = tf.function(lambda a, b, c: strategy.run(replica, args=(a, b, c)))(
        _shards(strategy, x), _shards(strategy, y), tf.constant(y)
    )
    rows = strategy.experimental_local_results(rows)
    classes = sorted(int(r) + 15 * g for g, shard in enumerate(rows) for r in shard.numpy())
    assert len(classes) == 2 * pfc.num_sampled and set(y) <= set(classes)
    expected = _numpy_arcface_loss(x, y, kernel, classes, scale=16.0, margin=0.3)
    for value in strategy.experimental_local_results(loss):
        np.testing.assert_allclose(float(value), expected, rtol=1e-5)


@pytest.mark.parametrize("first, second", [(2, 1), (1, 2)])
def test_checkpoint_layout_is_canonical_and_reshards(tmp_path, first, second):
    """A checkpoint holds [C·K, D] centres and slots whatever the replica count."""
    num_classes = 9  # two shards of 5 rows, the last one padded
    saved = _partial_fc("subcenter", num_classes, _strategy(first), 4, optimizer="adamw")
    kernel = np.random.default_rng(8).normal(size=(D, num_classes * 3)).astype(np.float32)
    saved.set_weights(kernel)
    x, y = _data(seed=9, num_classes=num_classes, batch=4)
    _step(saved, _strategy(first), x, y)
    path = tf.train.Checkpoint(head=saved.checkpoint_state).write(str(tmp_path / "ckpt"))
    shapes = dict(tf.train.list_variables(path))
    assert shapes["head/.ATTRIBUTES/centres"] == [num_classes * 3, D]
    assert shapes["head/.ATTRIBUTES/m"] == [num_classes * 3, D]

    restored = _partial_fc("subcenter", num_classes, _strategy(second), 4, optimizer="adamw")
    tf.train.Checkpoint(head=restored.checkpoint_state).read(path).assert_consumed()
    want, got = saved.canonical(), restored.canonical()
    assert set(want) == set(got) == {"centres", "m", "v", "step"}
    for name in want:
        np.testing.assert_array_equal(got[name].numpy(), want[name].numpy())
    assert int(got["step"]) == 1


@pytest.mark.parametrize("chunk_rows", [5, 2])
def test_all_gather_of_shards_equals_the_local_concatenation(chunk_rows):
    """The multi-worker save all-gathers every replica's shard and slots (`_all_gather`),
    in chunks of rows; on two local replicas it must give exactly what the local
    concatenation gives: replica order, chunks put back (5 rows in chunks of 2: 2, 2, 1),
    each slot split back from the joined tensor."""
    num_classes = 9  # two shards of 5 rows, the last one padded
    strategy = _strategy(2)
    pfc = _partial_fc("subcenter", num_classes, strategy, 4, optimizer="adamw")
    pfc.gather_chunk_bytes = chunk_rows * 2 * 3 * (3 * D) * 4  # N · K · (centres, m, v) · D
    x, y = _data(seed=3, num_classes=num_classes, batch=4)
    _step(pfc, strategy, x, y)
    centres, m, v = pfc._all_gather()
    for got, shards in [
        (centres, pfc.shards),
        (m, [slots["m"] for slots in pfc.slots]),
        (v, [slots["v"] for slots in pfc.slots]),
    ]:
        assert got.shape == (10, 3, D)
        np.testing.assert_array_equal(got.numpy(), np.concatenate([s.numpy() for s in shards]))
    assert np.any(v.numpy() != 0)  # the slots were written: not zero on both sides
    want, got = pfc.canonical(), pfc.canonical(force_gather=True)
    assert set(got) == {"centres", "m", "v", "step"}
    for name in want:
        np.testing.assert_array_equal(got[name].numpy(), want[name].numpy())
