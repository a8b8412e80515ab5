"""dlib's face recognition ResNet (`dlib_resnet_v1`): the network and its weight reader.

dlib's `dlib_face_recognition_resnet_model_v1.dat` is `serialize(net)` of this type, from
`tools/python/src/face_recognition.cpp` / `examples/dnn_face_recognition_ex.cpp`:

    residual      = add_prev1<block<N,BN,1,tag1<SUBNET>>>
    residual_down = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>
    block         = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    ares = relu<residual<block,N,affine>>,  ares_down = relu<residual_down<block,N,affine>>
    anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<
                alevel0<alevel1<alevel2<alevel3<alevel4<
                max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>>

with alevel4 = 3×ares<32>, alevel3 = ares_down<64> + 3×ares<64>, alevel2 = ares_down<128>
+ 2×ares<128>, alevel1 = ares_down<256> + 2×ares<256>, alevel0 = ares_down<256>. `_SPEC`
below is that type written out from the input upwards; the Keras model and the file reader
both walk it, so a layer's Keras name is also where its weights sit in the file.

Layer semantics that a port must reproduce (checked against dlib itself, see
`tools/dlib_parity_worker.py`):

- the input layer maps RGB pixels p to (p − mean_c)/256 with the per-channel means stored in
  the file (122.782, 117.001, 104.298): `tfface.layers.ImageNormalization("dlib")`;
- `con` is a cross-correlation with the padding stored per layer: 0 for the stride-2
  convolutions (so 150 → 72 → 35 → 17 → 8 → 3), 1 for the stride-1 3×3 ones;
- `affine` is batch norm folded for inference, γ·x + β per channel: `ChannelAffine`, which
  holds the weights of a 1×1 depthwise conv with bias and stays trainable for fine-tuning;
- `add_prev` adds tensors of different shapes by zero-extending the smaller one (at the
  bottom/right and in the channels): the 2×2 pooled shortcut of a down block has fewer
  channels, and at 8×8 → 4×4 versus 3×3 also more pixels, than the block's output;
- `avg_pool_everything` is a global mean; `fc_no_bias` a bias-free dense layer whose output
  is the 128-D descriptor (not unit-normalised).
"""

import keras
import numpy as np
from keras import layers
from keras import ops

from tfface.api_export import tfface_export
from tfface.models.registry import register_backbone
from tfface.models.registry import validate_common_args
from tfface.weights.dlib_format import DlibReader


def _block(filters, strides):
    return [
        ("con", filters, 3, strides, "conv1"),
        ("affine", "affine1"),
        ("relu", "relu1"),
        ("con", filters, 3, 1, "conv2"),
        ("affine", "affine2"),
    ]


def _ares(filters):
    return [("tag", 1), *_block(filters, 1), ("add_prev", 1, "add"), ("relu", "out")]


def _ares_down(filters):
    return [
        ("tag", 1),
        *_block(filters, 2),
        ("tag", 2),
        ("skip", 1),
        ("avg_pool", 2, 2, "shortcut_pool"),
        ("add_prev", 2, "add"),
        ("relu", "out"),
    ]


def _spec():
    """[(block name, op)] from the input upwards; ops are tuples whose last item names them."""
    stem = [
        ("con", 32, 7, 2, "conv"),
        ("affine", "affine"),
        ("relu", "relu"),
        ("max_pool", 3, 2, "pool"),
    ]
    blocks = (
        [_ares(32)] * 3
        + [_ares_down(64)]
        + [_ares(64)] * 3
        + [_ares_down(128)]
        + [_ares(128)] * 2
        + [_ares_down(256)]
        + [_ares(256)] * 2
        + [_ares_down(256)]
    )
    spec = [("stem", op) for op in stem]
    for i, ops_ in enumerate(blocks):
        spec += [(f"block{i + 1:02d}", op) for op in ops_]
    spec += [("head", ("avg_pool_everything", "pool")), ("head", ("fc", 128, "fc"))]
    return spec


