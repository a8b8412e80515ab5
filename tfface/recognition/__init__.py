"""tfface.recognition: photo → faces → embeddings → verification and identification.

`Recognizer(model).faces(image)` returns every face with box, landmarks, aligned crop,
unit embedding and quality; `verify(a, b)` compares two faces; `identify(image, gallery)`
looks every face up in a `tfface.gallery.Gallery`. `FaceModel` loads a model and the crop
it expects (size, template, threshold) from its metadata.

Names load on first access, so `tfface.recognition.model_source` (used by the CLI to check
`--model` before TensorFlow starts) imports without TensorFlow.
"""

from tfface._lazy import lazy_getattr

_EXPORTS = {
    "UNKNOWN": "face",
    "Face": "face",
    "Identification": "face",
    "MultipleFacesError": "face",
    "NoFaceError": "face",
    "Verification": "face",
    "FaceModel": "face_model",
    "ModelLoadError": "model_source",
    "ImageInputError": "image_input",
    "load_image": "image_input",
    "Recognizer": "recognizer",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
