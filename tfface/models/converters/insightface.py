"""insightface recognition weights → tfface's `iresnet*` / `mobilefacenet` embedding models.

Sources:

* model-zoo ONNX files (`w600k_r50.onnx`, `glintr100.onnx`, …: arcface_torch networks
  exported by PyTorch). Read with the `onnx` package and mapped by graph structure, not by
  node or initializer names (the exporters name them differently): the data path from the
  input is walked in execution order, residual forks are put in PyTorch's forward order
  (main branch, then shortcut), and the parametric nodes (Conv, BatchNormalization, PRelu,
  Gemm/MatMul) become a list of operations. A Conv with BN folded in by the exporter gives a
  conv + identity BN carrying the bias, which is exact at inference.
* arcface_torch `.pth` state dicts (`model.pt`, `backbone.pth`, or a training checkpoint with
  `state_dict_backbone`), read with NumPy by `read_torch_state_dict`; the tensors are taken
  in state-dict order, which is the modules' forward order for these networks.

The list is then matched, operation by operation with shape checks, against the tfface
architecture it fits: IResNet-18/34/50/100/200 (`build_iresnet`), `mobilefacenet` (which is
arcface_torch's `MobileFaceNet(scale=1, blocks=(1, 4, 6, 2))`), or arcface_torch's
`MobileFaceNet` at scale 2 (`mbf`, the model zoo's `w600k_mbf`) or 4 (`mbf_large`), built
here as `arcface_mobilefacenet_s{2,4}`. The result takes RGB pixels in 0–255, applies
insightface's (x − 127.5) / 127.5 (what `ArcFaceONNX` does outside the graph) and returns
unit embeddings.
"""

import collections
import os

import keras
import numpy as np

from tfface.models.converters.torch_checkpoint import read_torch_state_dict
from tfface.models.converters.weight_setter import WeightSetter

_IRESNET_DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
# tfface mobilefacenet: (expansion, channels, repeats, stride) groups, as in mobilefacenet.py.
_MBF_REPEATS = (5, 1, 6, 1, 2)
_IGNORED_ON_PATH = {"Flatten", "Reshape", "Identity", "Dropout"}


# === source → operation list ===
#
# An operation is a tuple (kind, arrays, origin):
#   ("conv", (W [O, I/g, kh, kw], bias or None), origin)
#   ("bn", (gamma, beta, mean, var), origin)
#   ("prelu", (slope [C],), origin)
#   ("linear", (W [out, in], bias or None), origin)


def _pair(ops):
    """Merges conv/linear + following BN into one "conv_bn"/"linear_bn" operation."""
    merged = []
    i = 0
    while i < len(ops):
        kind, arrays, origin = ops[i]
        if kind in ("conv", "linear"):
            norm = None
            if i + 1 < len(ops) and ops[i + 1][0] == "bn":
                norm = ops[i + 1][1]
                origin = f"{origin} + {ops[i + 1][2]}"
                i += 1
            merged.append((f"{kind}_bn", (*arrays, norm), origin))
        elif kind != "join":
            merged.append((kind, arrays, origin))
        i += 1
    return merged


def _state_dict_ops(path):
    state = read_torch_state_dict(path)
    ops = []
    modules = collections.OrderedDict()
    for name, value in state.items():
        prefix, _, leaf = name.rpartition(".")
        modules.setdefault(prefix, {})[leaf] = value
    for prefix, p in modules.items():
        if "running_mean" in p:
            ops.append(
                ("bn", (p["weight"], p["bias"], p["running_mean"], p["running_var"]), prefix)
            )
        elif "weight" in p and p["weight"].ndim == 4:
            ops.append(("conv", (p["weight"], p.get("bias")), prefix))
        elif "weight" in p and p["weight"].ndim == 2:
            ops.append(("linear", (p["weight"], p.get("bias")), prefix))
        elif "weight" in p and p["weight"].ndim == 1 and set(p) == {"weight"}:
            ops.append(("prelu", (p["weight"],), prefix))
        else:
            raise ValueError(
                f"{path}: cannot place module {prefix!r} with tensors "
                f"{ {k: v.shape for k, v in p.items()} }"
            )
    return ops


