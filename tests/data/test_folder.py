import os

import numpy as np
import pytest
import tensorflow as tf

from tests.data import fixtures
from tfface.data.bad_input import BadInputError
from tfface.data.folder import FolderSource


def _take_all(ds):
    images, labels = [], []
    for image, label in ds.as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return images, labels


def _indices_ds(batches):
    return tf.data.Dataset.from_tensor_slices(np.asarray(batches, np.int64))


def test_labels_identities_and_pixels(tmp_path):
    images = fixtures.good_folder(str(tmp_path), ("carol", "alice", "bob"), per_identity=2)
    fixtures.write_file(str(tmp_path / "alice" / "notes.txt"), b"not an image")
    fixtures.write_file(str(tmp_path / "bob" / "UPPER.PNG"), fixtures.png(9))
    source = FolderSource(str(tmp_path))
    assert source.identities == ["alice", "bob", "carol"]
    np.testing.assert_array_equal(source.labels, [0, 0, 1, 1, 1, 2, 2])
    assert source.manifest.num_images == 7
    np.testing.assert_array_equal(source.manifest.counts, [2, 3, 2])
    assert source.report.num_skipped == 0
    assert source.report.ignored == [str(tmp_path / "alice" / "notes.txt")]

    decoded, labels = _take_all(source.dataset())
    assert labels == list(source.labels)
    for path, image in zip(source.paths[source.rows], decoded, strict=True):
        if path in images:
            np.testing.assert_array_equal(image, images[path])


def test_images_for_indices_is_random_access(tmp_path):
    images = fixtures.good_folder(str(tmp_path), per_identity=3)
    source = FolderSource(str(tmp_path))
    batches = [[8, 0, 4, 4], [1, 2, 3, 7]]
    out = list(source.images_for_indices(_indices_ds(batches)).as_numpy_iterator())
    assert len(out) == 2
    for (batch_images, batch_labels), indices in zip(out, batches, strict=True):
        assert batch_images.shape == (4, 24, 24, 3) and batch_images.dtype == np.uint8
        np.testing.assert_array_equal(batch_labels, source.labels[indices])
        for image, index in zip(batch_images, indices, strict=True):
            np.testing.assert_array_equal(image, images[source.paths[index]])


def test_images_for_indices_with_unknown_batch_size(tmp_path):
    fixtures.good_folder(str(tmp_path), per_identity=2)
    source = FolderSource(str(tmp_path))
    ds = tf.data.Dataset.from_generator(
        lambda: iter([np.array([0, 5], np.int64), np.array([1, 2, 3], np.int64)]),
        output_signature=tf.TensorSpec([None], tf.int64),
    )
    out = list(source.images_for_indices(ds).as_numpy_iterator())
    assert [b[0].shape[0] for b in out] == [2, 3]
    np.testing.assert_array_equal(out[1][1], source.labels[[1, 2, 3]])


def test_mixed_sizes_need_image_size(tmp_path):
    fixtures.write_file(str(tmp_path / "a" / "1.png"), fixtures.png(0, size=20))
    fixtures.write_file(str(tmp_path / "a" / "2.png"), fixtures.png(1, size=30))
    with pytest.raises(ValueError, match="image_size=S"):
        FolderSource(str(tmp_path)).images_for_indices(_indices_ds([[0, 1]]))
    source = FolderSource(str(tmp_path), image_size=16)
    (images, labels) = next(source.images_for_indices(_indices_ds([[0, 1]])).as_numpy_iterator())
    assert images.shape == (2, 16, 16, 3)


def test_dataset_shuffle_is_seeded(tmp_path):
    fixtures.good_folder(str(tmp_path), per_identity=4)
    source = FolderSource(str(tmp_path))
    first = [int(lab) for _, lab in source.dataset(shuffle=True, seed=3)]
    again = [int(lab) for _, lab in source.dataset(shuffle=True, seed=3)]
    assert first == again and sorted(first) == sorted(source.labels.tolist())
    with pytest.raises(ValueError, match="seed"):
        source.dataset(shuffle=True)


def _bad_folder(tmp_path):
    root, outside = str(tmp_path / "root"), str(tmp_path / "outside")
    fixtures.good_folder(root, ("alice", "bob"), per_identity=2)
    bad = {name: build(root, outside) for name, (build, _) in fixtures.BAD_CASES.items()}
    os.makedirs(os.path.join(root, "empty"))
    fixtures.write_file(os.path.join(root, "eve", "only.jpg"), fixtures.truncated_jpeg(3))
    # Kept with a note: a PNG named .jpg, and the colour modes decode_image converts.
    fixtures.write_file(os.path.join(root, "frank", "png_named.jpg"), fixtures.png(4))
    fixtures.write_file(os.path.join(root, "frank", "gray.jpg"), fixtures.jpeg(5, mode="L"))
    fixtures.write_file(os.path.join(root, "frank", "cmyk.jpg"), fixtures.jpeg(6, mode="CMYK"))
    fixtures.write_file(os.path.join(root, "frank", "rgba.png"), fixtures.png(7, mode="RGBA"))
    return root, bad


