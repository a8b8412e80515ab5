"""Tests for tfface.eval.ijb_protocol: the IJB release's meta files, read and checked."""

import re

import numpy as np
import pytest

from tests.eval.ijb_fixture import write_ijb_tree
from tfface.eval import ijb_protocol as ip


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_ijb_tree(tmp_path_factory.mktemp("ijb"))


def test_reads_the_fixture_as_written(tree):
    p = ip.load_ijb_protocol(tree.root, "ijbc")
    assert p.dataset == "IJBC" and p.directory == str(tree.directory)
    assert p.image_names.tolist() == tree.names
    np.testing.assert_array_equal(p.templates, tree.templates)
    np.testing.assert_array_equal(p.medias, tree.medias)
    np.testing.assert_array_equal(p.landmarks, tree.landmarks)
    np.testing.assert_array_equal(p.faceness, tree.faceness)
    np.testing.assert_array_equal(p.template1, tree.pairs[:, 0])
    np.testing.assert_array_equal(p.template2, tree.pairs[:, 1])
    np.testing.assert_array_equal(p.labels, tree.pairs[:, 2] == 1)
    assert p.num_genuine == 4 and p.num_impostor == 24 and p.num_unused_images == 0
    assert p.missing_images() == [] and p.subset_info is None
    # --root may also be the dataset folder itself.
    same = ip.load_ijb_protocol(tree.directory, "IJBC")
    np.testing.assert_array_equal(same.templates, p.templates)


def test_ijbb_names_and_layout_errors(tmp_path):
    tree = write_ijb_tree(tmp_path / "release", dataset="IJBB", seed=1)
    p = ip.load_ijb_protocol(tree.root, "IJBB")
    assert p.dataset == "IJBB" and p.image_names.size == len(tree.names)
    with pytest.raises(FileNotFoundError, match=r"does not hold the IJBC release") as info:
        ip.load_ijb_protocol(tree.root, "IJBC")
    assert "ijbc_face_tid_mid.txt" in str(info.value)
    (tree.directory / "meta" / "ijbb_template_pair_label.txt").unlink()
    with pytest.raises(FileNotFoundError) as info:
        ip.load_ijb_protocol(tree.root, "IJBB")
    message = str(info.value)
    assert "ijbb_template_pair_label.txt" in message and "ijbb_face_tid_mid.txt" not in message
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        ip.load_ijb_protocol(tmp_path / "nowhere", "IJBB")
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        ip.load_ijb_protocol(tree.root, "IJBA")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, line, problem",
    [
        ("1.jpg 1 5\n2.jpg 1\n", 2, "found 2 fields, not 3"),
        ("1.jpg 1 5\n\n2.jpg 1 5 9\n", 3, "found 4 fields, not 3"),
        ("1.jpg 1 5\n2.jpg one 5\n", 2, "field 2 'one' is not an integer"),
        ("1.jpg 1 5\n2.jpg 1 5.0\n", 2, "field 3 '5.0' is not an integer"),
        ("# comment\n1.jpg 1 5\n", 1, "found 2 fields"),
        ("", None, "holds no entries"),
    ],
)
def test_face_tid_mid_errors_name_file_and_line(tmp_path, text, line, problem):
    path = _write(tmp_path, "ijbc_face_tid_mid.txt", text)
    with pytest.raises(ip.IJBFormatError) as info:
        ip.read_face_tid_mid(path)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(info.value).startswith(where) and problem in str(info.value)


def test_face_tid_mid_blank_lines_and_whitespace(tmp_path):
    path = _write(tmp_path, "t.txt", "1.jpg 1 69544\r\n\n  2.jpg\t1  7 \n\n")
    names, templates, medias, lines = ip.read_face_tid_mid(path)
    assert names == ["1.jpg", "2.jpg"]
    assert templates.tolist() == [1, 1] and medias.tolist() == [69544, 7]
    assert lines.tolist() == [1, 3]


# The release's first line (ijb_evals.py quotes it) parses as 5 points and a score.
FIRST_LINE = "1.jpg 46.060 62.026 87.785 60.323 68.851 77.656 52.162 99.875 86.450 98.648 0.999"


