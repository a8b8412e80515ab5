"""export_saved_model: signatures agree with Keras, layout, versions, atomic publication."""

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfface.export import existing_versions
from tfface.export import export_saved_model
from tfface.export import saved_model as saved_model_lib

from .helpers import EMBEDDING_DIM
from .helpers import IMAGE_SIZE
from .helpers import THRESHOLD
from .helpers import make_embedding_model
from .helpers import make_images
from .helpers import png_bytes
from .helpers import run_in_session_loader

ATOL = 1e-5
_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _keras_embeddings(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


_png = png_bytes


def _hidden_entries(model_dir):
    return [e for e in os.listdir(model_dir) if e.startswith(".")]


# --- signatures, in this process ------------------------------------------------------
def test_serving_default_matches_keras(exported):
    model, path = exported
    loaded = tf.saved_model.load(path)
    images = make_images(5, seed=1)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    assert set(out) == {"embeddings"}
    assert out["embeddings"].dtype == tf.float32
    np.testing.assert_allclose(
        out["embeddings"].numpy(), _keras_embeddings(model, images), atol=ATOL
    )
    np.testing.assert_allclose(np.linalg.norm(out["embeddings"].numpy(), axis=-1), 1.0, atol=1e-5)


def test_embed_jpeg_decodes_and_resizes_in_graph(exported):
    model, path = exported
    loaded = tf.saved_model.load(path)
    embed_jpeg = loaded.signatures["embed_jpeg"]
    images = make_images(3, seed=2)

    # Lossless PNG at the model's size: the in-graph resize is the identity.
    out = embed_jpeg(images=tf.constant([_png(im) for im in images]))["embeddings"].numpy()
    np.testing.assert_allclose(out, _keras_embeddings(model, images), atol=ATOL)

    # A grayscale PNG is expanded to three equal channels (channels=3 in decode_image).
    gray = images[0, :, :, :1]
    out = embed_jpeg(images=tf.constant([_png(gray)]))["embeddings"].numpy()
    expected = _keras_embeddings(model, np.repeat(gray[None], 3, axis=-1))
    np.testing.assert_allclose(out, expected, atol=ATOL)

    # A 4S x 4S JPEG of a linear ramp, resized to S x S in the graph, embeds like the same
    # ramp drawn directly at S x S (averaging a linear ramp reproduces it at the pixel
    # centres; JPEG error and the clamped border leave a small difference).
    def ramp_image(n):
        centres = (np.arange(n, dtype=np.float32) + 0.5) * 255.0 / n
        rows, cols = np.meshgrid(centres, centres, indexing="ij")
        return np.stack([rows, cols, np.full_like(rows, 128.0)], axis=-1)

    big = ramp_image(4 * IMAGE_SIZE)
    jpeg = tf.io.encode_jpeg(np.round(big).astype(np.uint8), quality=100).numpy()
    out = embed_jpeg(images=tf.constant([jpeg, jpeg]))["embeddings"].numpy()
    np.testing.assert_allclose(out[0], out[1], atol=ATOL)
    expected = _keras_embeddings(model, ramp_image(IMAGE_SIZE)[None])
    # Measured 3.7e-3; a transposed, channel-swapped or cropped decode is off by >= 2.9e-2.
    np.testing.assert_allclose(out[:1], expected, atol=1e-2)


def test_verify_similarity_and_threshold(exported):
    model, path = exported
    loaded = tf.saved_model.load(path)
    a, b = make_images(4, seed=3), make_images(4, seed=4)
    b[0] = a[0]  # one identical pair: similarity 1, same person
    out = loaded.signatures["verify"](images_a=tf.constant(a), images_b=tf.constant(b))
    assert set(out) == {"similarity", "same_person", "threshold"}
    ea, eb = _keras_embeddings(model, a), _keras_embeddings(model, b)
    expected = np.array([np.dot(ea[i], eb[i]) for i in range(4)])
    np.testing.assert_allclose(out["similarity"].numpy(), expected, atol=ATOL)
    np.testing.assert_allclose(out["similarity"].numpy()[0], 1.0, atol=ATOL)
    assert out["same_person"].dtype == tf.bool
    np.testing.assert_array_equal(out["same_person"].numpy(), expected >= THRESHOLD)
    np.testing.assert_allclose(out["threshold"].numpy(), np.full(4, THRESHOLD), atol=1e-7)
    np.testing.assert_allclose(loaded.threshold.numpy(), THRESHOLD, atol=1e-7)


def test_session_loader_runs_every_signature(exported):
    """TF Serving loads with the TF1 session loader, not `tf.saved_model.load`: emulate it."""
    model, path = exported
    a, b = make_images(3, seed=9), make_images(3, seed=10)
    feeds_by_signature = {
        "serving_default": {"images": a},
        "embed_jpeg": {"images": np.array([_png(im) for im in a], dtype=object)},
        "verify": {"images_a": a, "images_b": b},
    }
    results = run_in_session_loader(path, feeds_by_signature)
    ea, eb = _keras_embeddings(model, a), _keras_embeddings(model, b)
    np.testing.assert_allclose(results["serving_default"]["embeddings"], ea, atol=ATOL)
    np.testing.assert_allclose(results["embed_jpeg"]["embeddings"], ea, atol=ATOL)
    np.testing.assert_allclose(results["verify"]["similarity"], np.sum(ea * eb, -1), atol=ATOL)
    np.testing.assert_array_equal(
        results["verify"]["same_person"], np.sum(ea * eb, -1) >= THRESHOLD
    )


def test_signature_defs_have_documented_shapes(exported):
    """The SignatureDefs in saved_model.pb, i.e. what TF Serving's metadata API reports."""
    from tensorflow.core.protobuf import saved_model_pb2

    _, path = exported
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    (meta_graph,) = proto.meta_graphs
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    S, D = IMAGE_SIZE, EMBEDDING_DIM

    def spec(tensor_info):
        dims = tuple(d.size for d in tensor_info.tensor_shape.dim)
        return tf.dtypes.as_dtype(tensor_info.dtype).name, dims

    expected = {
        "serving_default": (
            {"images": ("float32", (-1, S, S, 3))},
            {"embeddings": ("float32", (-1, D))},
        ),
        "embed_jpeg": ({"images": ("string", (-1,))}, {"embeddings": ("float32", (-1, D))}),
        "verify": (
            {"images_a": ("float32", (-1, S, S, 3)), "images_b": ("float32", (-1, S, S, 3))},
            {
                "similarity": ("float32", (-1,)),
                "same_person": ("bool", (-1,)),
                "threshold": ("float32", (-1,)),
            },
        ),
    }
    signatures = meta_graph.signature_def
    assert sorted(k for k in signatures if not k.startswith("__")) == sorted(expected)
    for key, (inputs, outputs) in expected.items():
        assert {k: spec(v) for k, v in signatures[key].inputs.items()} == inputs, key
        assert {k: spec(v) for k, v in signatures[key].outputs.items()} == outputs, key
        assert signatures[key].method_name == "tensorflow/serving/predict"

    # Python callbacks cannot run in TF Serving (facenet #754): none may be in any graph.
    ops = {node.op for node in meta_graph.graph_def.node}
    for function in meta_graph.graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}, sorted(ops)
    # The scan reaches inside the signature functions, so the check above is not vacuous.
    assert "DecodeImage" in ops, sorted(ops)


