"""The graph-size checker behind every `test_memory_is_quadratic` can fail."""

import keras
import pytest

from tests.losses import utils

B, D = 512, 16


@pytest.mark.tensorflow_only
def test_flags_a_cubic_tensor():
    def cubic(labels, embeddings):
        gram = keras.ops.matmul(embeddings, keras.ops.transpose(embeddings))
        return keras.ops.mean(keras.ops.tile(gram, [B, 1]))

    largest, _ = utils.max_intermediate_elements(cubic, B, D)
    assert largest > 4 * B * B


@pytest.mark.tensorflow_only
def test_counts_a_differentiated_loop_per_step():
    """A while loop that keeps a [B, B] activation per step is counted as B·B²."""

    def differentiated_loop(labels, embeddings):
        gram = keras.ops.matmul(embeddings, keras.ops.transpose(embeddings))

        def body(i, total):
            return total + keras.ops.sum(keras.ops.sin(gram * keras.ops.cast(i, "float32")))

        return keras.ops.fori_loop(0, 8, body, keras.ops.zeros(()))

    largest, _ = utils.max_intermediate_elements(differentiated_loop, B, D)
    assert largest > 4 * B * B