def test_name_5pts_score_reads_points_in_xy_pairs(tmp_path):
    path = _write(tmp_path, "p.txt", FIRST_LINE + "\n")
    names, landmarks, faceness, _ = ip.read_name_5pts_score(path)
    assert names == ["1.jpg"] and landmarks.dtype == np.float32
    np.testing.assert_allclose(landmarks[0, 0], [46.060, 62.026])  # left eye (x, y)
    np.testing.assert_allclose(landmarks[0, 4], [86.450, 98.648])  # right mouth corner
    assert faceness.tolist() == pytest.approx([0.999])


@pytest.mark.parametrize(
    "line, problem",
    [
        (FIRST_LINE.rsplit(" ", 1)[0], "found 11 fields, not 12"),
        (FIRST_LINE + " 0.5", "found 13 fields, not 12"),
        (FIRST_LINE.replace("87.785", "x"), "field 4 'x' is not a number"),
        (FIRST_LINE.replace("87.785", "nan"), "field 4 is 'nan'"),
        (FIRST_LINE.replace("0.999", "inf"), "field 12 is 'inf'"),
        (FIRST_LINE.replace("0.999", "-0.2"), "the detector score must be >= 0"),
    ],
)
def test_name_5pts_score_errors_name_file_and_line(tmp_path, line, problem):
    path = _write(tmp_path, "p.txt", FIRST_LINE + "\n" + line + "\n")
    with pytest.raises(ip.IJBFormatError) as info:
        ip.read_name_5pts_score(path)
    assert str(info.value).startswith(f"{path}:2:") and problem in str(info.value)


def test_template_pair_label_reads_ints_and_bool_labels(tmp_path):
    path = _write(tmp_path, "pairs.txt", "1 11065 1\n\n1 11066 0 \r\n  7\t9 0\n")
    t1, t2, labels = ip.read_template_pair_label(path)
    assert t1.tolist() == [1, 1, 7] and t2.tolist() == [11065, 11066, 9]
    assert labels.dtype == bool and labels.tolist() == [True, False, False]


@pytest.mark.parametrize(
    "text, line, problem",
    [
        ("1 2 1\n\n3 4\n", 3, "found 2 fields"),
        ("1 2 1\n3 4 0 5\n", 2, "found 4 fields"),
        ("1 2 1\n3 4.0 0\n", 2, "field 2 '4.0' is not an integer"),
        ("1 2 1\n3 x 0\n", 2, "field 2 'x' is not an integer"),
        ("1 2 1\n3 99999999999999999999 0\n", 2, "field 2 does not fit in 64 bits"),
        ("1 2 1\n\n\n3 4 2\n5 6 -1\n", 4, "label is 2 (2 lines have a label other than 0"),
        ("# t1 t2 label\n1 2 1\n", 1, "found 4 fields"),
        ("1 2\n", 1, "found 2 fields"),
        ("\n\n", None, "holds no entries"),
    ],
)
def test_template_pair_label_errors_name_file_and_line(tmp_path, text, line, problem):
    path = _write(tmp_path, "ijbc_template_pair_label.txt", text)
    with pytest.raises(ip.IJBFormatError) as info:
        ip.read_template_pair_label(path)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(info.value).startswith(where), str(info.value)
    assert problem in str(info.value)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"1.jpg 1 5\n\xff.jpg 1 5\n")
    with pytest.raises(ip.IJBFormatError, match=re.escape(f"{path}:2: not UTF-8")):
        ip.read_face_tid_mid(path)


def _copy_tree(tree, tmp_path):
    import shutil

    shutil.copytree(tree.root, tmp_path / "copy")
    return tmp_path / "copy", tmp_path / "copy" / "IJBC" / "meta"


def test_reordered_image_files_are_joined_by_name(tree, tmp_path):
    root, meta = _copy_tree(tree, tmp_path)
    lines = (meta / "ijbc_face_tid_mid.txt").read_text().splitlines()
    rng = np.random.default_rng(0)
    shuffled = [lines[i] for i in rng.permutation(len(lines))]
    (meta / "ijbc_face_tid_mid.txt").write_text("\n".join(shuffled) + "\n")
    p = ip.load_ijb_protocol(root, "IJBC")
    # Still in the 5-point file's order, each image with its own template and media.
    assert p.image_names.tolist() == tree.names
    np.testing.assert_array_equal(p.templates, tree.templates)
    np.testing.assert_array_equal(p.medias, tree.medias)


