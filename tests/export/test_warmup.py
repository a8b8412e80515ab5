"""Warmup records: they parse back, name the right model/signature, and replay cleanly."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfface.export import build_warmup_requests
from tfface.export import read_warmup_requests
from tfface.export import write_warmup_requests

from .helpers import EMBEDDING_DIM
from .helpers import IMAGE_SIZE


def _warmup_path(version_dir):
    return os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")


def test_exported_warmup_file_parses_back(exported):
    _, path = exported
    records = read_warmup_requests(_warmup_path(path))
    assert len(records) == 3  # one per signature at the default batch size 1
    S = IMAGE_SIZE
    by_signature = {}
    for record in records:
        assert record.WhichOneof("log_type") == "predict_log"
        request = record.predict_log.request
        assert request.model_spec.name == "faces"
        by_signature[request.model_spec.signature_name] = {
            k: (tf.dtypes.as_dtype(v.dtype).name, tuple(tf.make_ndarray(v).shape))
            for k, v in request.inputs.items()
        }
    assert by_signature == {
        "serving_default": {"images": ("float32", (1, S, S, 3))},
        "embed_jpeg": {"images": ("string", (1,))},
        "verify": {"images_a": ("float32", (1, S, S, 3)), "images_b": ("float32", (1, S, S, 3))},
    }


def test_warmup_requests_replay_against_the_export(exported):
    """What TF Serving does at load time: every request runs and returns its batch size."""
    _, path = exported
    loaded = tf.saved_model.load(path)
    for record in read_warmup_requests(_warmup_path(path)):
        request = record.predict_log.request
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        batch = next(iter(inputs.values())).shape[0]
        for value in outputs.values():
            assert value.shape[0] == batch
        if "embeddings" in outputs:
            assert outputs["embeddings"].shape == (batch, EMBEDDING_DIM)
            np.testing.assert_allclose(
                np.linalg.norm(outputs["embeddings"].numpy(), axis=-1), 1.0, atol=1e-5
            )


def test_batch_sizes_and_seed(tmp_path):
    records = build_warmup_requests(
        "m", 8, signature_names=("serving_default", "embed_jpeg"), batch_sizes=(1, 4), seed=3
    )
    shapes = [
        (
            r.predict_log.request.model_spec.signature_name,
            tf.make_ndarray(r.predict_log.request.inputs["images"]).shape,
        )
        for r in records
    ]
    assert shapes == [
        ("serving_default", (1, 8, 8, 3)),
        ("embed_jpeg", (1,)),
        ("serving_default", (4, 8, 8, 3)),
        ("embed_jpeg", (4,)),
    ]
    path = write_warmup_requests(str(tmp_path), records)
    assert path == os.path.join(str(tmp_path), "assets.extra", "tf_serving_warmup_requests")
    assert [r.SerializeToString() for r in read_warmup_requests(path)] == [
        r.SerializeToString() for r in records
    ]
    # Same seed, same bytes; another seed, other pixels.
    again = build_warmup_requests("m", 8, ("serving_default",), batch_sizes=(1,), seed=3)
    other = build_warmup_requests("m", 8, ("serving_default",), batch_sizes=(1,), seed=4)
    assert again[0].SerializeToString() == records[0].SerializeToString()
    assert other[0].SerializeToString() != records[0].SerializeToString()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_sizes": ()}, "warmup_batch_sizes=\\(\\)"),
        ({"batch_sizes": 2}, "warmup_batch_sizes=2"),
        ({"batch_sizes": (1, -2)}, "warmup_batch_sizes=\\(1, -2\\)"),
        ({"batch_sizes": tuple(range(1, 400))}, "at most 1000"),
        ({"signature_names": ("predict",)}, "signature_names=\\('predict',\\)"),
        ({"image_size": 0}, "image_size=0"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"model_name": "m", "image_size": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_warmup_requests(**args)
