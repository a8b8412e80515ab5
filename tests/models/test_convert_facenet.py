"""FaceNet converter: facenet-pytorch state dicts and davidsandberg/facenet TF1 checkpoints.

Parity (marked `parity`, run by `make parity`): facenet-pytorch 2.6.0's own
`InceptionResnetV1` (torch 2.13.0, in .venv-torch-ref) with random weights embeds the same
pixels as the converted tfface model.

The TF1 checkpoint is written here (no davidsandberg checkpoint can be downloaded): the
variable scopes of facenet's `src/models/inception_resnet_v1.py` are rebuilt with
`tf.compat.v1.variable_scope` / `get_variable` in graph mode (including slim.repeat's
`Repeat`, `Repeat_1`, `Repeat_2` scopes and slim's `weights` / `biases` /
`BatchNorm/{beta,moving_mean,moving_variance}` names), and filled, in creation order, with the
facenet-pytorch tensors in state-dict order: the pairing facenet-pytorch's own
`tensorflow2pytorch.py` uses when it imports the released checkpoints. The converted model is
then compared with facenet-pytorch's embeddings. This checks the converter's TF1 names,
layouts and BN handling against facenet-pytorch, through our transcription of facenet's
scopes; it does not check a checkpoint written by facenet's own code.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.models.convert_reference import check_close
from tests.models.convert_reference import run_worker
from tests.models.convert_reference import sample_pixels
from tfface.models.converters.facenet import convert_facenet


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_worker(tmp_path_factory, "facenet_ref", ["facenet"])


@pytest.mark.parity
@pytest.mark.parametrize("filename", ["facenet.pt", "facenet_legacy.pt"])
def test_facenet_pytorch_parity(reference, filename):
    model = convert_facenet(reference / filename)
    ours = model(sample_pixels(160), training=False).numpy()
    check_close(ours, np.load(reference / "facenet_ref.npy"), f"facenet-pytorch {filename}")
    assert model.output.shape[-1] == 512


def _write_tf1_checkpoint(state, prefix):
    """A checkpoint with facenet's TF1 variable names, filled from facenet-pytorch tensors."""
    tf1 = tf.compat.v1
    # facenet-pytorch module prefixes in state-dict order, grouped as slim creates variables.
    torch_units = []
    for name in state:
        unit = name.rsplit(".", 2)[0] if ".bn." in name or ".conv." in name else None
        if name.startswith(("last_linear", "last_bn")):
            unit = "last"
        elif unit is None:
            unit = name.rsplit(".", 1)[0]  # the residual "up" conv (conv2d.weight/bias)
        if not torch_units or torch_units[-1] != unit:
            torch_units.append(unit)
    tf_units = []

    def conv(scope, bn=True):
        with tf1.variable_scope(scope) as vs:
            tf_units.append((vs.name, bn))

    def block35():
        with tf1.variable_scope("Branch_0"):
            conv("Conv2d_1x1")
        with tf1.variable_scope("Branch_1"):
            conv("Conv2d_0a_1x1")
            conv("Conv2d_0b_3x3")
        with tf1.variable_scope("Branch_2"):
            conv("Conv2d_0a_1x1")
            conv("Conv2d_0b_3x3")
            conv("Conv2d_0c_3x3")
        conv("Conv2d_1x1", bn=False)

    def block17_8(k1, k2):
        with tf1.variable_scope("Branch_0"):
            conv("Conv2d_1x1")
        with tf1.variable_scope("Branch_1"):
            conv("Conv2d_0a_1x1")
            conv(f"Conv2d_0b_{k1}")
            conv(f"Conv2d_0c_{k2}")
        conv("Conv2d_1x1", bn=False)

    def repeat(n, name, body):
        with tf1.variable_scope(None, default_name="Repeat"):
            for i in range(n):
                with tf1.variable_scope(f"{name}_{i + 1}"):
                    body()

    graph = tf.Graph()
    with graph.as_default(), tf1.variable_scope("InceptionResnetV1"):
        for scope in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1"):
            conv(scope)
        conv("Conv2d_4a_3x3")
        conv("Conv2d_4b_3x3")
        repeat(5, "block35", block35)
        with tf1.variable_scope("Mixed_6a"):
            with tf1.variable_scope("Branch_0"):
                conv("Conv2d_1a_3x3")
            with tf1.variable_scope("Branch_1"):
                conv("Conv2d_0a_1x1")
                conv("Conv2d_0b_3x3")
                conv("Conv2d_1a_3x3")
        repeat(10, "block17", lambda: block17_8("1x7", "7x1"))
        with tf1.variable_scope("Mixed_7a"):
            for branch, convs in (
                ("Branch_0", ("Conv2d_0a_1x1", "Conv2d_1a_3x3")),
                ("Branch_1", ("Conv2d_0a_1x1", "Conv2d_1a_3x3")),
                ("Branch_2", ("Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3")),
            ):
                with tf1.variable_scope(branch):
                    for c in convs:
                        conv(c)
        repeat(5, "block8", lambda: block17_8("1x3", "3x1"))
        with tf1.variable_scope(None, default_name="Block8"):
            block17_8("1x3", "3x1")
        conv("Bottleneck")
    assert len(tf_units) == len(torch_units), (len(tf_units), len(torch_units))

    with graph.as_default():
        variables = []
        for (scope, bn), unit in zip(tf_units, torch_units, strict=True):
            if unit == "last":
                values = {"weights": state["last_linear.weight"].T}
                bn_prefix = "last_bn"
            elif bn:
                values = {"weights": state[f"{unit}.conv.weight"].transpose(2, 3, 1, 0)}
                bn_prefix = f"{unit}.bn"
            else:
                values = {
                    "weights": state[f"{unit}.weight"].transpose(2, 3, 1, 0),
                    "biases": state[f"{unit}.bias"],
                }
            if bn:
                values["BatchNorm/beta"] = state[f"{bn_prefix}.bias"]
                values["BatchNorm/moving_mean"] = state[f"{bn_prefix}.running_mean"]
                values["BatchNorm/moving_variance"] = state[f"{bn_prefix}.running_var"]
            for leaf, value in values.items():
                variables.append(
                    tf1.get_variable(
                        f"{scope}/{leaf}", initializer=tf.constant(value.astype(np.float32))
                    )
                )
        # Variables a real facenet checkpoint also holds, which the converter must ignore.
        tf1.get_variable("Logits/weights", initializer=tf.zeros([512, 10]))
        tf1.get_variable("global_step", initializer=tf.constant(275, tf.int64))
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return saver.save(sess, prefix, global_step=275), [v.name for v in variables]


@pytest.mark.parity
def test_tf1_checkpoint_parity(reference, tmp_path):
    state = dict(np.load(reference / "facenet_tf1_state.npz"))
    path, names = _write_tf1_checkpoint(state, str(tmp_path / "model-20180402-114759.ckpt"))
    assert "InceptionResnetV1/Repeat_1/block17_10/Branch_1/Conv2d_0c_7x1/weights:0" in names
    assert "InceptionResnetV1/Block8/Conv2d_1x1/biases:0" in names
    # SRC as the folder, as users unpack facenet's release.
    model = convert_facenet(tmp_path)
    ours = model(sample_pixels(160), training=False).numpy()
    check_close(ours, np.load(reference / "facenet_tf1_ref.npy"), "facenet TF1 checkpoint")
    assert path.endswith("-275")


def test_rejects_other_files(tmp_path):
    bad = tmp_path / "weights.pb"
    bad.write_bytes(b"\0")
    with pytest.raises(ValueError, match="frozen graphs"):
        convert_facenet(bad)
    with pytest.raises(ValueError, match="SRC must be"):
        convert_facenet(tmp_path / "missing")