def test_bad_inputs_are_skipped_and_reported(tmp_path):
    root, bad = _bad_folder(tmp_path)
    source = FolderSource(root)
    assert source.identities == ["alice", "bob", "frank"]
    assert source.manifest.counts.tolist() == [2, 2, 4]
    skipped = {path: reason for path, reason, _ in source.report.skipped}
    for name, (_, reason) in fixtures.BAD_CASES.items():
        assert skipped[bad[name]] == reason, name
    assert skipped[os.path.join(root, "empty")] == "empty_identity"
    assert skipped[os.path.join(root, "eve", "only.jpg")] == "truncated"
    assert skipped[os.path.join(root, "eve")] == "empty_identity"
    # "dave" held only bad files, so it is an empty identity as well.
    assert skipped[os.path.join(root, "dave")] == "empty_identity"
    assert source.report.counts == {
        "empty_file": 1,
        "empty_identity": 3,
        "not_an_image": 1,
        "symlink_escape": 1,
        "too_large": 1,
        "truncated": 2,
        "unreadable": 2,
    }
    assert source.report.note_counts == {
        "converted_cmyk": 1,
        "converted_grayscale": 1,
        "converted_rgba": 1,
        "extension_mismatch": 1,
    }
    # Everything kept decodes to RGB in the pipeline without an error.
    images, labels = _take_all(source.dataset())
    assert len(images) == 8 and all(i.shape == (24, 24, 3) for i in images)


@pytest.mark.parametrize("case", sorted(fixtures.BAD_CASES))
def test_fail_policy_names_file_and_reason(tmp_path, case):
    root, outside = str(tmp_path / "root"), str(tmp_path / "outside")
    fixtures.good_folder(root, ("alice",), per_identity=1)
    build, reason = fixtures.BAD_CASES[case]
    path = build(root, outside)
    with pytest.raises(BadInputError) as info:
        FolderSource(root, on_bad_image="fail")
    assert info.value.path == path and info.value.reason == reason
    assert path in str(info.value) and reason in str(info.value)


def test_empty_identity_fails_under_fail_policy(tmp_path):
    fixtures.good_folder(str(tmp_path), ("alice",), per_identity=1)
    os.makedirs(tmp_path / "nobody")
    with pytest.raises(BadInputError, match="nobody.*empty_identity"):
        FolderSource(str(tmp_path), on_bad_image="fail")


def test_full_decode_pass_removes_corrupt_entropy_data(tmp_path):
    fixtures.good_folder(str(tmp_path), ("alice", "bob"), per_identity=1)
    corrupt = fixtures.write_file(str(tmp_path / "bob" / "x.jpg"), fixtures.corrupt_huffman_jpeg(1))
    fixtures.write_file(str(tmp_path / "carol" / "y.jpg"), fixtures.corrupt_huffman_jpeg(2))
    source = FolderSource(str(tmp_path))
    assert source.num_examples == 4  # headers are fine
    assert source.validate_decode() == 2
    assert source.identities == ["alice", "bob"]
    np.testing.assert_array_equal(source.labels, [0, 1])
    reasons = {p: r for p, r, _ in source.report.skipped}
    assert reasons[corrupt] == "decode_error"
    assert reasons[str(tmp_path / "carol")] == "empty_identity"
    assert len(list(source.dataset())) == 2


def test_missing_root(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        FolderSource(str(tmp_path / "nope"))


def test_all_bad_source_refuses_to_build_a_pipeline(tmp_path):
    fixtures.write_file(str(tmp_path / "a" / "1.jpg"), b"")
    source = FolderSource(str(tmp_path))
    assert source.num_examples == 0
    with pytest.raises(ValueError, match="no usable image"):
        source.dataset()


def test_sof_behind_large_metadata_is_found(tmp_path):
    # A 200 KB APP15 segment series before the frame header: more than the head read.
    from tfface.data.bad_input import HEAD_BYTES

    data = fixtures.jpeg(3)
    app = b"".join(b"\xff\xef\xff\xff" + b"\0" * 65533 for _ in range(3))
    assert len(app) > HEAD_BYTES
    fixtures.write_file(str(tmp_path / "a" / "big_exif.jpg"), data[:2] + app + data[2:])
    source = FolderSource(str(tmp_path))
    assert source.report.num_skipped == 0 and source.image_shapes == {(24, 24)}
    image, _ = next(source.dataset().as_numpy_iterator())
    assert image.shape == (24, 24, 3)
