import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.data import fixtures
from tfface.data import load

_NAMES = ["zoe", "adam", "mia"]


class TffaceTestFaces(tfds.core.GeneratorBasedBuilder):
    """LFW-shaped test dataset (Image + Text identity), generated offline."""

    # TFDS resolves a builder's code path from a dotted module name, which fails for the
    # `tests` namespace package (importlib_resources is not installed); a one-part name
    # makes it fall back to "no code path", as for builders defined in a notebook.
    __module__ = "tfface_tfds_test"

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.Text()}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(7), "test": self._generate_examples(2)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"image": fixtures.rgb(i), "label": _NAMES[i % 3]}


class TffaceTestClassFaces(tfds.core.GeneratorBasedBuilder):
    """Image + ClassLabel variant (like most TFDS image datasets)."""

    __module__ = "tfface_tfds_test"

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=["x", "y"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(4):
            yield i, {"image": fixtures.rgb(i), "label": i % 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    TffaceTestFaces(data_dir=path).download_and_prepare()
    TffaceTestClassFaces(data_dir=path).download_and_prepare()
    return path


def test_text_identity_dataset(data_dir):
    source = load("tfds:tfface_test_faces", data_dir=data_dir)
    assert source.identities == ["adam", "mia", "zoe"]
    assert source.manifest.counts.tolist() == [2, 2, 3]
    images = {}
    for image, label in source.dataset().as_numpy_iterator():
        images.setdefault(int(label), []).append(image)
    # TFDS shuffles on write; pixels still match the generated images of that identity.
    expected = {0: [1, 4], 1: [2, 5], 2: [0, 3, 6]}
    for label, seeds in expected.items():
        got = sorted(x.tobytes() for x in images[label])
        assert got == sorted(fixtures.rgb(s).tobytes() for s in seeds)


def test_split_and_class_label_names(data_dir):
    assert load("tfds:tfface_test_faces", data_dir=data_dir, split="test").num_examples == 2
    source = load("tfds:tfface_test_class_faces", data_dir=data_dir)
    assert source.identities == ["x", "y"]
    np.testing.assert_array_equal(np.sort(source.labels), [0, 0, 1, 1])


def test_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match="no split 'validation'"):
        load("tfds:tfface_test_faces", data_dir=data_dir, split="validation")
    with pytest.raises(ValueError, match="not prepared"):
        load("tfds:lfw", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="not a feature"):
        load("tfds:tfface_test_faces", data_dir=data_dir, image_key="photo")
