"""ONNX and LiteRT exports of a tfface embedding model, in float32, float16 or int8.

Both go through Keras 3's own exporter, `model.export(path, format="onnx" | "litert")`
(BUILD_NOTES.md, "ONNX and LiteRT", says why): on the TensorFlow backend it hands the model's
`tf.function` to tf2onnx, or writes a SavedModel for `tf.lite.TFLiteConverter`. tfface adds
what a face model needs around it:

- one input `images` float32 [N, S, S, 3] (RGB pixels in 0–255, any N) and one output
  `embeddings` float32 [N, D], the names of the SavedModel's `serving_default`;
- quantisation: `"float16"` stores the weights in float16 (ONNX: onnxruntime's
  `convert_float_to_float16`, inputs and outputs kept float32; LiteRT: the converter's
  float16 weights); `"int8"` is post-training static quantisation calibrated on aligned
  face crops (`tfface.export.calibration_crops`; ONNX: onnxruntime's `quantize_static` of
  the convolutions and matrix products, QDQ, per-channel int8 weights, uint8 activations,
  MinMax ranges; LiteRT: the converter's full-integer builtins with float32 input and
  output, as integer-only accelerators need). LiteRT int8 embeddings come out of a
  quantised L2 normalisation: their norms are 1 within about 1%, so normalise before
  comparing;
- the model metadata (`tfface.model_metadata`: crop size, template, threshold,
  fingerprint, plus the runtime, quantisation and calibration data), both inside the file
  (an ONNX `metadata_props` entry, a TFLite `Model.metadata` buffer, each named
  `tfface_model`) and beside it as `tfface_model.json`;
- the `<export_dir>/<name>/<version>/` layout of the SavedModel export (also Triton's model
  repository layout), written to a hidden directory and renamed into place.

`tfface.export.PortableModel` loads and runs the result with onnxruntime or the LiteRT
interpreter.
"""

import json
import os
import shutil
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfface import model_metadata
from tfface.api_export import tfface_export
from tfface.export import layout
from tfface.export.calibration_crops import CalibrationCrops
from tfface.export.calibration_crops import folder_crops
from tfface.export.calibration_crops import synthetic_crops
from tfface.export.portable_model import INPUT_NAME
from tfface.export.portable_model import METADATA_KEY
from tfface.export.portable_model import OUTPUT_NAME
from tfface.export.saved_model import _check_embeddings
from tfface.export.saved_model import _check_model
from tfface.export.saved_model import _check_threshold
from tfface.export.saved_model import _resolve_image_size

MODEL_FILES = {"onnx": "model.onnx", "litert": "model.tflite"}
QUANTIZATIONS = ("float16", "int8")


def _serving_model(model, image_size):
    """`model` behind one input `images` and one dict output `embeddings` (float32): Keras's
    exporter names the ONNX and LiteRT tensors after them."""
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name=INPUT_NAME)
    outputs = keras.ops.cast(model(inputs, training=False), "float32")
    return keras.Model(inputs, {OUTPUT_NAME: outputs}, name=f"{model.name}_serving")


def _input_signature(image_size):
    return [tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=INPUT_NAME)]


def _keras_export(serving, path, image_size, fmt, **kwargs):
    with warnings.catch_warnings():
        # Keras's NumPy-2 patch of tf2onnx probes the removed `np.object` alias.
        warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
        serving.export(
            path, format=fmt, input_signature=_input_signature(image_size), verbose=False, **kwargs
        )


def _resolve_calibration(calibration, quantize, image_size, template, seed):
    if quantize != "int8":
        if calibration is not None:
            raise ValueError(
                f"`calibration` is only used with quantize='int8'. Received: quantize={quantize!r}"
            )
        return None
    if calibration is None:
        return synthetic_crops(image_size, template, seed=seed)
    if isinstance(calibration, (str, os.PathLike)):
        return folder_crops(os.fspath(calibration), image_size, seed=seed)
    if isinstance(calibration, CalibrationCrops):
        crops = calibration
    else:
        images = np.asarray(calibration, dtype=np.float32)
        crops = CalibrationCrops(images, f"{len(images)} crops passed by the caller")
    if crops.images.ndim != 4 or crops.images.shape[1:] != (image_size, image_size, 3):
        raise ValueError(
            f"`calibration` images must be [N, {image_size}, {image_size}, 3]. "
            f"Received shape {crops.images.shape}"
        )
    return crops


