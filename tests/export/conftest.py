"""Shared fixtures: a tiny embedding model and one export of it per test module."""

import pytest

from .helpers import THRESHOLD
from .helpers import make_embedding_model


@pytest.fixture(scope="module")
def model():
    return make_embedding_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """(model, version dir) of one export with a threshold, shared by a module's tests."""
    from tfface.export import export_saved_model

    export_dir = tmp_path_factory.mktemp("export")
    path = export_saved_model(model, str(export_dir), name="faces", threshold=THRESHOLD)
    return model, path
