"""FaceNet weights → tfface's `inception_resnet_v1` embedding model.

Two sources, both Inception-ResNet-v1 with the same layers:

* facenet-pytorch `InceptionResnetV1` state dicts (`20180402-114759-vggface2.pt`,
  `20180408-102900-casia-webface.pt`, or any `model.state_dict()`), read with NumPy by
  `read_torch_state_dict` (PyTorch is not needed);
* davidsandberg/facenet TF1 checkpoints (`model-20180402-114759.ckpt-275.index/.data-*`),
  read by TensorFlow's checkpoint reader under the variable names of facenet's
  `src/models/inception_resnet_v1.py` (`InceptionResnetV1/Repeat/block35_1/Branch_0/
  Conv2d_1x1/weights`, …). SRC may be the prefix, the `.index` file or the model folder.

The result takes pixels in 0–255, applies facenet's `(x − 127.5) / 128` and returns unit
embeddings (512-D for the 2018 models, 128-D for the 2017 ones; read from the file).
facenet-pytorch's BN scales (γ) are 1 in the released weights (facenet's slim BNs have none);
any other γ is folded into the preceding kernel, which is exact at inference.
"""

import glob
import os

from tfface.models.converters.torch_checkpoint import read_torch_state_dict
from tfface.models.converters.weight_setter import WeightSetter

_TF_ROOT = "InceptionResnetV1"

# (keras suffix, facenet-pytorch sub-module, facenet TF1 scope) per conv unit of each block.
_BLOCK35 = (
    ("b0_1x1", "branch0", "Branch_0/Conv2d_1x1"),
    ("b1_1x1", "branch1.0", "Branch_1/Conv2d_0a_1x1"),
    ("b1_3x3", "branch1.1", "Branch_1/Conv2d_0b_3x3"),
    ("b2_1x1", "branch2.0", "Branch_2/Conv2d_0a_1x1"),
    ("b2_3x3a", "branch2.1", "Branch_2/Conv2d_0b_3x3"),
    ("b2_3x3b", "branch2.2", "Branch_2/Conv2d_0c_3x3"),
)
_BLOCK17 = (
    ("b0_1x1", "branch0", "Branch_0/Conv2d_1x1"),
    ("b1_1x1", "branch1.0", "Branch_1/Conv2d_0a_1x1"),
    ("b1_1x7", "branch1.1", "Branch_1/Conv2d_0b_1x7"),
    ("b1_7x1", "branch1.2", "Branch_1/Conv2d_0c_7x1"),
)
_BLOCK8 = (
    ("b0_1x1", "branch0", "Branch_0/Conv2d_1x1"),
    ("b1_1x1", "branch1.0", "Branch_1/Conv2d_0a_1x1"),
    ("b1_1x3", "branch1.1", "Branch_1/Conv2d_0b_1x3"),
    ("b1_3x1", "branch1.2", "Branch_1/Conv2d_0c_3x1"),
)
_MIXED_6A = (
    ("b0_3x3", "branch0", "Branch_0/Conv2d_1a_3x3"),
    ("b1_1x1", "branch1.0", "Branch_1/Conv2d_0a_1x1"),
    ("b1_3x3a", "branch1.1", "Branch_1/Conv2d_0b_3x3"),
    ("b1_3x3b", "branch1.2", "Branch_1/Conv2d_1a_3x3"),
)
_MIXED_7A = (
    ("b0_1x1", "branch0.0", "Branch_0/Conv2d_0a_1x1"),
    ("b0_3x3", "branch0.1", "Branch_0/Conv2d_1a_3x3"),
    ("b1_1x1", "branch1.0", "Branch_1/Conv2d_0a_1x1"),
    ("b1_3x3", "branch1.1", "Branch_1/Conv2d_1a_3x3"),
    ("b2_1x1", "branch2.0", "Branch_2/Conv2d_0a_1x1"),
    ("b2_3x3a", "branch2.1", "Branch_2/Conv2d_0b_3x3"),
    ("b2_3x3b", "branch2.2", "Branch_2/Conv2d_1a_3x3"),
)
_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")


