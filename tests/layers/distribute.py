"""tf.distribute helpers for the layer tests (imported lazily: JAX/torch runs skip them)."""


def mirrored_strategy():
    """A 2-CPU MirroredStrategy whose collective keys do not collide with earlier ones.

    Every MirroredStrategy starts its collective group/instance keys at the same values and
    TF caches each collective instance's shape per key, so a second strategy in the same
    process can fail with "Shape mismatch in the collective instance". TF's own tests give
    each strategy a distinct `_collective_key_base`; so does this helper. The base is read
    when the strategy is built and put back afterwards, so a strategy built later without
    the helper (the training tests keep one for the whole process) keeps the default base.
    """
    import tensorflow as tf

    mirrored_strategy.calls += 1
    default = tf.distribute.MirroredStrategy._collective_key_base
    tf.distribute.MirroredStrategy._collective_key_base = 10_000 * mirrored_strategy.calls
    try:
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    finally:
        tf.distribute.MirroredStrategy._collective_key_base = default


mirrored_strategy.calls = 0
