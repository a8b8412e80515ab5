"""`make_strategy` / `mirrored_strategy`: several strategies share one process."""

import numpy as np
import pytest
import tensorflow as tf

from tfface.training.strategy import make_strategy
from tfface.training.strategy import mirrored_strategy


def _all_reduce_shapes(strategy, dim):
    # Each strategy all-reduces a tensor of its own shape; TF caches a collective
    # instance's shape by key, so colliding keys fail here.
    @tf.function
    def step():
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce("sum", tf.ones([dim]))

    return strategy.experimental_local_results(strategy.run(step))


@pytest.mark.tensorflow_only
def test_two_mirrored_strategies_in_one_process_all_reduce_different_shapes():
    first = mirrored_strategy(["/cpu:0", "/cpu:1"])
    second = make_strategy("mirrored")
    for strategy, dim in ((first, 3), (second, 5), (first, 3)):
        for value in _all_reduce_shapes(strategy, dim):
            np.testing.assert_array_equal(value.numpy(), np.full([dim], 2.0))


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="strategy='bogus'"):
        make_strategy("bogus")
