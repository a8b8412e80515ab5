import keras

from tfface.models import count_macs


def test_count_macs_matches_a_hand_count():
    """Hand count for a 10×10×3 input:

    conv 3×3, 8 filters, valid → 8×8×8 outputs × 3·3·3 MACs each = 13,824;
    depthwise 3×3, stride 2, same → 4×4×8 outputs × 9 MACs = 1,152;
    pooling and BN cost nothing; dense 8 → 5 = 40. Total 15,016.
    """
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(8, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    assert count_macs(model) == 13_824 + 1_152 + 40


def test_count_macs_descends_into_nested_models():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(3)(inner_in))
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, keras.layers.Dense(2)(inner(outer_in)))
    assert count_macs(outer) == 4 * 3 + 3 * 2