def _units():
    """Yields (kind, keras conv name, facenet-pytorch prefix, TF1 scope) for every layer.

    kind is "conv_bn" (bias-free conv + BN), "up" (the residual 1×1 conv with a bias) or
    "bottleneck" (bias-free dense + BN).
    """
    for name in (*_STEM, "Conv2d_4b_3x3"):
        torch_name = "conv2d_" + name.split("_")[1]
        yield "conv_bn", name, torch_name, name
    blocks = (
        (5, "Repeat_block35", "repeat_1", "Repeat/block35", _BLOCK35),
        (10, "Repeat_1_block17", "repeat_2", "Repeat_1/block17", _BLOCK17),
        (5, "Repeat_2_block8", "repeat_3", "Repeat_2/block8", _BLOCK8),
    )
    for count, keras_prefix, torch_prefix, tf_prefix, table in blocks:
        for i in range(count):
            k, t, s = f"{keras_prefix}_{i + 1}", f"{torch_prefix}.{i}", f"{tf_prefix}_{i + 1}"
            for suffix, torch_sub, tf_sub in table:
                yield "conv_bn", f"{k}_{suffix}", f"{t}.{torch_sub}", f"{s}/{tf_sub}"
            yield "up", f"{k}_up", f"{t}.conv2d", f"{s}/Conv2d_1x1"
        if keras_prefix == "Repeat_block35":
            for suffix, torch_sub, tf_sub in _MIXED_6A:
                yield "conv_bn", f"Mixed_6a_{suffix}", f"mixed_6a.{torch_sub}", f"Mixed_6a/{tf_sub}"
        if keras_prefix == "Repeat_1_block17":
            for suffix, torch_sub, tf_sub in _MIXED_7A:
                yield "conv_bn", f"Mixed_7a_{suffix}", f"mixed_7a.{torch_sub}", f"Mixed_7a/{tf_sub}"
    for suffix, torch_sub, tf_sub in _BLOCK8:
        yield "conv_bn", f"Mixed_8b_{suffix}", f"block8.{torch_sub}", f"Block8/{tf_sub}"
    yield "up", "Mixed_8b_up", "block8.conv2d", "Block8/Conv2d_1x1"
    yield "bottleneck", "Bottleneck", "last", "Bottleneck"


class _TorchSource:
    """facenet-pytorch names; tensors transposed to the Keras layout."""

    def __init__(self, path):
        self.path = path
        self.state = read_torch_state_dict(path)
        if "last_linear.weight" not in self.state:
            raise ValueError(
                f"{path}: not a facenet-pytorch InceptionResnetV1 state dict (no "
                f"'last_linear.weight'). First keys: {list(self.state)[:5]}"
            )

    def get(self, name):
        try:
            return self.state[name]
        except KeyError:
            raise ValueError(f"{self.path}: missing tensor {name!r}") from None

    def embedding_dim(self):
        return int(self.get("last_linear.weight").shape[0])

    def unit(self, kind, prefix):
        if kind == "bottleneck":
            bn = "last_bn"
            kernel = self.get("last_linear.weight").T
        elif kind == "up":
            w = self.get(f"{prefix}.weight").transpose(2, 3, 1, 0)
            return (w, self.get(f"{prefix}.bias")), f"{prefix}.*"
        else:
            bn = f"{prefix}.bn"
            kernel = self.get(f"{prefix}.conv.weight").transpose(2, 3, 1, 0)
        norm = tuple(
            self.get(f"{bn}.{k}") for k in ("weight", "bias", "running_mean", "running_var")
        )
        return (kernel, norm), f"{prefix}.*"


