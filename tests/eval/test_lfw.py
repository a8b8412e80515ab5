"""Tests for tfface.eval.lfw: pairs.txt parsing, writing and image paths."""

import numpy as np
import pytest

from tfface.eval import lfw


def _fixture_pairs_text(num_sets=10, per_set=3):
    """A pairs.txt in LFW's exact format: tab separated, matched then mismatched per set."""
    lines = [f"{num_sets}\t{per_set}"]
    for s in range(num_sets):
        for k in range(per_set):
            lines.append(f"Person_{s}_{k}\t{k + 1}\t{k + 2}")
        for k in range(per_set):
            lines.append(f"Person_{s}_{k}\t{k + 1}\tOther_{s}_{k}\t{k + 3}")
    return "\n".join(lines) + "\n"


def test_read_pairs_lfw_layout(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text(_fixture_pairs_text())
    pairs = lfw.read_pairs(path)
    assert (pairs.num_sets, pairs.pairs_per_set, len(pairs)) == (10, 3, 60)
    assert pairs.pairs[0] == lfw.LFWPair("Person_0_0", 1, "Person_0_0", 2)
    assert pairs.pairs[3] == lfw.LFWPair("Person_0_0", 1, "Other_0_0", 3)
    np.testing.assert_array_equal(pairs.issame, np.tile(np.repeat([True, False], 3), 10))


def test_view1_single_number_header(tmp_path):
    path = tmp_path / "pairsDevTrain.txt"
    path.write_text("2\nA\t1\t2\nB\t1\t3\nA\t1\tB\t2\nC\t4\tD\t1\n")
    pairs = lfw.read_pairs(path)
    assert (pairs.num_sets, pairs.pairs_per_set) == (1, 2)
    assert pairs.issame.tolist() == [True, True, False, False]


def test_write_then_read_round_trip(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text(_fixture_pairs_text(num_sets=4, per_set=2))
    pairs = lfw.read_pairs(src)
    out = tmp_path / "b.txt"
    lfw.write_pairs(out, pairs, num_sets=4)
    assert out.read_text() == src.read_text()
    assert lfw.read_pairs(out) == pairs


def test_write_rejects_wrong_layout(tmp_path):
    p = [lfw.LFWPair("A", 1, "B", 1), lfw.LFWPair("A", 1, "A", 2)]  # mismatched first
    with pytest.raises(ValueError, match="Pair 0 .* must be matched"):
        lfw.write_pairs(tmp_path / "x.txt", p, num_sets=1)
    with pytest.raises(ValueError, match="cannot form 2 sets"):
        lfw.write_pairs(tmp_path / "x.txt", p, num_sets=2)


@pytest.mark.parametrize(
    "text,match",
    [
        ("10\t300\nA\t1\t2\n", "header says 10 sets .* file has 1 pair lines"),
        ("1\t1\nA\t1\tB\t2\nA\t1\t2\n", r":2: set 0 expects a matched line"),
        ("1\t1\nA\t1\t2\nA\t1\t3\n", r":3: set 0 expects a mismatched line"),
        ("1\t1\nA\tx\t2\nA\t1\tB\t2\n", r":2: n1 must be an integer"),
        ("1\t1\nA\t1\t2\nA\t1\tA\t2\n", "same person twice"),
        ("1 2 3\n", "header must be"),
        ("", "empty file"),
    ],
)
def test_read_pairs_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        lfw.read_pairs(path)


def test_pair_paths_and_missing_images_are_listed(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n")
    pairs = lfw.read_pairs(path)
    images = tmp_path / "img"
    for rel in ("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg"):
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        (images / rel).write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"1 images .* missing[\s\S]*Bob/Bob_0003\.jpg"):
        lfw.pair_paths(pairs, images)
    (images / "Bob").mkdir()
    (images / "Bob" / "Bob_0003.jpg").write_bytes(b"x")
    p1, p2, issame = lfw.pair_paths(pairs, images)
    assert p1 == [str(images / "Ann/Ann_0001.jpg")] * 2
    assert p2 == [str(images / "Ann/Ann_0002.jpg"), str(images / "Bob/Bob_0003.jpg")]
    assert issame.tolist() == [True, False]
