"""Runs an ONNX or LiteRT export (`export_onnx` / `export_litert`) with its own runtime.

`PortableModel(path)` takes a version directory or the model file itself, reads the tfface
metadata (from `tfface_model.json` beside the file, else from inside it) and runs the file
with onnxruntime or the LiteRT interpreter of `ai-edge-litert` (TensorFlow's own
`tf.lite.Interpreter` is deprecated in its favour).
"""

import json
import os

import numpy as np

from tfface import model_metadata
from tfface.api_export import tfface_export

METADATA_KEY = "tfface_model"
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
_RUNTIMES = {".onnx": "onnx", ".tflite": "litert"}


def _model_file(path):
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        found = [
            os.path.join(path, f"model{ext}")
            for ext in _RUNTIMES
            if os.path.isfile(os.path.join(path, f"model{ext}"))
        ]
        if len(found) == 1:
            return found[0]
    raise ValueError(
        "Expected an ONNX or LiteRT export: a version directory holding model.onnx or "
        f"model.tflite, or the file itself. Received: {path}"
    )


def _embedded_onnx_metadata(path):
    import onnx

    proto = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY)


def _embedded_litert_metadata(path):
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        flatbuffer = schema.Model.GetRootAs(bytearray(f.read()), 0)
    for i in range(flatbuffer.MetadataLength()):
        entry = flatbuffer.Metadata(i)
        if entry.Name() == METADATA_KEY.encode():
            return flatbuffer.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
    return None


def read_portable_metadata(path):
    """The checked metadata of an ONNX/LiteRT export (`tfface_model.json` beside the model
    file, else the copy inside it), or None when it has neither."""
    model_file = _model_file(path)
    sidecar = os.path.join(os.path.dirname(model_file), model_metadata.METADATA_FILE)
    if os.path.isfile(sidecar):
        with open(sidecar) as f:
            return model_metadata.check_metadata(json.load(f), sidecar)
    runtime = _RUNTIMES.get(os.path.splitext(model_file)[1])
    text = (
        _embedded_onnx_metadata(model_file)
        if runtime == "onnx"
        else _embedded_litert_metadata(model_file)
    )
    if text is None:
        return None
    return model_metadata.check_metadata(json.loads(text), f"{model_file}:{METADATA_KEY}")


@tfface_export("tfface.export.PortableModel")
class PortableModel:
    """An ONNX or LiteRT embedding model, run with onnxruntime or ai-edge-litert.

    Args:
        path: a version directory written by `export_onnx`/`export_litert`, or its
            `model.onnx` / `model.tflite`.
        num_threads: intra-op threads (default: the runtime's own choice).

    Attributes:
        path: the model file.
        runtime: "onnx" or "litert".
        metadata: the tfface model metadata (crop size, template, threshold, fingerprint,
            quantisation, calibration data), or None for a file without it.
        image_size: S, from the metadata or the model's input shape.

    Example:

    ```python
    model = tfface.export.PortableModel("/models/faces/1")
    embeddings = model.embed(crops)  # float32 [N, S, S, 3] in 0-255 -> [N, D] unit vectors
    ```
    """

    def __init__(self, path, num_threads=None):
        self.path = _model_file(path)
        self.runtime = _RUNTIMES.get(os.path.splitext(self.path)[1])
        if self.runtime is None:
            raise ValueError(f"Expected a .onnx or .tflite file. Received: {self.path}")
        self.metadata = read_portable_metadata(self.path)
        if self.runtime == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = int(num_threads)
            self._session = onnxruntime.InferenceSession(
                self.path, options, providers=["CPUExecutionProvider"]
            )
            shape = self._session.get_inputs()[0].shape
        else:
            from ai_edge_litert.interpreter import Interpreter

            self._interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
            self._runner = self._interpreter.get_signature_runner()
            shape = list(self._interpreter.get_input_details()[0]["shape_signature"])
        if self.metadata is not None:
            self.image_size = int(self.metadata["image_size"])
        else:
            self.image_size = int(shape[1])

    def embed(self, images):
        """float32 [N, S, S, 3] RGB pixels in 0–255 → float32 [N, D] embeddings, as the file
        computes them (int8 files: norms within about 1% of 1)."""
        images = np.asarray(images, dtype=np.float32)
        expected = (self.image_size, self.image_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"`images` must be [N, {self.image_size}, {self.image_size}, 3]. "
                f"Received shape {images.shape}"
            )
        if self.runtime == "onnx":
            return self._session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
        return self._runner(**{INPUT_NAME: images})[OUTPUT_NAME]
