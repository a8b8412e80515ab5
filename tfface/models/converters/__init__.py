"""Converters for pretrained face-recognition weights that users download themselves.

* `convert_facenet(src)`: facenet-pytorch `InceptionResnetV1` state dicts and
  davidsandberg/facenet TF1 checkpoints → `inception_resnet_v1`.
* `convert_insightface(src)`: model-zoo ONNX files and arcface_torch `.pth` state dicts →
  `iresnet*` / `mobilefacenet`.

Each returns a tfface embedding model (pixels in 0–255 → unit embeddings) ready for
`model.save("DST.keras")`, `tfface.export` or fine-tuning. PyTorch is never imported.
"""

from tfface.models.converters.facenet import convert_facenet
from tfface.models.converters.insightface import convert_insightface
from tfface.models.converters.torch_checkpoint import read_torch_state_dict

__all__ = ["convert_facenet", "convert_insightface", "read_torch_state_dict"]
