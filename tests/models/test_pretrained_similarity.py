"""The issue's "done when" on the real wheel photos (benchmarks/pretrained_similarity.py).

Every face in insightface's t1.jpg / Tom_Hanks_54745.png, scikit-image's astronaut and
matplotlib's grace_hopper.jpg is a different person; each must match its own mirrored,
shifted and brightened copy at the model's threshold, and the cosine threshold must make
the same calls as dlib's own rule (raw distance < 0.6), and every different-person pair
must fall below it. The pipeline aligns with dlib's own 5-point predictor and face chip
(align_face(template="dlib")); with MTCNN's points warped onto a template instead, t1.jpg
faces 4 and 5 were 0.55 apart, under dlib's 0.6 (BUILD_NOTES.md, "Known limit").
"""

import importlib.util
import pathlib

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "pretrained_similarity.py"


@pytest.fixture(scope="module")
def table():
    import sys

    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("pretrained_similarity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.similarity_table()
    except FileNotFoundError as e:
        pytest.skip(str(e))


def test_every_face_matches_its_copies(table):
    assert len(table["labels"]) >= 8
    for kind, values in table["same"].items():
        assert np.all(values >= table["threshold"]), (kind, values)


def test_cosine_threshold_makes_dlibs_calls(table):
    thr = table["threshold"]
    same = np.concatenate(list(table["same"].values()))
    same_dist = np.concatenate(list(table["same_dist"].values()))
    np.testing.assert_array_equal(same >= thr, same_dist < 0.6)
    np.testing.assert_array_equal(table["different"] < thr, table["different_dist"] >= 0.6)


def test_every_different_person_pair_is_below_the_threshold(table):
    assert np.all(table["different"] < table["threshold"])
    assert np.all(table["different_dist"] >= 0.6)
