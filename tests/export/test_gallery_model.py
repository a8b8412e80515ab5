"""export_gallery_model: in-graph 1:N search agrees with a loop reference, in
`tf.saved_model.load` and in TF Serving's session loader."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfface.export.gallery_model import export_gallery_model

from .helpers import EMBEDDING_DIM
from .helpers import THRESHOLD
from .helpers import make_images
from .helpers import png_bytes
from .helpers import run_in_session_loader

pytestmark = pytest.mark.tensorflow_only
ATOL = 1e-5
NAMES = ["ada", "bob", "cy", "dee"]


def _gallery(model):
    """Rows: each of 4 people has 2-3 embeddings of the model's own images."""
    images = make_images(10, seed=5)
    rows = np.asarray(model(images, training=False))
    labels = ["ada", "ada", "bob", "bob", "bob", "cy", "cy", "dee", "dee", "dee"]
    return rows, labels


def _reference(probes, rows, labels, by, k):
    """Per probe: identities sorted by their max (or mean) cosine over rows, with loops."""
    out = []
    for p in probes:
        p = p / np.linalg.norm(p)
        scores = {}
        for name in NAMES:
            sims = [
                float(p @ (r / np.linalg.norm(r)))
                for r, lab in zip(rows, labels, strict=True)
                if lab == name
            ]
            scores[name] = max(sims) if by == "max" else sum(sims) / len(sims)
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:k]
        out.append(ranked)
    return out


@pytest.fixture(scope="module")
def gallery_export(model, tmp_path_factory):
    rows, labels = _gallery(model)
    path = export_gallery_model(
        model,
        rows,
        str(tmp_path_factory.mktemp("g")),
        labels=labels,
        name="people",
        k=3,
        threshold=THRESHOLD,
        identify_threshold=0.9,
    )
    return rows, labels, path


@pytest.mark.parametrize("by", ["max", "mean"])
def test_identify_matches_the_loop_reference(model, by, tmp_path):
    rows, labels = _gallery(model)
    path = export_gallery_model(model, rows, str(tmp_path), labels=labels, k=3, by=by)
    identify = tf.saved_model.load(path).signatures["identify"]
    probes = np.asarray(model(make_images(6, seed=11), training=False))
    probes = np.concatenate([probes, rows[:2] * 3.0])  # unnormalised probes are normalised
    out = identify(embeddings=tf.constant(probes))
    expected = _reference(probes, rows, labels, by, k=3)
    got_labels = out["labels"].numpy().astype(str)
    for i, ranked in enumerate(expected):
        assert list(got_labels[i]) == [name for name, _ in ranked]
        np.testing.assert_allclose(out["scores"].numpy()[i], [s for _, s in ranked], atol=ATOL)
    # No threshold given: every probe is "known" as its best label.
    assert out["known"].numpy().all()
    np.testing.assert_array_equal(out["identity"].numpy().astype(str), got_labels[:, 0])


def test_open_set_threshold_and_identify_jpeg(model, gallery_export):
    rows, labels, path = gallery_export
    loaded = tf.saved_model.load(path)
    images = make_images(3, seed=12)
    own_rows = np.asarray(model(images, training=False))
    out = loaded.signatures["identify"](embeddings=tf.constant(own_rows))
    best = out["scores"].numpy()[:, 0]
    expected = np.where(best >= 0.9, out["labels"].numpy()[:, 0].astype(str), "unknown")
    np.testing.assert_array_equal(out["identity"].numpy().astype(str), expected)
    np.testing.assert_array_equal(out["known"].numpy(), best >= 0.9)
    # The same crops as PNG through identify_jpeg: decode + embed + search in one call.
    pngs = tf.constant([tf.io.encode_png(im.astype(np.uint8)).numpy() for im in images])
    out_jpeg = loaded.signatures["identify_jpeg"](images=pngs)
    np.testing.assert_allclose(out_jpeg["scores"].numpy(), out["scores"].numpy(), atol=ATOL)
    # The embedding and verify signatures are there too.
    assert {"serving_default", "embed_jpeg", "verify"} <= set(loaded.signatures)
    with open(os.path.join(path, "assets.extra", "tfface_gallery.json")) as f:
        info = json.load(f)
    assert info == {
        "identities": 4,
        "rows": 10,
        "k": 3,
        "by": "max",
        "identify_threshold": 0.9,
        "unknown_label": "unknown",
        "signatures": ["identify", "identify_jpeg"],
    }


