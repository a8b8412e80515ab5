"""Name → factory registry for backbones (after timm's `_registry.py`).

Every backbone is a plain function `factory(image_size=..., embedding_dim=..., **kwargs)`
returning a functional `keras.Model` that maps float32 normalised images [N, S, S, 3] to
unnormalised embeddings [N, embedding_dim]. `@register_backbone` adds the function under its
own name, with the input normalisation the backbone expects (as timm's `default_cfgs`
record a model's mean and std); registering a name twice raises, so two modules can never
silently shadow each other.

tfface's own backbones are known by name before their modules are imported
(`BUILTIN_BACKBONES`); a lookup imports the module. So `import tfface.models` and
`list_backbones()` need neither Keras nor TensorFlow, and a command can check a
`--backbone` argument before TensorFlow loads.
"""

import importlib

# Built-in backbone name → the `tfface.models` module whose `@register_backbone` defines it
# (`tests/models/test_registry.py` checks this table against the decorators).
BUILTIN_BACKBONES = {
    "dlib_resnet_v1": "dlib_resnet",
    "inception_resnet_v1": "inception_resnet_v1",
    "iresnet100": "iresnet",
    "iresnet50": "iresnet",
    "mobilefacenet": "mobilefacenet",
    "small_cnn": "small_cnn",
}

_BACKBONES = {}
_NORMALIZATIONS = {}


def _import_builtin(name):
    # Registers built-in backbone `name` (and the module's other backbones and Keras layers).
    # While that module runs its own decorators it is already in sys.modules, so this
    # returns at once there.
    if name in BUILTIN_BACKBONES and name not in _BACKBONES:
        importlib.import_module(f"tfface.models.{BUILTIN_BACKBONES[name]}")


def import_builtin_backbones():
    """Imports every built-in architecture module, registering its backbones and Keras
    layers (`tfface.models.keras_objects.register_keras_objects` calls this)."""
    for name in BUILTIN_BACKBONES:
        _import_builtin(name)


def register_backbone(fn=None, *, name=None, normalization="insightface"):
    """Registers a backbone factory under `name` (default: the function's `__name__`).

    Usable bare (`@register_backbone`) or with arguments
    (`@register_backbone(name="r50", normalization="facenet")`). Raises `ValueError` if the
    name is already taken.

    Args:
        name: registry name (default: the function's `__name__`).
        normalization: the `tfface.layers.ImageNormalization` mode the backbone's inputs
            take ("insightface", "facenet" or "dlib"); `build_embedding_model` and the
            trainer put it in front of the backbone.
    """
    from tfface.layers.image_normalization import MODES

    if normalization not in MODES:
        raise ValueError(
            f"`normalization` must be one of {MODES}. Received: normalization={normalization!r}"
        )

    def decorator(factory):
        key = name or factory.__name__
        if not callable(factory):
            raise TypeError(f"A backbone factory must be callable. Received: {factory!r}")
        _import_builtin(key)  # a clash with a built-in name is reported here
        if key in _BACKBONES:
            raise ValueError(
                f"A backbone named {key!r} is already registered (by "
                f"{_BACKBONES[key].__module__}.{_BACKBONES[key].__qualname__}). "
                f"Received a second registration from "
                f"{factory.__module__}.{factory.__qualname__}."
            )
        _BACKBONES[key] = factory
        _NORMALIZATIONS[key] = normalization
        return factory

    if fn is not None:
        return decorator(fn)
    return decorator


def unregister_backbone(name):
    """Removes `name` from the registry (for tests that register temporary backbones;
    built-in backbones stay)."""
    if name in BUILTIN_BACKBONES:
        raise ValueError(f"{name!r} is a built-in backbone; it cannot be unregistered.")
    if name not in _BACKBONES:
        raise ValueError(f"No backbone named {name!r} is registered. Known: {list_backbones()}")
    del _BACKBONES[name]
    del _NORMALIZATIONS[name]


def list_backbones():
    """Sorted names of every registered backbone (without importing any)."""
    return sorted(set(_BACKBONES) | set(BUILTIN_BACKBONES))


def get_backbone_factory(name):
    """The factory registered under `name`; unknown names raise a `ValueError`."""
    if isinstance(name, str):
        _import_builtin(name)
    if not isinstance(name, str) or name not in _BACKBONES:
        raise ValueError(
            f"Unknown backbone. Expected one of {list_backbones()}. Received: name={name!r}"
        )
    return _BACKBONES[name]


def backbone_normalization(name):
    """The `tfface.layers.ImageNormalization` mode backbone `name` was registered with.

    Example:
    >>> backbone_normalization("dlib_resnet_v1")
    'dlib'
    """
    get_backbone_factory(name)  # raises for unknown names
    return _NORMALIZATIONS[name]


def create_backbone(name, image_size=112, embedding_dim=128, **kwargs):
    """Builds the registered backbone `name`.

    Args:
        name: a name from `list_backbones()`.
        image_size: side S of the square input [N, S, S, 3].
        embedding_dim: size D of the output embedding [N, D].
        **kwargs: architecture options forwarded to the factory (e.g. `dropout_rate`).

    Returns:
        A functional `keras.Model`: float32 normalised images → unnormalised embeddings.

    Example:
    >>> model = create_backbone("small_cnn", image_size=64, embedding_dim=32)
    >>> tuple(model.output.shape)
    (None, 32)
    """
    factory = get_backbone_factory(name)
    return factory(image_size=image_size, embedding_dim=embedding_dim, **kwargs)


def validate_common_args(name, image_size, embedding_dim, min_image_size):
    """Shared argument checks for every factory: clear errors naming the value received."""
    if not isinstance(image_size, int) or isinstance(image_size, bool):
        raise ValueError(
            f"`image_size` for {name} must be an int. Received: image_size={image_size!r}"
        )
    if image_size < min_image_size:
        raise ValueError(
            f"`image_size` for {name} must be >= {min_image_size}. Received: "
            f"image_size={image_size}"
        )
    if not isinstance(embedding_dim, int) or isinstance(embedding_dim, bool) or embedding_dim < 1:
        raise ValueError(
            f"`embedding_dim` for {name} must be a positive int. Received: "
            f"embedding_dim={embedding_dim!r}"
        )


def validate_rate(name, arg, value):
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{arg}` for {name} must be in [0, 1). Received: {arg}={value!r}")