# === ONNX ===
def _write_onnx(serving, path, image_size, quantize, crops, opset):
    import onnx

    if quantize is None:
        _keras_export(serving, path, image_size, "onnx", opset_version=opset)
        return
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, "float32.onnx")
        _keras_export(serving, float_path, image_size, "onnx", opset_version=opset)
        if quantize == "float16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            onnx.save(convert_float_to_float16(onnx.load(float_path), keep_io_types=True), path)
            return
        from onnxruntime import quantization as q
        from onnxruntime.quantization.shape_inference import quant_pre_process

        # The preprocessing onnxruntime asks for before quantising: shape inference and
        # graph optimisation (fused BatchNorm), so the ranges are those of the fused graph.
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(float_path, prepared, skip_symbolic_shape=True)

        class Reader(q.CalibrationDataReader):
            def __init__(self):
                self._batches = iter(crops.images[i : i + 1] for i in range(len(crops.images)))

            def get_next(self):
                batch = next(self._batches, None)
                return None if batch is None else {INPUT_NAME: batch}

        # onnxruntime's recommendation for x86 CPUs (its quantize_static docstring): QDQ,
        # uint8 activations, int8 weights, per channel for ResNet-style convolutions. Only
        # the multiply-accumulate ops are quantised; the rest (the L2 normalisation among
        # them) stays float32: on synthetic check faces that raised the worst cosine to the
        # float model from 0.967 to 0.994 (the test model) and from 0.965 to 0.978
        # (random-init mobilefacenet), dlib_resnet_v1 unchanged (BUILD_NOTES.md).
        q.quantize_static(
            prepared,
            path,
            Reader(),
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            # 7-bit weights: on x86 CPUs without VNNI onnxruntime's uint8×int8 kernel sums
            # pairs of products in int16 (VPMADDUBSW) and saturates with 8-bit weights. The
            # test model's worst cosine on an AVX2-only AMD EPYC was 0.950 without it, 0.9945
            # with it (BUILD_NOTES.md); the file must not depend on the CPU that runs it.
            reduce_range=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            # Ranges are folded in every 16 crops instead of holding all activations.
            extra_options={"CalibMaxIntermediateOutputs": 16},
        )


def _embed_onnx_metadata(path, metadata):
    import onnx

    proto = onnx.load(path)
    for entry in list(proto.metadata_props):
        if entry.key == METADATA_KEY:
            proto.metadata_props.remove(entry)
    proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
    onnx.save(proto, path)


# === LiteRT ===
def _write_litert(serving, path, image_size, quantize, crops):
    # Builtin ops only (Keras's exporter would add SELECT_TF_OPS): a model that needed the
    # Flex delegate would convert here and then fail in ai-edge-litert and on devices.
    kwargs = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize == "float16":
        kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
        kwargs["target_spec"]["supported_types"] = [tf.float16]
    elif quantize == "int8":

        def representative_dataset():
            for i in range(len(crops.images)):
                yield [crops.images[i : i + 1]]

        kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
        kwargs["representative_dataset"] = representative_dataset
        kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    _keras_export(serving, path, image_size, "litert", **kwargs)


def _embed_litert_metadata(path, metadata):
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        flatbuffer = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    flatbuffer.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(flatbuffer.buffers) - 1
    flatbuffer.metadata = [m for m in flatbuffer.metadata or [] if m.name != METADATA_KEY.encode()]
    flatbuffer.metadata.append(entry)
    with open(path, "wb") as f:
        f.write(flatbuffer_utils.convert_object_to_bytearray(flatbuffer))