_SPEC = _spec()
NUM_BLOCKS = sum(1 for block, op in _SPEC if op[-1] == "out")
IMAGE_SIZE = 150
EMBEDDING_DIM = 128


def _layer_name(block, op):
    return f"{block}_{op[-1]}"


# === Keras model ===


@tfface_export("tfface.models.dlib_resnet.ZeroExtendAdd")
class ZeroExtendAdd(keras.layers.Layer):
    """dlib's `add_prev`: the sum of two [N, H, W, C] tensors of possibly different shapes.

    Each input is zero-padded at the bottom, right and in the channels to the larger of the
    two shapes before adding (dlib's `tt::add` treats the missing entries as zeros).

    Call arguments:
        inputs: a list of two tensors [N, H1, W1, C1] and [N, H2, W2, C2] with static sizes.
    """

    def call(self, inputs):
        a, b = inputs
        target = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

        def extend(x):
            pads = [[0, 0]] + [[0, t - s] for s, t in zip(x.shape[1:], target, strict=True)]
            return ops.pad(x, pads) if any(p[1] for p in pads) else x

        return extend(a) + extend(b)

    def compute_output_shape(self, input_shapes):
        a, b = input_shapes
        return (a[0],) + tuple(max(x, y) for x, y in zip(a[1:], b[1:], strict=True))


@tfface_export("tfface.models.dlib_resnet.ChannelAffine")
class ChannelAffine(layers.DepthwiseConv2D):
    """dlib's `affine`, γ·x + β per channel, with the weights of `DepthwiseConv2D(1)`
    (`kernel` [1, 1, C, 1] = γ, `bias` [C] = β) computed as a broadcast multiply-add.

    Why not the depthwise convolution itself: TF 2.21's oneDNN graph rewrite fuses
    DepthwiseConv2dNative + BiasAdd + Add + Relu, the end of every dlib residual block, into
    a node without an op. Each traced call (`predict`, `tf.function`, a SavedModel) then
    logs 16 warning and error lines ("Relu has an empty op name") and Grappler drops its
    optimisation of the whole graph. A multiply-add is the same arithmetic without that
    pattern.

    Args:
        kernel_size, strides, depth_multiplier: must be 1 (kept so that the config and the
            weights are `DepthwiseConv2D`'s); `use_bias` must be True.
        **kwargs: the other `keras.layers.DepthwiseConv2D` arguments (name, trainable, …).
    """

    def __init__(self, kernel_size=1, strides=1, depth_multiplier=1, use_bias=True, **kwargs):
        super().__init__(
            kernel_size,
            strides=strides,
            depth_multiplier=depth_multiplier,
            use_bias=use_bias,
            **kwargs,
        )
        for arg, value, expected in (
            ("kernel_size", self.kernel_size, (1, 1)),
            ("strides", self.strides, (1, 1)),
            ("depth_multiplier", self.depth_multiplier, 1),
            ("use_bias", self.use_bias, True),
        ):
            if value != expected:
                raise ValueError(
                    f"ChannelAffine is a per-channel γ·x + β: `{arg}` must be {expected}. "
                    f"Received: {arg}={value!r}"
                )

    def call(self, inputs):
        return inputs * ops.reshape(self.kernel, (-1,)) + self.bias


def _conv_out(size, kernel, strides, padding):
    return (size + 2 * padding - kernel) // strides + 1


def feature_sizes(image_size):
    """Side of the feature map after the stem and after each block (dlib's size rules)."""
    size = _conv_out(_conv_out(image_size, 7, 2, 0), 3, 2, 0)
    sizes = [size]
    for block, op in _SPEC:
        if op[0] == "avg_pool" and block != "head":
            conv = _conv_out(size, 3, 2, 0)
            if conv < 1:
                return sizes + [0]
            size = max(conv, _conv_out(size, 2, 2, 0))
            sizes.append(size)
    return sizes