def _onnx_ops(path):
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ValueError(
            "Converting .onnx files needs the `onnx` package (in requirements.txt): "
            "pip install onnx"
        ) from None
    try:
        graph = onnx.load(path).graph
    except Exception as e:  # onnx raises DecodeError and others for damaged files.
        raise ValueError(f"{path}: cannot read it as an ONNX model: {e}") from None
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t)

    def data_inputs(node):
        if node.op_type in ("Shape", "Constant", "Gather", "Unsqueeze", "Concat", "Cast"):
            return []  # shape arithmetic feeding a Reshape, not the data path
        return [t for t in node.input[: 2 if node.op_type == "Add" else 1] if t and t not in consts]

    consumers = collections.defaultdict(list)
    for node in graph.node:
        for t in data_inputs(node):
            consumers[t].append(node)
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one image input. Received: {inputs}")

    def chain(node):
        """Nodes from `node` up to (excluding) the next two-input Add or fork."""
        nodes = []
        while len(data_inputs(node)) == 1:
            nodes.append(node)
            nxt = consumers.get(node.output[0], [])
            if len(nxt) != 1:
                return nodes, node.output[0], nxt
            node = nxt[0]
        return nodes, None, [node]

    order = []
    tensor = inputs[0]
    while True:
        nxt = consumers.get(tensor, [])
        if not nxt:
            break
        if len(nxt) == 1:
            nodes, tensor, rest = chain(nxt[0])
            order += nodes
            if tensor is not None:
                if not rest:
                    break
                continue
            join = rest[0]  # a residual Add reached on a straight path: shortcut is identity
            if len(nodes) == 0:
                raise ValueError(f"{path}: unsupported graph structure at {join.name!r}")
            order.append(join)
            tensor = join.output[0]
            continue
        if len(nxt) != 2:
            raise ValueError(f"{path}: a tensor feeds {len(nxt)} nodes; unsupported structure")
        branches = []
        joins = set()
        for node in nxt:
            if len(data_inputs(node)) == 2:
                branches.append([])
                joins.add(node.output[0])
                join = node
                continue
            nodes, end, rest = chain(node)
            if end is not None or len(rest) != 1:
                raise ValueError(f"{path}: nested branches after {node.name!r} are not supported")
            branches.append(nodes)
            joins.add(rest[0].output[0])
            join = rest[0]
        if len(joins) != 1:
            raise ValueError(f"{path}: the two branches from {tensor!r} do not meet in one Add")
        # PyTorch runs the residual branch first, then the shortcut (downsample).
        branches.sort(key=lambda b: -sum(n.op_type == "Conv" for n in b))
        order += branches[0] + branches[1] + [join]
        tensor = join.output[0]

    ops = []
    for node in order:
        op, name = node.op_type, node.name or node.output[0]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        params = [consts.get(t) for t in node.input[1:]]
        if op in ("Sub", "Mul", "Div") and not ops:
            raise ValueError(
                f"{path}: the graph normalises its input itself ({op} at {name!r}), as the "
                "MXNet-converted insightface models do; only PyTorch-exported arcface_torch "
                "graphs are supported"
            )
        if op in ("Conv", "BatchNormalization", "PRelu", "Gemm", "MatMul") and params[0] is None:
            raise ValueError(
                f"{path}: the weights of {op} {name!r} are computed in the graph, not stored as "
                "initializers; export the model with constant folding"
            )
        if op == "Conv":
            ops.append(("conv", (params[0], params[1] if len(params) > 1 else None), name))
        elif op == "BatchNormalization":
            ops.append(("bn", tuple(params[:4]), name))
        elif op == "PRelu":
            ops.append(("prelu", (params[0].reshape(-1),), name))
        elif op == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0:
                raise ValueError(f"{path}: unsupported Gemm attributes {attrs} at {name!r}")
            w = params[0] if attrs.get("transB", 0) else params[0].T
            bias = params[1] * attrs.get("beta", 1.0) if len(params) > 1 else None
            ops.append(("linear", (w, bias), name))
        elif op == "MatMul":
            ops.append(("linear", (params[0].T, None), name))
        elif op == "Add" and len(data_inputs(node)) == 1:
            if not ops or ops[-1][0] != "linear" or ops[-1][1][1] is not None:
                raise ValueError(f"{path}: unexpected bias Add at {name!r}")
            bias = next(p for p in params + [consts.get(node.input[0])] if p is not None)
            ops[-1] = ("linear", (ops[-1][1][0], bias.reshape(-1)), ops[-1][2])
        elif op == "Add":
            # A residual join: no BN after it may pair with a conv before it.
            ops.append(("join", (), name))
        elif op in _IGNORED_ON_PATH:
            pass
        else:
            raise ValueError(f"{path}: unsupported operation {op} at {name!r}")
    return ops


