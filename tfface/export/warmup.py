"""TF Serving warmup records (`assets.extra/tf_serving_warmup_requests`) for an export.

TF Serving replays these `PredictionLog` records against a freshly loaded version before it
marks the version available, so the first real request does not pay for graph
initialisation and kernel selection. Each record is a `PredictRequest` whose inputs are
built with `tf.make_tensor_proto`, exactly what a gRPC client sends.
"""

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

WARMUP_DIRNAME = "assets.extra"
WARMUP_FILENAME = "tf_serving_warmup_requests"

# Signature names, shared with `saved_model.py` so the records always name real signatures.
EMBED_SIGNATURE = "serving_default"
EMBED_JPEG_SIGNATURE = "embed_jpeg"
VERIFY_SIGNATURE = "verify"
SIGNATURE_NAMES = (EMBED_SIGNATURE, EMBED_JPEG_SIGNATURE, VERIFY_SIGNATURE)

# TF Serving reads at most 1000 warmup records per model version.
_MAX_RECORDS = 1000


def _check_batch_sizes(batch_sizes):
    if isinstance(batch_sizes, (int, np.integer)) or not len(batch_sizes):
        raise ValueError(
            "`warmup_batch_sizes` must be a non-empty sequence of positive integers. "
            f"Received: warmup_batch_sizes={batch_sizes!r}"
        )
    for b in batch_sizes:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(
                "`warmup_batch_sizes` must contain positive integers. "
                f"Received: warmup_batch_sizes={batch_sizes!r}"
            )
    return [int(b) for b in batch_sizes]


def _request(model_name, signature_name, inputs):
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(value)
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def build_warmup_requests(
    model_name, image_size, signature_names=SIGNATURE_NAMES, batch_sizes=(1,), seed=0
):
    """`PredictionLog` records warming every signature in `signature_names`.

    Args:
        model_name: the TF Serving model name (`model_spec.name`).
        image_size: int S; float image inputs are [B, S, S, 3] in 0–255.
        signature_names: subset of `("serving_default", "embed_jpeg", "verify")`.
        batch_sizes: one record per signature per batch size, so every batch size a
            batching-enabled server will see is traced before traffic arrives.
        seed: seed of the pseudo-random pixels (noise exercises the same kernels as faces).

    Returns:
        A list of `tensorflow_serving.apis.prediction_log_pb2.PredictionLog`.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(
            f"`image_size` must be a positive int. Received: image_size={image_size!r}"
        )
    if image_size < 1:
        raise ValueError(
            f"`image_size` must be a positive int. Received: image_size={image_size!r}"
        )
    unknown = [s for s in signature_names if s not in SIGNATURE_NAMES]
    if unknown or not signature_names:
        raise ValueError(
            f"`signature_names` must be a non-empty subset of {SIGNATURE_NAMES}. "
            f"Received: signature_names={signature_names!r}"
        )
    batch_sizes = _check_batch_sizes(batch_sizes)
    if len(batch_sizes) * len(signature_names) > _MAX_RECORDS:
        raise ValueError(
            f"TF Serving reads at most {_MAX_RECORDS} warmup records; "
            f"{len(batch_sizes)} batch sizes x {len(signature_names)} signatures is too many. "
            f"Received: warmup_batch_sizes={batch_sizes!r}"
        )

    rng = np.random.default_rng(seed)
    records = []
    for batch_size in batch_sizes:
        shape = (batch_size, image_size, image_size, 3)
        images = rng.uniform(0.0, 255.0, size=shape).astype(np.float32)
        for signature_name in signature_names:
            if signature_name == EMBED_SIGNATURE:
                inputs = {"images": tf.make_tensor_proto(images)}
            elif signature_name == VERIFY_SIGNATURE:
                other = rng.uniform(0.0, 255.0, size=shape).astype(np.float32)
                inputs = {
                    "images_a": tf.make_tensor_proto(images),
                    "images_b": tf.make_tensor_proto(other),
                }
            else:
                # Twice the model's size, so the in-graph resize really runs.
                big = rng.integers(0, 256, size=(2 * image_size, 2 * image_size, 3))
                jpeg = tf.io.encode_jpeg(big.astype(np.uint8)).numpy()
                inputs = {
                    "images": tf.make_tensor_proto(
                        [jpeg] * batch_size, dtype=tf.string, shape=[batch_size]
                    )
                }
            records.append(_request(model_name, signature_name, inputs))
    return records


def write_warmup_requests(saved_model_dir, records):
    """Writes `records` to `<saved_model_dir>/assets.extra/tf_serving_warmup_requests`.

    Returns the path of the written TFRecord file.
    """
    directory = tf.io.gfile.join(saved_model_dir, WARMUP_DIRNAME)
    tf.io.gfile.makedirs(directory)
    path = tf.io.gfile.join(directory, WARMUP_FILENAME)
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record.SerializeToString())
    return path


def read_warmup_requests(path):
    """Parses a warmup TFRecord file back into a list of `PredictionLog` records."""
    records = []
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
        records.append(prediction_log_pb2.PredictionLog.FromString(raw))
    return records