# feature_sizes(103) == [24, 12, 6, 3, 1]; at 102 the last block would see a 1×1 map.
MIN_IMAGE_SIZE = 103


def _check_image_size(image_size):
    validate_common_args("dlib_resnet_v1", image_size, EMBEDDING_DIM, min_image_size=1)
    sizes = feature_sizes(image_size)
    if min(sizes) < 1:
        raise ValueError(
            "`image_size` for dlib_resnet_v1 is too small: each of its four stride-2 blocks "
            f"needs at least a 3×3 map (feature sides {sizes}); use >= {MIN_IMAGE_SIZE} "
            f"(dlib: 150). Received: image_size={image_size}"
        )


@register_backbone(normalization="dlib")
def dlib_resnet_v1(
    image_size=IMAGE_SIZE, embedding_dim=EMBEDDING_DIM, trainable_blocks=None, name=None
):
    """dlib's ResNet-29 face embedder (`dlib_face_recognition_resnet_model_v1`).

    Maps images normalised as dlib does ((pixel − channel mean)/256, i.e.
    `ImageNormalization("dlib")`) to unnormalised `embedding_dim` descriptors. With
    `image_size=150` and `embedding_dim=128` it is exactly dlib's network and takes the
    pretrained weights (`tfface.models.load_pretrained("dlib_resnet_v1")`, or
    `load_dlib_weights(model)` on this backbone).

    Args:
        image_size: input side S (dlib: 150; >= 103 so each stride-2 block sees a 3×3 map).
        embedding_dim: output size D (dlib: 128).
        trainable_blocks: for fine-tuning, the number of residual blocks (counted from the
            output; there are 14) left trainable together with the final dense layer; the
            stem and the earlier blocks are frozen. `None` (default) trains everything, 0
            only the dense layer.
        name: model name (default "dlib_resnet_v1").

    Example:
    >>> model = dlib_resnet_v1()
    >>> tuple(model.input.shape), tuple(model.output.shape)
    ((None, 150, 150, 3), (None, 128))

    Reference:
        D. King, "High Quality Face Recognition with Deep Metric Learning", dlib blog, 2017;
        dlib `tools/python/src/face_recognition.cpp`.
    """
    _check_image_size(image_size)
    validate_common_args("dlib_resnet_v1", image_size, embedding_dim, min_image_size=1)
    if trainable_blocks is not None and (
        isinstance(trainable_blocks, bool)
        or not isinstance(trainable_blocks, int)
        or not 0 <= trainable_blocks <= NUM_BLOCKS
    ):
        raise ValueError(
            f"`trainable_blocks` must be None or an int in [0, {NUM_BLOCKS}]. "
            f"Received: trainable_blocks={trainable_blocks!r}"
        )
    first_trainable = 1 if trainable_blocks is None else NUM_BLOCKS - trainable_blocks + 1

    def trainable(block):
        if block == "head":
            return True
        if block == "stem":
            return trainable_blocks is None
        return int(block[len("block") :]) >= first_trainable

    # === Functional Model ===
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = inputs
    tags = {}
    for block, op in _SPEC:
        kind = op[0]
        if kind == "tag":
            tags[op[1]] = x
            continue
        if kind == "skip":
            x = tags[op[1]]
            continue
        name_ = _layer_name(block, op)
        kw = {"name": name_, "trainable": trainable(block)}
        if kind == "con":
            _, filters, kernel, strides, _ = op
            if strides == 1:
                x = layers.ZeroPadding2D(kernel // 2, name=f"{name_}_pad")(x)
            x = layers.Conv2D(filters, kernel, strides=strides, **kw)(x)
        elif kind == "affine":
            x = ChannelAffine(**kw)(x)
        elif kind == "relu":
            x = layers.ReLU(**kw)(x)
        elif kind == "max_pool":
            x = layers.MaxPooling2D(op[1], strides=op[2], **kw)(x)
        elif kind == "avg_pool":
            x = layers.AveragePooling2D(op[1], strides=op[2], **kw)(x)
        elif kind == "add_prev":
            other = tags[op[1]]
            if tuple(other.shape[1:]) == tuple(x.shape[1:]):
                x = layers.Add(**kw)([x, other])
            else:
                x = ZeroExtendAdd(**kw)([x, other])
        elif kind == "avg_pool_everything":
            x = layers.GlobalAveragePooling2D(**kw)(x)
        elif kind == "fc":
            x = layers.Dense(embedding_dim, use_bias=False, dtype="float32", **kw)(x)
    return keras.Model(inputs, x, name=name or "dlib_resnet_v1")


# === Weight file ===


class DlibResnetWeights:
    """What `read_dlib_resnet` finds in a `dlib_face_recognition_resnet_model_v1.dat`.

    Attributes:
        weights: {Keras layer name: list of arrays in `layer.get_weights()` order}.
        mean_rgb: the input layer's per-channel means.
        image_size: the input layer's size (150).
        distance_threshold: the loss layer's `dist_thresh`, the Euclidean distance under
            which two descriptors are the same person (0.6).
        margin: the loss layer's margin (0.04).
    """

    def __init__(self, weights, mean_rgb, image_size, distance_threshold, margin):
        self.weights = weights
        self.mean_rgb = mean_rgb
        self.image_size = image_size
        self.distance_threshold = distance_threshold
        self.margin = margin


def _read_trailer(reader, first):
    # add_layer: this_layer_setup_called, gradient_input_is_stale,
    # get_output_and_gradient_input_disabled, x_grad, cached_output, params_grad
    # (grad_final and sample_expansion_factor for the layer on top of the input layer).
    for _ in range(3):
        reader.read_bool()
    for _ in range(3):
        reader.read_tensor()
    if first:
        reader.read_int()


def _read_con(reader, op):
    _, filters, kernel, strides, _ = op
    reader.expect_string("con_4")
    params = reader.read_tensor().ravel()
    geometry = [reader.read_int() for _ in range(7)]
    padding = kernel // 2 if strides == 1 else 0
    expected = [filters, kernel, kernel, strides, strides, padding, padding]
    if geometry != expected:
        raise reader.error(
            "convolution (num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x) is "
            f"{geometry}, the dlib_resnet_v1 architecture has {expected}"
        )
    f_shape = reader.read_alias_tensor()
    b_shape = reader.read_alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.read_float()
    count = int(np.prod(f_shape))
    if f_shape[0] != filters or b_shape != (1, filters, 1, 1) or params.size != count + filters:
        raise reader.error(f"convolution parameter shapes {f_shape}, {b_shape} do not match")
    # dlib filters are [out, in, rows, cols]; Keras kernels [rows, cols, in, out].
    kernel_ = params[:count].reshape(f_shape).transpose(2, 3, 1, 0)
    return [kernel_, params[count:]]


def _read_affine(reader, channels):
    reader.expect_string("affine_")
    params = reader.read_tensor().ravel()
    gamma_shape = reader.read_alias_tensor()
    beta_shape = reader.read_alias_tensor()
    reader.expect_int(0, "affine mode (0 = per-channel CONV_MODE)")
    if (
        gamma_shape != (1, channels, 1, 1)
        or beta_shape != gamma_shape
        or params.size != 2 * channels
    ):
        raise reader.error(f"affine parameter shapes {gamma_shape}, {beta_shape} do not match")
    # DepthwiseConv2D(1) kernel [1, 1, C, 1] = γ, bias [C] = β.
    return [params[:channels].reshape(1, 1, channels, 1), params[channels:]]


def _read_pool(reader, tag, size, strides):
    reader.expect_string(tag)
    geometry = [reader.read_int() for _ in range(6)]
    expected = [size, size, strides, strides, 0, 0]
    if geometry != expected:
        raise reader.error(f"pooling geometry {geometry}, expected {expected}")


def read_dlib_resnet(data, source="<bytes>"):
    """Parses dlib's serialised `anet_type` (the face recognition ResNet) with NumPy.

    Walks the architecture (`_SPEC`): the loss layer, the nested add_layer/add_tag_layer/
    add_skip_layer versions from the outside in, the input layer, then every layer's
    parameters from the input upwards. Every size, stride and padding in the file is checked
    against the architecture, so a different network raises instead of loading wrongly.

    Args:
        data: the file's bytes.
        source: the file name for error messages.

    Returns:
        A `DlibResnetWeights`.

    Raises:
        DlibFormatError: the bytes are not this network (names the byte offset).
    """
    reader = DlibReader(data, source)
    reader.expect_int(1, "add_loss_layer version")
    reader.expect_string("loss_metric_2")
    margin = reader.read_float()
    distance_threshold = reader.read_float()

    real = [(block, op) for block, op in _SPEC if op[0] not in ("tag", "skip")]
    first = real[0]
    for block, op in reversed(_SPEC):
        if op[0] in ("tag", "skip"):
            reader.expect_int(1, f"add_{op[0]}_layer version")
        else:
            version = 3 if (block, op) == first else 2
            reader.expect_int(version, f"add_layer version of {_layer_name(block, op)}")

    reader.expect_string("input_rgb_image_sized")
    mean_rgb = tuple(reader.read_float() for _ in range(3))
    rows, cols = reader.read_int(), reader.read_int()
    if rows != cols:
        raise reader.error(f"input layer is {rows}×{cols}, expected a square input")

    weights = {}
    channels = 3
    for block, op in real:
        kind, name = op[0], _layer_name(block, op)
        if kind == "con":
            weights[name] = _read_con(reader, op)
            channels = op[1]
        elif kind == "affine":
            weights[name] = _read_affine(reader, channels)
        elif kind == "relu":
            reader.expect_string("relu_")
        elif kind == "max_pool":
            _read_pool(reader, "max_pool_2", op[1], op[2])
        elif kind == "avg_pool":
            _read_pool(reader, "avg_pool_2", op[1], op[2])
        elif kind == "avg_pool_everything":
            _read_pool(reader, "avg_pool_2", 0, 1)
        elif kind == "add_prev":
            reader.expect_string("add_prev_")
        elif kind == "fc":
            reader.expect_string("fc_2")
            outputs, inputs = reader.read_int(), reader.read_int()
            params = reader.read_tensor()
            w_shape = reader.read_alias_tensor()
            reader.read_alias_tensor()
            reader.expect_int(1, "fc bias_mode (1 = FC_NO_BIAS)")
            for _ in range(4):
                reader.read_float()
            if (outputs, inputs) != (op[1], channels) or w_shape != (inputs, outputs, 1, 1):
                raise reader.error(f"fc is {inputs}→{outputs}, expected {channels}→{op[1]}")
            # dlib computes x · W with W [num_inputs, num_outputs]: a Keras Dense kernel.
            weights[name] = [params.reshape(inputs, outputs)]
        _read_trailer(reader, first=(block, op) == first)
    if not reader.at_end():
        raise reader.error("trailing bytes after the network")
    return DlibResnetWeights(weights, mean_rgb, rows, distance_threshold, margin)


def load_dlib_weights(model, weights):
    """Copies a `DlibResnetWeights` into a `dlib_resnet_v1(150, 128)` backbone (in place)."""
    for name, arrays in weights.weights.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.weights]
        if expected != [a.shape for a in arrays]:
            raise ValueError(
                f"Layer {name} of {model.name} has weight shapes {expected}; dlib's file has "
                f"{[a.shape for a in arrays]}. Build the backbone with image_size=150 and "
                "embedding_dim=128."
            )
        layer.set_weights(arrays)
    return model