def test_join_errors(tree, tmp_path):
    root, meta = _copy_tree(tree, tmp_path)
    tid = meta / "ijbc_face_tid_mid.txt"
    lines = tid.read_text().splitlines()
    tid.write_text("\n".join([lines[1], lines[0], *lines[2:], lines[3]]) + "\n")
    with pytest.raises(ip.IJBFormatError) as info:
        ip.load_ijb_protocol(root, "IJBC")
    assert f"{tid}:{len(lines) + 1}: image '4.jpg' is listed again (first at line 4)" in str(
        info.value
    )
    tid.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(ip.IJBFormatError, match=r"ijbc_name_5pts_score.txt:1: image '1.jpg' has"):
        ip.load_ijb_protocol(root, "IJBC")
    tid.write_text("\n".join([*lines, "999.jpg 101 5001"]) + "\n")
    with pytest.raises(ip.IJBFormatError, match=r"1 images have no landmarks .*'999.jpg'"):
        ip.load_ijb_protocol(root, "IJBC")


def test_pairs_naming_unknown_templates_or_one_class(tree, tmp_path):
    root, meta = _copy_tree(tree, tmp_path)
    pairs = meta / "ijbc_template_pair_label.txt"
    lines = pairs.read_text().splitlines()
    pairs.write_text("\n".join([*lines[:3], "101 4242 0", *lines[3:]]) + "\n")
    with pytest.raises(ip.IJBFormatError) as info:
        ip.load_ijb_protocol(root, "IJBC")
    assert str(info.value).startswith(f"{pairs}:4: template 4242 has no images in")
    pairs.write_text("\n".join(x for x in lines if x.endswith(" 0")) + "\n")
    with pytest.raises(ip.IJBFormatError, match="every pair has label 0"):
        ip.load_ijb_protocol(root, "IJBC")


def test_images_of_templates_no_pair_uses_are_left_out_and_counted(tree, tmp_path):
    root, meta = _copy_tree(tree, tmp_path)
    pairs = meta / "ijbc_template_pair_label.txt"
    # Keep only pairs among identity 0 and 1's templates (101, 108, 115, 122).
    kept = [x for x in pairs.read_text().splitlines() if max(map(int, x.split()[:2])) <= 122]
    pairs.write_text("\n".join(kept) + "\n")
    p = ip.load_ijb_protocol(root, "IJBC")
    used = np.isin(tree.templates, [101, 108, 115, 122])
    assert p.image_names.tolist() == [n for n, u in zip(tree.names, used, strict=True) if u]
    assert p.num_unused_images == int(np.sum(~used))


def test_subset_is_balanced_seeded_and_restricted(tree):
    p = ip.load_ijb_protocol(tree.root, "IJBC")
    s = p.subset(6, seed=3)
    assert s.labels.size == 6 and s.num_genuine == 3
    assert s.subset_info == {
        "limit": 6,
        "seed": 3,
        "pairs_in_protocol": 28,
        "genuine_in_protocol": 4,
        "impostor_in_protocol": 24,
    }
    pairs = set(zip(p.template1.tolist(), p.template2.tolist(), p.labels.tolist(), strict=True))
    chosen = list(zip(s.template1.tolist(), s.template2.tolist(), s.labels.tolist(), strict=True))
    assert set(chosen) <= pairs and len(set(chosen)) == 6
    file_pairs = zip(p.template1.tolist(), p.template2.tolist(), strict=True)
    order = {pair: k for k, pair in enumerate(file_pairs)}
    ranks = [order[(a, b)] for a, b, _ in chosen]
    assert ranks == sorted(ranks)  # file order kept
    used = set(s.template1.tolist()) | set(s.template2.tolist())
    assert set(s.templates.tolist()) == used
    assert s.num_unused_images == int(np.sum(~np.isin(p.templates, list(used))))
    again = p.subset(6, seed=3)
    np.testing.assert_array_equal(again.template1, s.template1)
    # More genuine pairs asked than exist: the rest are impostors.
    big = p.subset(20, seed=0)
    assert big.num_genuine == 4 and big.labels.size == 20
    assert p.subset(100) is p
    with pytest.raises(ValueError, match="`limit` must be an integer >= 2"):
        p.subset(1)