# === tfface architectures as operation plans (PyTorch forward order) ===


def _iresnet_plan(depths):
    plan = [("conv_bn", "stem_conv", "stem_bn"), ("prelu", "stem_prelu")]
    for stage, depth in enumerate(depths):
        for block in range(depth):
            b = f"stage{stage + 1}_block{block}"
            plan += [
                ("bn", f"{b}_bn1"),
                ("conv_bn", f"{b}_conv1", f"{b}_bn2"),
                ("prelu", f"{b}_prelu"),
                ("conv_bn", f"{b}_conv2", f"{b}_bn3"),
            ]
            if block == 0:
                plan.append(("conv_bn", f"{b}_downsample_conv", f"{b}_downsample_bn"))
    plan += [("bn", "head_bn"), ("linear_bn", "head_fc", "embedding_bn", "head_flatten")]
    return plan


def _mbf_plan():
    plan = [("conv_bn", "conv1", "conv1_bn"), ("prelu", "conv1_prelu")]
    plan += [("conv_bn", "conv2_dw", "conv2_dw_bn"), ("prelu", "conv2_dw_prelu")]
    for group, repeats in enumerate(_MBF_REPEATS):
        for i in range(repeats):
            b = f"bottleneck{group}_{i}"
            plan += [
                ("conv_bn", f"{b}_expand", f"{b}_expand_bn"),
                ("prelu", f"{b}_expand_prelu"),
                ("conv_bn", f"{b}_dw", f"{b}_dw_bn"),
                ("prelu", f"{b}_dw_prelu"),
                ("conv_bn", f"{b}_project", f"{b}_project_bn"),
            ]
    plan += [("conv_bn", "conv_last", "conv_last_bn"), ("prelu", "conv_last_prelu")]
    plan += [("conv_bn", "gdc", "gdc_bn"), ("linear_bn", "embedding_conv", "embedding_bn")]
    return plan


