"""tf.distribute helpers for the layer tests (imported lazily: JAX/torch runs skip them)."""


def mirrored_strategy():
    """A 2-CPU MirroredStrategy whose collective keys do not collide with earlier ones."""
    from tfface.training.strategy import mirrored_strategy as make

    return make(["/cpu:0", "/cpu:1"])