def test_session_loader_runs_identify(model, gallery_export):
    """TF Serving's loader: the gallery variables (floats, ints, strings) restore."""
    rows, labels, path = gallery_export
    probes = np.asarray(model(make_images(2, seed=13), training=False))
    pngs = np.array([png_bytes(im) for im in make_images(2, seed=13)], dtype=object)
    results = run_in_session_loader(
        path, {"identify": {"embeddings": probes}, "identify_jpeg": {"images": pngs}}
    )
    expected = _reference(probes, rows, labels, "max", k=3)
    for key in results:
        got = results[key]["labels"].astype(str)
        for i, ranked in enumerate(expected):
            assert list(got[i]) == [name for name, _ in ranked]
            np.testing.assert_allclose(results[key]["scores"][i], [s for _, s in ranked], atol=ATOL)


def test_gallery_object_and_k_capped(model, tmp_path):
    from tfface.gallery import Gallery
    from tfface.model_metadata import weights_fingerprint

    rows, labels = _gallery(model)
    info = {
        "name": "tiny",
        "embedding_size": EMBEDDING_DIM,
        "fingerprint": weights_fingerprint(model.variables),
    }
    g = Gallery.open(str(tmp_path / "p.gallery"), model_info=info)
    for name in NAMES:
        g.enroll(name, rows[[i for i, lab in enumerate(labels) if lab == name]])
    path = export_gallery_model(model, g, str(tmp_path / "out"), k=10)
    out = tf.saved_model.load(path).signatures["identify"](embeddings=tf.constant(rows[:1]))
    assert out["labels"].shape == (1, 4)  # k capped at the 4 identities
    top = g.search(rows[:1], k=4)[0]
    assert [m.name for m in top] == list(out["labels"].numpy()[0].astype(str))
    np.testing.assert_allclose([m.similarity for m in top], out["scores"].numpy()[0], atol=1e-4)

    other = Gallery.open(str(tmp_path / "o.gallery"), model_info=dict(info, fingerprint="f" * 16))
    other.enroll("x", rows[:1])
    with pytest.raises(ValueError, match="built by model"):
        export_gallery_model(model, other, str(tmp_path / "out"))
    g.close()
    other.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": ["a"]}, "must name every gallery row"),
        ({"labels": None}, "`labels` are required"),
        ({"k": 0}, "`k` must be a positive int"),
        ({"by": "median"}, "`by` must be one of"),
    ],
)
def test_bad_arguments(model, tmp_path, kwargs, match):
    rows, labels = _gallery(model)
    args = {"labels": labels, **kwargs}
    with pytest.raises(ValueError, match=match):
        export_gallery_model(model, rows, str(tmp_path), **args)


def test_wrong_embedding_size_is_refused(model, tmp_path):
    with pytest.raises(ValueError, match=r"non-empty \[N, 8\] array"):
        export_gallery_model(model, np.ones((3, 5)), str(tmp_path), labels=["a", "b", "c"])


def test_signature_defs_are_what_tf_serving_reports(gallery_export):
    """The SignatureDefs in saved_model.pb (TF Serving's metadata API shows these)."""
    from tensorflow.core.protobuf import saved_model_pb2

    _, _, path = gallery_export
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    signatures = saved.meta_graphs[0].signature_def

    def spec(tensor_info):
        return (
            tf.dtypes.as_dtype(tensor_info.dtype).name,
            [d.size for d in tensor_info.tensor_shape.dim],
        )

    outputs = {"labels": ("string", [-1, 3]), "scores": ("float32", [-1, 3])}
    outputs.update({"identity": ("string", [-1]), "known": ("bool", [-1])})
    for name, inputs in [
        ("identify", {"embeddings": ("float32", [-1, EMBEDDING_DIM])}),
        ("identify_jpeg", {"images": ("string", [-1])}),
    ]:
        sig = signatures[name]
        assert sig.method_name == "tensorflow/serving/predict"
        assert {k: spec(v) for k, v in sig.inputs.items()} == inputs
        assert {k: spec(v) for k, v in sig.outputs.items()} == outputs