def _arcface_mobilefacenet(scale, blocks, image_size, embedding_dim):
    """arcface_torch's `MobileFaceNet(num_features, blocks, scale)` for scale > 1.

    At scale 1 with blocks (1, 4, 6, 2) it is tfface's `mobilefacenet`; at other scales the
    expanded widths stay fixed (128, 256, 512) while the outer widths grow, and the second
    layer is a grouped 3×3 conv (64 groups), so it is built here, with the operation plan in
    forward order. Returns (model, plan).
    """
    plan = []
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="images")

    def conv_bn(x, filters, kernel, strides, name, groups=1, depthwise=False, prelu=True):
        if kernel == 3:  # PyTorch's symmetric padding=1; the GDC kernel is unpadded
            x = keras.layers.ZeroPadding2D(1)(x)
        if depthwise:
            x = keras.layers.DepthwiseConv2D(kernel, strides, use_bias=False, name=name)(x)
        else:
            x = keras.layers.Conv2D(
                filters, kernel, strides, groups=groups, use_bias=False, name=name
            )(x)
        x = keras.layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
        plan.append(("conv_bn", name, f"{name}_bn"))
        if prelu:
            x = keras.layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x)
            plan.append(("prelu", f"{name}_prelu"))
        return x

    def depthwise_block(x, out_c, strides, groups, name, residual):
        y = conv_bn(x, groups, 1, 1, f"{name}_expand")
        y = conv_bn(y, groups, 3, strides, f"{name}_dw", depthwise=True)
        y = conv_bn(y, out_c, 1, 1, f"{name}_project", prelu=False)
        return keras.layers.Add(name=f"{name}_add")([x, y]) if residual else y

    def residual(x, c, count, groups, name):
        for i in range(count):
            x = depthwise_block(x, c, 1, groups, f"{name}_{i}", residual=True)
        return x

    x = conv_bn(inputs, 64 * scale, 3, 2, "conv1")
    if blocks[0] == 1:
        x = conv_bn(x, 64 * scale, 3, 1, "conv2", groups=64)
    else:
        x = residual(x, 64 * scale, blocks[0], 128, "block0")
    x = depthwise_block(x, 64 * scale, 2, 128, "down1", residual=False)
    x = residual(x, 64 * scale, blocks[1], 128, "block1")
    x = depthwise_block(x, 128 * scale, 2, 256, "down2", residual=False)
    x = residual(x, 128 * scale, blocks[2], 256, "block2")
    x = depthwise_block(x, 128 * scale, 2, 512, "down3", residual=False)
    x = residual(x, 128 * scale, blocks[3], 256, "block3")
    x = conv_bn(x, 512, 1, 1, "conv_sep")
    x = conv_bn(x, 512, x.shape[1], 1, "gdc", depthwise=True, prelu=False)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(embedding_dim, use_bias=False, name="embedding_fc")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-5, dtype="float32", name="embedding_bn")(x)
    plan.append(("linear_bn", "embedding_fc", "embedding_bn"))
    name = f"arcface_mobilefacenet_s{scale}"
    return keras.Model(inputs, x, name=name), plan


# arcface_torch's MobileFaceNet configurations: get_mbf (the zoo's w600k_mbf) and get_mbf_large.
_ARCFACE_MBF = ((2, (1, 4, 6, 2)), (4, (2, 8, 12, 4)))


def _kinds(seq):
    return [entry[0] for entry in seq]


def _build(ops, source):
    """The tfface backbone whose operation sequence matches `ops`, and its plan."""
    from tfface.models.iresnet import build_iresnet
    from tfface.models.mobilefacenet import mobilefacenet

    kinds = _kinds(ops)
    weight = ops[-1][1][0]
    dim = int(weight.shape[0])
    for name, depths in _IRESNET_DEPTHS.items():
        plan = _iresnet_plan(depths)
        if _kinds(plan) == kinds:
            side = int(round((weight.shape[1] / 512) ** 0.5))
            if side * side * 512 != weight.shape[1]:
                raise ValueError(f"{source}: IResNet fc input {weight.shape[1]} is not 512·s·s")
            return build_iresnet(depths, side * 16, dim, name=name), plan
    # MobileFaceNet: the GDC kernel [C, 1, k, k] spans the final map (input side 16·k).
    image_size = int(ops[-2][1][0].shape[-1]) * 16
    scale = int(ops[0][1][0].shape[0]) // 64
    if scale == 1 and kinds == _kinds(_mbf_plan()):
        return mobilefacenet(image_size=image_size, embedding_dim=dim), _mbf_plan()
    for mbf_scale, blocks in _ARCFACE_MBF:
        if scale == mbf_scale:
            model, plan = _arcface_mobilefacenet(scale, blocks, image_size, dim)
            if _kinds(plan) == kinds:
                return model, plan
    counts = collections.Counter(kinds)
    raise ValueError(
        f"{source}: the network does not match any supported insightface architecture "
        f"({', '.join(_IRESNET_DEPTHS)}; arcface_torch MobileFaceNet at scale 1, 2 (mbf) or "
        f"4 (mbf_large)). Found {dict(counts)} parametric operations."
    )


