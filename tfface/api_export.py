"""One decorator that publishes a symbol and, if it serialises, registers it with Keras.

Keras is imported only to register: a module that merely publishes a symbol (the face
detector) imports without it, and so without TensorFlow.
"""

import inspect


def tfface_export(path, serializable=False):
    """Marks `obj` as public API at `path` (e.g. "tfface.layers.ArcFace").

    A class with `get_config` (layers, losses, schedules) is registered with Keras as
    `tfface>ClassName`, so anything saved with it loads in any process that imports
    `tfface`. Anything else (detectors, exporters) is only published: registering it would
    promise a deserialisation that cannot happen. A function that a saved model refers to by
    name (a loss passed to `compile`) is registered with `serializable=True`.

    Args:
        path: the public path, starting with "tfface.".
        serializable: register a plain function (classes decide by `get_config`).
    """
    if not path.startswith("tfface."):
        raise ValueError(f"API paths must start with 'tfface.'. Received: path={path!r}")

    def decorator(obj):
        if inspect.isclass(obj):
            if serializable and not hasattr(obj, "get_config"):
                raise ValueError(
                    f"{obj.__name__} has no get_config and cannot be serializable. "
                    f"Received: serializable={serializable}"
                )
            register = hasattr(obj, "get_config")
        elif inspect.isfunction(obj):
            register = serializable
        else:
            raise ValueError(f"Only classes and functions are exported. Received: {obj!r}")
        if register:
            import keras

            keras.saving.register_keras_serializable(package="tfface", name=obj.__name__)(obj)
        obj._tfface_api_path = path
        return obj

    return decorator
