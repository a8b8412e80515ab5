import os

import numpy as np
import pytest

from tests.data import fixtures
from tfface.data import load
from tfface.data.folder import FolderSource
from tfface.data.loader import iter_examples
from tfface.data.loader import parse_spec
from tfface.data.loader import write
from tfface.data.recordio import RecSource
from tfface.data.tfrecord import TFRecordSource


def test_parse_spec():
    assert parse_spec("folder:/a/b") == ("folder", "/a/b")
    assert parse_spec("tfds:lfw:0.1.1") == ("tfds", "lfw:0.1.1")
    assert parse_spec("synthetic") == ("synthetic", "")
    for bad in ["", "zip:/a", "folder:", "/just/a/path", None]:
        with pytest.raises(ValueError, match="spec"):
            parse_spec(bad)


def test_load_dispatches_by_kind(tmp_path):
    fixtures.good_folder(str(tmp_path / "f"), per_identity=2)
    folder = load(f"folder:{tmp_path / 'f'}")
    assert isinstance(folder, FolderSource)
    write(iter_examples(folder), f"tfrecord:{tmp_path / 't' / 'x'}", num_shards=2)
    write(iter_examples(folder), f"rec:{tmp_path / 'r' / 'x'}")
    tfrecord = load(f"tfrecord:{tmp_path / 't' / 'x-*'}")
    rec = load(f"rec:{tmp_path / 'r' / 'x'}", image_size=12)
    assert isinstance(tfrecord, TFRecordSource) and isinstance(rec, RecSource)
    assert rec.image_size == 12
    with pytest.raises(ValueError, match="on_bad_image"):
        load(f"folder:{tmp_path / 'f'}", on_bad_image="ignore")
    with pytest.raises(ValueError, match="image_size"):
        load(f"folder:{tmp_path / 'f'}", image_size=0)


@pytest.mark.parametrize("chain", [("tfrecord", "rec", "folder"), ("rec", "tfrecord", "folder")])
def test_conversion_chain_preserves_everything(tmp_path, chain):
    root = str(tmp_path / "src")
    fixtures.good_folder(root, ("ann", "bob", "cat"), per_identity=3)
    fixtures.write_file(os.path.join(root, "bob", "gray.jpg"), fixtures.jpeg(11, mode="L"))
    source = load(f"folder:{root}")
    originals = {
        (source.identities[lab], d)
        for d, lab in zip(source.read_encoded(source.rows), source.labels, strict=True)
    }
    spec = None
    for i, kind in enumerate(chain):
        target = str(tmp_path / f"step{i}" / "data")
        write(iter_examples(source), f"{kind}:{target}", num_shards=2)
        spec = f"{kind}:{target}-*" if kind == "tfrecord" else f"{kind}:{target}"
        source = load(spec)
        assert source.identities == ["ann", "bob", "cat"], spec
        assert source.manifest.counts.tolist() == [3, 4, 3], spec
        got = {
            (source.identities[lab], d)
            for d, lab in zip(source.read_encoded(source.rows), source.labels, strict=True)
        }
        assert got == originals, spec  # encoded bytes pass through unchanged
    files = sorted(os.listdir(os.path.join(target, "bob")))
    assert [f[:6] for f in files] == ["000000", "000001", "000002", "000003"]
    assert sorted(f[-3:] for f in files) == ["jpg", "png", "png", "png"]  # sniffed formats


def test_write_refuses_to_clobber(tmp_path):
    fixtures.good_folder(str(tmp_path / "f"), per_identity=1)
    source = load(f"folder:{tmp_path / 'f'}")
    with pytest.raises(ValueError, match="non-empty folder"):
        write(iter_examples(source), f"folder:{tmp_path / 'f'}")
    write(iter_examples(source), f"rec:{tmp_path / 'r'}")
    with pytest.raises(ValueError, match="overwrite"):
        write(iter_examples(source), f"rec:{tmp_path / 'r'}")
    with pytest.raises(ValueError, match="spec"):
        write(iter_examples(source), f"tfds:{tmp_path / 'x'}")


def test_synthetic_spec():
    from tfface.data import synthetic

    if not hasattr(synthetic, "SyntheticSource"):
        pytest.skip("tfface.data.synthetic.SyntheticSource is not available yet")
    source = load("synthetic:3")
    assert len(source.identities) == 3
    assert np.all(source.labels < 3)


@pytest.mark.parametrize("kind", ["folder", "tfrecord", "rec"])
def test_pk_batches_over_each_reader(tmp_path, kind):
    from tfface.data import pk_batches

    images = fixtures.good_folder(str(tmp_path / "src"), ("a", "b", "c", "d"), per_identity=3)
    folder = load(f"folder:{tmp_path / 'src'}")
    if kind == "folder":
        source = folder
    else:
        write(iter_examples(folder), f"{kind}:{tmp_path / 'out'}", num_shards=2)
        source = load(f"{kind}:{tmp_path / 'out'}" + ("-*" if kind == "tfrecord" else ""))
    by_identity = {}
    for path, image in images.items():
        by_identity.setdefault(os.path.basename(os.path.dirname(path)), []).append(image.tobytes())
    ds = pk_batches(source, 2, 2, seed=0, image_size=24, augment=False)
    for batch_images, batch_labels in ds.take(3).as_numpy_iterator():
        assert batch_images.shape == (4, 24, 24, 3)
        assert len(set(batch_labels.tolist())) == 2
        for image, label in zip(batch_images, batch_labels, strict=True):
            pixels = image.astype(np.uint8).tobytes()
            assert pixels in by_identity[source.identities[label]]