def test_verify_rejects_mismatched_batches(exported):
    _, path = exported
    loaded = tf.saved_model.load(path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
        loaded.signatures["verify"](
            images_a=tf.constant(make_images(2)), images_b=tf.constant(make_images(1))
        )


def test_signatures_reject_wrong_image_size(exported):
    _, path = exported
    loaded = tf.saved_model.load(path)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"images must be \\[N, {IMAGE_SIZE}"):
        loaded.signatures["serving_default"](
            images=tf.zeros([1, IMAGE_SIZE + 1, IMAGE_SIZE + 1, 3])
        )


def test_no_threshold_exports_no_verify(model, tmp_path):
    path = export_saved_model(model, str(tmp_path), name="faces")
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["embed_jpeg", "serving_default"]
    assert getattr(loaded, "threshold", None) is None


# Under float16, Keras's own UnitNormalization (ops.normalize with epsilon=1e-12) triggers
# numpy's "overflow encountered in cast" while tracing; its outputs are still unit vectors,
# and a float16 model output is exactly what this test needs.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_mixed_precision_model_exports_float32(tmp_path):
    """A mixed_float16 model outputs float16 embeddings; the signatures still give float32."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = make_embedding_model()
    finally:
        keras.config.set_dtype_policy(previous)
    path = export_saved_model(model, str(tmp_path), threshold=0.0)
    loaded = tf.saved_model.load(path)
    images = make_images(2)
    out = loaded.signatures["serving_default"](images=tf.constant(images))["embeddings"]
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), _keras_embeddings(model, images), atol=ATOL)


def test_model_trained_under_mirrored_strategy(tmp_path):
    """Training helpers export models whose variables are MirroredVariables."""
    from tests.layers.distribute import mirrored_strategy

    strategy = mirrored_strategy()
    with strategy.scope():
        model = make_embedding_model()
        model.compile(optimizer="sgd", loss="mse")
    images = make_images(8)
    model.fit(images, np.ones((8, EMBEDDING_DIM), "float32"), batch_size=4, verbose=0)
    path = export_saved_model(model, str(tmp_path), threshold=THRESHOLD)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        out = sess.run(
            signature.outputs["embeddings"].name, {signature.inputs["images"].name: images}
        )
    np.testing.assert_allclose(out, _keras_embeddings(model, images), atol=ATOL)


# --- layout, versions, atomicity ---------------------------------------------------------
def test_layout_and_version_numbering(model, tmp_path):
    base = str(tmp_path)
    first = export_saved_model(model, base, name="faces")
    second = export_saved_model(model, base, name="faces")
    assert first == os.path.join(base, "faces", "1")
    assert second == os.path.join(base, "faces", "2")
    for path in (first, second):
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isdir(os.path.join(path, "variables"))
        assert os.path.isfile(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    # Non-numeric entries are not versions; numbering continues after the largest number.
    os.mkdir(os.path.join(base, "faces", "notes"))
    assert export_saved_model(model, base, name="faces", version=10).endswith("10")
    assert export_saved_model(model, base, name="faces").endswith("11")
    assert existing_versions(os.path.join(base, "faces")) == [1, 2, 10, 11]
    assert _hidden_entries(os.path.join(base, "faces")) == []


def test_existing_version_is_refused_unless_overwrite(model, tmp_path):
    base = str(tmp_path)
    path = export_saved_model(model, base, name="faces", version=3, threshold=0.1)
    with pytest.raises(FileExistsError, match=f"{path} already exists"):
        export_saved_model(model, base, name="faces", version=3, threshold=0.9)
    assert tf.saved_model.load(path).threshold.numpy() == pytest.approx(0.1)

    assert export_saved_model(model, base, name="faces", version=3, threshold=0.9, overwrite=True)
    assert tf.saved_model.load(path).threshold.numpy() == pytest.approx(0.9)
    assert os.listdir(os.path.join(base, "faces")) == ["3"]


def test_failed_save_leaves_no_partial_version(model, tmp_path):
    base = str(tmp_path)
    model_dir = os.path.join(base, "faces")
    real_save = tf.saved_model.save

    def save_then_fail(obj, export_dir, signatures=None, options=None):
        real_save(obj, export_dir, signatures=signatures, options=options)
        raise OSError("disk full (simulated)")

    with mock.patch.object(tf.saved_model, "save", side_effect=save_then_fail):
        with pytest.raises(OSError, match="simulated"):
            export_saved_model(model, base, name="faces")
    assert os.listdir(model_dir) == []

    # A failure after the SavedModel is complete (warmup writing) also publishes nothing.
    with mock.patch.object(
        saved_model_lib.warmup, "write_warmup_requests", side_effect=OSError("simulated")
    ):
        with pytest.raises(OSError, match="simulated"):
            export_saved_model(model, base, name="faces")
    assert os.listdir(model_dir) == []
    assert existing_versions(model_dir) == []


def test_version_dir_appears_only_when_complete(model, tmp_path):
    base = str(tmp_path)
    final = os.path.join(base, "faces", "1")
    seen = []
    real_rename = os.rename

    def observing_rename(src, dst):
        if dst == final:
            # The moment of publication: the final name is still free and the temporary
            # directory already holds the complete model and its warmup file.
            seen.append(
                {
                    "final_exists": os.path.exists(final),
                    "src_hidden": os.path.basename(src).startswith("."),
                    "same_parent": os.path.dirname(src) == os.path.dirname(dst),
                    "complete": all(
                        os.path.exists(os.path.join(src, p))
                        for p in (
                            "saved_model.pb",
                            "variables/variables.index",
                            "assets.extra/tf_serving_warmup_requests",
                        )
                    ),
                }
            )
        return real_rename(src, dst)

    with mock.patch.object(os, "rename", side_effect=observing_rename):
        export_saved_model(model, base, name="faces")
    assert seen == [
        {"final_exists": False, "src_hidden": True, "same_parent": True, "complete": True}
    ]
    assert os.listdir(os.path.join(base, "faces")) == ["1"]


def test_race_for_the_same_version_is_reported(model, tmp_path):
    base = str(tmp_path)
    final = os.path.join(base, "faces", "1")
    real_rename = os.rename

    def competitor_publishes_first(src, dst):
        if dst == final and not os.path.exists(final):
            os.makedirs(os.path.join(final, "variables"))  # another exporter's version
        return real_rename(src, dst)

    with mock.patch.object(os, "rename", side_effect=competitor_publishes_first):
        with pytest.raises(FileExistsError, match="appeared during export"):
            export_saved_model(model, base, name="faces")
    assert os.listdir(os.path.join(base, "faces")) == ["1"]
    assert os.listdir(final) == ["variables"]


# --- argument validation ---------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"threshold": 1.5}, "threshold=1.5"),
        ({"threshold": True}, "threshold=True"),
        ({"threshold": float("nan")}, "threshold=nan"),
        ({"name": "../up"}, "name='../up'"),
        ({"name": ""}, "name=''"),
        ({"version": -1}, "version=-1"),
        ({"version": "3"}, "version='3'"),
        ({"image_size": 32}, "image_size=32"),
        ({"warmup_batch_sizes": (0,)}, "warmup_batch_sizes=\\(0,\\)"),
    ],
)
def test_bad_arguments_raise(model, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_saved_model(model, str(tmp_path), **kwargs)
    assert not os.path.exists(os.path.join(str(tmp_path), "tfface", "1"))


def test_rejects_non_normalised_and_non_model(tmp_path):
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    raw = keras.Model(
        inputs, keras.layers.Dense(EMBEDDING_DIM)(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    with pytest.raises(ValueError, match="L2-normalised"):
        export_saved_model(raw, str(tmp_path))
    with pytest.raises(ValueError, match="must be a keras.Model"):
        export_saved_model(lambda x: x, str(tmp_path))


def test_variable_size_model_needs_image_size(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Dense(EMBEDDING_DIM)(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, keras.layers.UnitNormalization()(x))
    with pytest.raises(ValueError, match="`image_size` is required"):
        export_saved_model(model, str(tmp_path))
    path = export_saved_model(model, str(tmp_path), image_size=IMAGE_SIZE)
    loaded = tf.saved_model.load(path)
    images = make_images(2)
    out = loaded.signatures["serving_default"](images=tf.constant(images))["embeddings"]
    np.testing.assert_allclose(out.numpy(), _keras_embeddings(model, images), atol=ATOL)


class SubclassedEmbedder(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.dense = keras.layers.Dense(EMBEDDING_DIM)
        self.norm = keras.layers.UnitNormalization()

    def call(self, images):
        return self.norm(self.dense(self.pool(images)))


def test_subclassed_model(tmp_path):
    model = SubclassedEmbedder()
    with pytest.raises(ValueError, match="must be built"):
        export_saved_model(model, str(tmp_path), image_size=IMAGE_SIZE)
    images = make_images(2)
    expected = _keras_embeddings(model, images)  # builds it
    with pytest.raises(ValueError, match="`image_size` is required"):
        export_saved_model(model, str(tmp_path))
    path = export_saved_model(model, str(tmp_path), image_size=IMAGE_SIZE)
    out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(out["embeddings"].numpy(), expected, atol=ATOL)


# --- fresh process and saved_model_cli --------------------------------------------------
@pytest.mark.slow
def test_loads_in_fresh_process_without_tfface(exported, tmp_path):
    model, path = exported
    a, b = make_images(3, seed=5), make_images(3, seed=6)
    np.savez(str(tmp_path / "in.npz"), a=a, b=b)
    pngs = [_png(im) for im in a]
    with open(tmp_path / "pngs.json", "w") as f:
        json.dump([p.hex() for p in pngs], f)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        data = np.load({str(tmp_path / "in.npz")!r})
        pngs = [bytes.fromhex(h) for h in json.load(open({str(tmp_path / "pngs.json")!r}))]
        loaded = tf.saved_model.load({path!r})
        sigs = loaded.signatures
        emb = sigs["serving_default"](images=tf.constant(data["a"]))["embeddings"]
        jpg = sigs["embed_jpeg"](images=tf.constant(pngs))["embeddings"]
        ver = sigs["verify"](images_a=tf.constant(data["a"]), images_b=tf.constant(data["b"]))
        np.savez({str(tmp_path / "out.npz")!r}, emb=emb.numpy(), jpg=jpg.numpy(),
                 sim=ver["similarity"].numpy(), same=ver["same_person"].numpy(),
                 thr=loaded.threshold.numpy())
        assert "tfface" not in sys.modules, sorted(m for m in sys.modules if "tfface" in m)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_ENV,
        cwd=str(tmp_path),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = np.load(str(tmp_path / "out.npz"))
    ea, eb = _keras_embeddings(model, a), _keras_embeddings(model, b)
    np.testing.assert_allclose(out["emb"], ea, atol=ATOL)
    np.testing.assert_allclose(out["jpg"], ea, atol=ATOL)
    np.testing.assert_allclose(out["sim"], np.sum(ea * eb, axis=-1), atol=ATOL)
    np.testing.assert_array_equal(out["same"], np.sum(ea * eb, axis=-1) >= THRESHOLD)
    np.testing.assert_allclose(out["thr"], THRESHOLD, atol=1e-7)


def _saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run([cli, *args], capture_output=True, text=True, env=_ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.slow
def test_saved_model_cli_show_lists_documented_signatures(exported):
    _, path = exported
    text = _saved_model_cli("show", "--dir", path, "--all")
    S, D = IMAGE_SIZE, EMBEDDING_DIM

    def block(name):
        start = text.index(f"signature_def['{name}']:")
        end = text.find("signature_def[", start + 1)
        return text[start : end if end != -1 else len(text)]

    def io(kind, key, dtype, shape):
        return f"{kind}['{key}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}"

    serving = block("serving_default")
    assert io("inputs", "images", "DT_FLOAT", f"(-1, {S}, {S}, 3)") in serving
    assert io("outputs", "embeddings", "DT_FLOAT", f"(-1, {D})") in serving
    jpeg = block("embed_jpeg")
    assert io("inputs", "images", "DT_STRING", "(-1)") in jpeg
    assert io("outputs", "embeddings", "DT_FLOAT", f"(-1, {D})") in jpeg
    verify = block("verify")
    for key in ("images_a", "images_b"):
        assert io("inputs", key, "DT_FLOAT", f"(-1, {S}, {S}, 3)") in verify
    assert io("outputs", "similarity", "DT_FLOAT", "(-1)") in verify
    assert io("outputs", "same_person", "DT_BOOL", "(-1)") in verify
    assert io("outputs", "threshold", "DT_FLOAT", "(-1)") in verify
    for sig in (serving, jpeg, verify):
        assert "Method name is: tensorflow/serving/predict" in sig


@pytest.mark.slow
def test_saved_model_cli_run_serving_default(exported, tmp_path):
    model, path = exported
    images = make_images(2, seed=8)
    # TF 2.21's saved_model_cli evaluates --input_exprs with ast.literal_eval, so the batch
    # is written as a nested list literal, not as an `np.` expression.
    literal = repr(images.tolist())
    outdir = str(tmp_path / "cli_out")
    _saved_model_cli(
        "run",
        "--dir",
        path,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--input_exprs",
        f"images={literal}",
        "--outdir",
        outdir,
    )
    embeddings = np.load(os.path.join(outdir, "embeddings.npy"))
    assert embeddings.shape == (2, EMBEDDING_DIM)
    np.testing.assert_allclose(embeddings, _keras_embeddings(model, images), atol=ATOL)