def _keras_kernel(layer, w, source_origin, flatten=None):
    """PyTorch conv / linear weight → the layout of Keras `layer`.

    `flatten`: the Keras Flatten layer feeding a Dense, whose input map [H, W, C] PyTorch
    flattened in C, H, W order.
    """
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return w.transpose(2, 3, 0, 1)  # [C, 1, kh, kw] → [kh, kw, C, 1]
    if isinstance(layer, keras.layers.Conv2D):
        if w.ndim == 2:  # a Linear applied to a 1×1 map, held as a 1×1 conv
            return w.T.reshape(1, 1, *w.T.shape)
        return w.transpose(2, 3, 1, 0)  # [O, I, kh, kw] → [kh, kw, I, O]
    if isinstance(layer, keras.layers.Dense):
        if flatten is not None:
            # PyTorch flattens NCHW maps, Keras NHWC: reorder the input columns to match.
            h, wd, c = flatten.input.shape[1:]
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        return w.T
    raise ValueError(f"{source_origin}: no kernel layout for layer type {type(layer).__name__}")


def _assign(backbone, plan, ops, source):
    setter = WeightSetter(backbone, source)
    for step, (entry, (kind, arrays, origin)) in enumerate(zip(plan, ops, strict=True)):
        where = f"operation {step} ({origin})"
        if kind == "prelu":
            setter.set(entry[1], [arrays[0].reshape(1, 1, -1)], where)
        elif kind == "bn":
            setter.set_bn(entry[1], arrays, where)
        else:
            w, bias, norm = arrays
            conv = setter.layer(entry[1])
            flatten = setter.layer(entry[3]) if len(entry) > 3 else None
            kernel = _keras_kernel(conv, w, where, flatten)
            if norm is None:
                eps = setter.layer(entry[2]).epsilon
                channels = w.shape[0]
                # An exporter folded this BN into the conv: an identity BN keeps the layout.
                norm = (
                    None,
                    np.zeros(channels, np.float32),
                    np.zeros(channels, np.float32),
                    np.full(channels, 1.0 - eps, np.float32),
                )
            setter.set_conv_bn(entry[1], entry[2], kernel, norm, bias=bias, origin=where)
    setter.check_complete()


def convert_insightface(src):
    """Converts insightface recognition weights into a tfface embedding model.

    Args:
        src: a model-zoo / arcface_torch `.onnx` file or an arcface_torch `.pth`/`.pt`
            state dict.

    Returns:
        A `keras.Model`: float32 RGB pixels [N, 112, 112, 3] in 0–255 → unit embeddings
        [N, D], built by `tfface.models.build_embedding_model` with "insightface"
        normalisation.
    """
    from tfface.models.embedding_model import build_embedding_model

    src = os.fspath(src)
    if not os.path.isfile(src):
        raise ValueError(f"SRC must be an existing .onnx or .pth file. Received: {src!r}")
    if src.endswith(".onnx"):
        ops = _onnx_ops(src)
    elif src.endswith((".pth", ".pt")):
        ops = _state_dict_ops(src)
    else:
        raise ValueError(f"SRC must end in .onnx, .pth or .pt. Received: {src!r}")
    ops = _pair(ops)
    backbone, plan = _build(ops, src)
    _assign(backbone, plan, ops, src)
    size = backbone.input.shape[1]
    return build_embedding_model(
        backbone, size, backbone.output.shape[-1], normalization="insightface"
    )