def _export(
    runtime,
    model,
    export_dir,
    name,
    version,
    threshold,
    image_size,
    overwrite,
    quantize,
    calibration,
    seed,
    template,
    opset=None,
):
    _check_model(model)
    layout.check_name(name)
    if not isinstance(export_dir, (str, os.PathLike)) or not os.fspath(export_dir):
        raise ValueError(
            f"`export_dir` must be a non-empty path. Received: export_dir={export_dir!r}"
        )
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(
            f"`quantize` must be None, 'float16' or 'int8'. Received: quantize={quantize!r}"
        )
    threshold = _check_threshold(threshold)
    image_size = _resolve_image_size(model, image_size)
    embedding_size = _check_embeddings(model, image_size, seed)
    template = model_metadata.model_template(model) if template is None else template
    metadata = model_metadata.build_metadata(
        name=name,
        image_size=image_size,
        embedding_size=embedding_size,
        fingerprint=model_metadata.model_fingerprint(model),
        threshold=threshold,
        template=template,
    )
    crops = _resolve_calibration(calibration, quantize, image_size, metadata["template"], seed)
    metadata.update(
        {
            "runtime": runtime,
            "file": MODEL_FILES[runtime],
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "quantization": quantize or "float32",
            "calibration": None if crops is None else crops.description,
        }
    )

    final_dir = layout.version_dir(export_dir, name, version, overwrite)
    serving = _serving_model(model, image_size)
    tmp_dir = layout.temporary_dir(final_dir)
    try:
        path = os.path.join(tmp_dir, MODEL_FILES[runtime])
        if runtime == "onnx":
            _write_onnx(serving, path, image_size, quantize, crops, opset)
            _embed_onnx_metadata(path, metadata)
        else:
            _write_litert(serving, path, image_size, quantize, crops)
            _embed_litert_metadata(path, metadata)
        with open(os.path.join(tmp_dir, model_metadata.METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2)
        layout.publish(tmp_dir, final_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return final_dir


@tfface_export("tfface.export.export_onnx")
def export_onnx(
    model,
    export_dir,
    name="tfface",
    version=None,
    threshold=None,
    image_size=None,
    overwrite=False,
    quantize=None,
    calibration=None,
    seed=0,
    template=None,
    opset=None,
):
    """Exports an embedding model as `<export_dir>/<name>/<version>/model.onnx`.

    Input `images` float32 [N, S, S, 3] → output `embeddings` float32 [N, D]; the metadata
    is in the file's `metadata_props["tfface_model"]` and in `tfface_model.json` beside it.
    Needs `tf2onnx` and `onnxruntime` (`pip install tfface[onnx]`).

    Args:
        model: a built `keras.Model` mapping float32 images [N, S, S, 3] in 0–255 to
            L2-normalised embeddings [N, D] (checked on two probe images).
        export_dir: base directory; the model goes to `<export_dir>/<name>/<version>/`.
        name: model name.
        version: non-negative int; default one more than the largest existing version.
        threshold: the calibrated cosine threshold recorded in the metadata, or None.
        image_size: S. Default: the model's fixed input size.
        overwrite: replace an existing `<version>` directory instead of raising.
        quantize: None (float32), "float16" or "int8".
        calibration: int8 only: a directory of aligned crops, float32 [N, S, S, 3] crops
            in 0–255, or a `CalibrationCrops`. Default: 100 synthetic faces aligned on the
            model's template (`tfface.export.calibration_crops.synthetic_crops`).
        seed: seed of the probe images, the synthetic crops and the folder sample.
        template: the alignment template to record (default: the model's own, else
            "arcface"), as for `export_saved_model`.
        opset: ONNX opset (default: tf2onnx's).

    Returns:
        The path of the written version directory.

    Example:

    ```python
    path = tfface.export.export_onnx(model, "/models", name="faces", quantize="int8")
    embeddings = tfface.export.PortableModel(path).embed(crops)
    ```
    """
    return _export(
        "onnx",
        model,
        export_dir,
        name,
        version,
        threshold,
        image_size,
        overwrite,
        quantize,
        calibration,
        seed,
        template,
        opset=opset,
    )


@tfface_export("tfface.export.export_litert")
def export_litert(
    model,
    export_dir,
    name="tfface",
    version=None,
    threshold=None,
    image_size=None,
    overwrite=False,
    quantize=None,
    calibration=None,
    seed=0,
    template=None,
):
    """Exports an embedding model as `<export_dir>/<name>/<version>/model.tflite` (LiteRT).

    Signature `serving_default`: input `images` float32 [N, S, S, 3] → output `embeddings`
    float32 [N, D] (int8 models quantise inside and keep float32 at both ends); builtin ops
    only. The metadata is in the file's `tfface_model` metadata buffer and in
    `tfface_model.json` beside it. Run it with `ai-edge-litert` (`pip install
    tfface[litert]`).

    Args:
        model: a built `keras.Model` mapping float32 images [N, S, S, 3] in 0–255 to
            L2-normalised embeddings [N, D] (checked on two probe images).
        export_dir: base directory; the model goes to `<export_dir>/<name>/<version>/`.
        name: model name.
        version: non-negative int; default one more than the largest existing version.
        threshold: the calibrated cosine threshold recorded in the metadata, or None.
        image_size: S. Default: the model's fixed input size.
        overwrite: replace an existing `<version>` directory instead of raising.
        quantize: None (float32), "float16" or "int8".
        calibration: int8 only: a directory of aligned crops, float32 [N, S, S, 3] crops
            in 0–255, or a `CalibrationCrops`. Default: 100 synthetic faces aligned on the
            model's template (`tfface.export.calibration_crops.synthetic_crops`).
        seed: seed of the probe images, the synthetic crops and the folder sample.
        template: the alignment template to record (default: the model's own, else
            "arcface"), as for `export_saved_model`.

    Returns:
        The path of the written version directory.
    """
    return _export(
        "litert",
        model,
        export_dir,
        name,
        version,
        threshold,
        image_size,
        overwrite,
        quantize,
        calibration,
        seed,
        template,
    )
