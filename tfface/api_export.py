"""One decorator that both publishes a symbol and registers it with Keras serialization."""

import keras


def tfface_export(path):
    """Marks `obj` as public API at `path` (e.g. "tfface.layers.ArcFace").

    The object is registered as `tfface>ClassName`, so anything saved with it can be
    loaded by any process that imports `tfface`.
    """
    if not path.startswith("tfface."):
        raise ValueError(f"API paths must start with 'tfface.'. Received: path={path!r}")

    def decorator(obj):
        keras.saving.register_keras_serializable(package="tfface", name=obj.__name__)(obj)
        obj._tfface_api_path = path
        return obj

    return decorator