class _TF1Source:
    """davidsandberg/facenet variable names; TF kernels are already HWIO / [in, out]."""

    def __init__(self, path):
        import tensorflow as tf

        self.path = path
        try:
            self.reader = tf.train.load_checkpoint(path)
        except Exception as e:  # TF raises several types for unreadable checkpoints.
            raise ValueError(f"{path}: cannot read it as a TensorFlow checkpoint: {e}") from None
        self.names = set(self.reader.get_variable_to_shape_map())
        if f"{_TF_ROOT}/Bottleneck/weights" not in self.names:
            raise ValueError(
                f"{path}: not a davidsandberg/facenet inception_resnet_v1 checkpoint (no "
                f"'{_TF_ROOT}/Bottleneck/weights'). Some variables: {sorted(self.names)[:5]}"
            )

    def get(self, name):
        full = f"{_TF_ROOT}/{name}"
        if full not in self.names:
            raise ValueError(f"{self.path}: missing variable {full!r}")
        return self.reader.get_tensor(full)

    def embedding_dim(self):
        return int(self.get("Bottleneck/weights").shape[1])

    def unit(self, kind, scope):
        if kind == "up":
            return (self.get(f"{scope}/weights"), self.get(f"{scope}/biases")), scope
        # slim.batch_norm in facenet has no γ (scale=False).
        norm = (
            None,
            *(
                self.get(f"{scope}/BatchNorm/{k}")
                for k in ("beta", "moving_mean", "moving_variance")
            ),
        )
        return (self.get(f"{scope}/weights"), norm), scope


def _resolve_tf1_prefix(src):
    """A checkpoint prefix from a prefix, an `.index`/`.data-*`/`.meta` file or a folder."""
    if os.path.isdir(src):
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(src)
        if latest:
            return latest
        indexes = sorted(glob.glob(os.path.join(src, "*.index")))
        if len(indexes) != 1:
            raise ValueError(
                f"{src}: expected one TF checkpoint (*.index) in the folder. Found: "
                f"{[os.path.basename(p) for p in indexes]}"
            )
        return indexes[0][: -len(".index")]
    for suffix in (".index", ".meta"):
        if src.endswith(suffix):
            return src[: -len(suffix)]
    if ".data-" in os.path.basename(src):
        return src[: src.rindex(".data-")]
    return src


def _open_source(src):
    src = os.fspath(src)
    if os.path.isfile(src) and src.endswith((".pt", ".pth")):
        return _TorchSource(src)
    if src.endswith(".pb"):
        raise ValueError(
            f"{src}: frozen graphs (.pb) are not supported; convert the checkpoint next to it "
            "(model-*.ckpt-*.index and .data-*) instead."
        )
    prefix = _resolve_tf1_prefix(src)
    if not os.path.isfile(prefix + ".index"):
        raise ValueError(
            "SRC must be a facenet-pytorch state dict (.pt/.pth) or a davidsandberg/facenet TF1 "
            f"checkpoint (prefix, .index file or model folder). Received: {src!r}"
        )
    return _TF1Source(prefix)


def convert_facenet(src, image_size=160):
    """Converts FaceNet weights into a tfface embedding model.

    Args:
        src: a facenet-pytorch `InceptionResnetV1` state dict (`.pt`/`.pth`) or a
            davidsandberg/facenet TF1 checkpoint (prefix, `.index` file or folder).
        image_size: input side S (facenet: 160).

    Returns:
        A `keras.Model`: float32 pixels [N, S, S, 3] in 0–255 (RGB) → unit embeddings [N, D],
        built by `tfface.models.build_embedding_model` with "facenet" normalisation.
    """
    from tfface.models.embedding_model import build_embedding_model
    from tfface.models.inception_resnet_v1 import inception_resnet_v1

    source = _open_source(src)
    dim = source.embedding_dim()
    backbone = inception_resnet_v1(image_size=image_size, embedding_dim=dim)
    setter = WeightSetter(backbone, source.path)
    for kind, keras_name, torch_name, tf_name in _units():
        key = torch_name if isinstance(source, _TorchSource) else tf_name
        arrays, origin = source.unit(kind, key)
        if kind == "up":
            setter.set(keras_name, arrays, origin)
        else:
            kernel, norm = arrays
            setter.set_conv_bn(keras_name, f"{keras_name}_bn", kernel, norm, origin=origin)
    setter.check_complete()
    return build_embedding_model(backbone, image_size, dim, normalization="facenet")
