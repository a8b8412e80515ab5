import inspect

import keras
import pytest

from tfface import models
from tfface.models import registry


@pytest.fixture
def temporary_backbone():
    """Registers a throwaway backbone and removes it afterwards (no leaking global state)."""

    def tiny(image_size=8, embedding_dim=4, width=2):
        inputs = keras.Input((image_size, image_size, 3))
        x = keras.layers.Conv2D(width, 3)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(embedding_dim)(x))

    registry.register_backbone(tiny, name="_tiny_test_backbone")
    yield "_tiny_test_backbone"
    registry.unregister_backbone("_tiny_test_backbone")


def test_pinned_names_are_registered():
    names = models.list_backbones()
    for name in ["inception_resnet_v1", "iresnet50", "iresnet100", "mobilefacenet", "small_cnn"]:
        assert name in names
    assert names == sorted(names)


def test_create_forwards_size_dim_and_kwargs(temporary_backbone):
    model = models.create_backbone(temporary_backbone, image_size=10, embedding_dim=6, width=5)
    assert tuple(model.input.shape) == (None, 10, 10, 3)
    assert tuple(model.output.shape) == (None, 6)
    assert model.layers[1].filters == 5


def test_duplicate_name_raises(temporary_backbone):
    def other(image_size=8, embedding_dim=4):
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="already registered"):
        registry.register_backbone(other, name=temporary_backbone)
    with pytest.raises(ValueError, match="small_cnn.*already registered"):

        @models.register_backbone
        def small_cnn(image_size=8, embedding_dim=4):
            raise AssertionError("never called")


def test_backbones_declare_the_normalisation_of_their_weights():
    """What each backbone's published weights or training take: dlib's pretrained spec,
    the facenet and insightface converters, and the trainer's default for small_cnn."""
    assert models.backbone_normalization("dlib_resnet_v1") == "dlib"
    assert models.get_pretrained_spec("dlib_resnet_v1").normalization == "dlib"
    assert models.backbone_normalization("inception_resnet_v1") == "facenet"
    for name in ("iresnet50", "iresnet100", "mobilefacenet", "small_cnn"):
        assert models.backbone_normalization(name) == "insightface"


def test_registration_checks_the_normalisation(temporary_backbone):
    assert models.backbone_normalization(temporary_backbone) == "insightface"  # the default

    def other(image_size=8, embedding_dim=4):
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="Received: normalization='caffe'"):
        registry.register_backbone(other, name="_caffe_test_backbone", normalization="caffe")
    assert "_caffe_test_backbone" not in models.list_backbones()
    with pytest.raises(ValueError, match="Received: name='nope'"):
        models.backbone_normalization("nope")


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        models.create_backbone("resnet9000")
    message = str(info.value)
    assert "resnet9000" in message
    for name in models.list_backbones():
        assert name in message
    with pytest.raises(ValueError, match="Received: name=None"):
        models.create_backbone(None)


def test_unregistering_an_unknown_name_raises():
    with pytest.raises(ValueError, match="No backbone named 'nope'"):
        registry.unregister_backbone("nope")
    with pytest.raises(ValueError, match="'small_cnn' is a built-in backbone"):
        registry.unregister_backbone("small_cnn")


def test_builtin_table_names_what_each_module_registers():
    """`BUILTIN_BACKBONES` (name → module, read without importing) matches the
    `@register_backbone` decorators of tfface's architecture modules."""
    registry.import_builtin_backbones()
    registered = {
        name: factory.__module__.rpartition(".")[2]
        for name, factory in registry._BACKBONES.items()
        if factory.__module__.startswith("tfface.models.")
    }
    assert registered == registry.BUILTIN_BACKBONES


def test_decorator_with_name_returns_the_function():
    def factory(image_size=8, embedding_dim=4):
        raise AssertionError("never called")

    try:
        assert registry.register_backbone(name="_named_test_backbone")(factory) is factory
        assert models.get_backbone_factory("_named_test_backbone") is factory
    finally:
        registry.unregister_backbone("_named_test_backbone")


BAD_ARGUMENTS = [
    ({"image_size": 0}, "image_size.*Received: image_size=0"),
    ({"image_size": 64.0}, "must be an int"),
    ({"embedding_dim": 0}, "embedding_dim.*Received: embedding_dim=0"),
    ({"dropout_rate": 1.5}, "dropout_rate.*Received: dropout_rate=1.5"),
]


@pytest.mark.parametrize("name", models.list_backbones())
@pytest.mark.parametrize("kwargs, match", BAD_ARGUMENTS, ids=["size0", "size_float", "dim0", "p"])
def test_bad_arguments_name_the_value(name, kwargs, match):
    """Every registered backbone checks its arguments before building anything."""
    params = inspect.signature(models.get_backbone_factory(name)).parameters
    if not set(kwargs) <= set(params):
        pytest.skip(f"{name} takes no {sorted(kwargs)}")
    with pytest.raises(ValueError, match=match):
        models.create_backbone(name, **kwargs)


@pytest.mark.parametrize("name", models.list_backbones())
def test_every_factory_takes_image_size_and_embedding_dim(name):
    params = inspect.signature(models.get_backbone_factory(name)).parameters
    assert {"image_size", "embedding_dim"} <= set(params), name
