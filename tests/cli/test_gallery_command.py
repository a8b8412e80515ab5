"""`tfface gallery list|stats|rename|remove` read and edit a gallery without TensorFlow
(issue 17, defect 9: they used to load it, 5-9 s, for SQL queries)."""

import json

import numpy as np
import pytest

from tests.module_imports import run_module
from tfface.gallery import Gallery

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
MODEL = {"name": "tiny", "version": "1", "embedding_size": 8, "fingerprint": "f00d"}


@pytest.fixture
def gallery(tmp_path):
    path = str(tmp_path / "people.gallery")
    rng = np.random.default_rng(0)
    with Gallery.open(path, model_info=MODEL) as g:
        g.enroll("Ada", rng.normal(size=(2, 8)))
        g.enroll("Grace", rng.normal(size=(3, 8)))
    return path


def _run(*args):
    code, out, errors, imported = run_module("tfface", *args, env=ENV, timeout=120)
    assert "tensorflow" not in imported and "keras" not in imported, args
    return code, out, errors


def test_list_and_stats_need_no_tensorflow(gallery):
    code, out, errors = _run("gallery", "list", "--gallery", gallery, "--json")
    assert code == 0, errors
    assert json.loads(out)["people"] == [
        {"name": "Ada", "embeddings": 2},
        {"name": "Grace", "embeddings": 3},
    ]
    code, out, errors = _run("gallery", "stats", "--gallery", gallery)
    assert code == 0, errors
    assert "identities: 2" in out and "embeddings: 5" in out and "backend: SQLiteStore" in out


def test_rename_and_remove_need_no_tensorflow(gallery):
    assert _run("gallery", "rename", "--gallery", gallery, "Ada", "Ada Lovelace")[0] == 0
    code, out, errors = _run("gallery", "remove", "--gallery", gallery, "Nobody")
    assert code == 1 and "not in" in errors and "Nobody" in errors
    assert _run("gallery", "remove", "--gallery", gallery, "Grace")[0] == 0
    assert Gallery.open(gallery).identities() == [("Ada Lovelace", 2)]
