import numpy as np
import pytest

from tfface.models import create_backbone


def test_size_is_cpu_friendly():
    model = create_backbone("small_cnn", image_size=64, embedding_dim=128)
    assert 0.1e6 <= model.count_params() <= 0.3e6
    # Four stride-2 stages: 64 → 4 before pooling.
    assert tuple(model.get_layer("stage4_conv_relu").output.shape) == (None, 4, 4, 96)


def test_trains_on_a_separable_toy_problem():
    """Two constant-colour classes: a few SGD steps must pull the embeddings apart."""
    import keras

    keras.utils.set_random_seed(0)
    model = create_backbone("small_cnn", image_size=16, embedding_dim=2)
    x = np.concatenate([np.full((8, 16, 16, 3), -1.0), np.full((8, 16, 16, 3), 1.0)])
    x = x.astype("float32") + np.random.default_rng(0).normal(0, 0.1, x.shape).astype("float32")
    y = np.concatenate([np.tile([1.0, 0.0], (8, 1)), np.tile([0.0, 1.0], (8, 1))])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    history = model.fit(x, y.astype("float32"), batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_bad_widths_raise():
    with pytest.raises(ValueError, match="widths.*Received: widths=\\(32, 0\\)"):
        create_backbone("small_cnn", widths=(32, 0))
