"""`load(spec)`: one spec string → a `Source`; `write(examples, spec)`: the reverse.

Spec strings are written the same way in Python, the CLI and train.py, and the spec a
writer was given is the spec that reads its output back:

| spec            | source                                                         |
|-----------------|----------------------------------------------------------------|
| `synthetic`     | procedural faces (`tfface.data.synthetic`); `synthetic:N` = N identities |
| `folder:PATH`   | identity folders `PATH/<identity>/<image>`                     |
| `tfrecord:GLOB` | TFRecord shards of `tf.train.Example`; or the `PREFIX` they were written with |
| `rec:PATH`      | MXNet RecordIO `PATH.rec` + `PATH.idx`                         |
| `tfds:NAME`     | a prepared tensorflow-datasets split (`data_dir=`, `split=`)   |
"""

import glob
import io
import os

import numpy as np

from tfface.data.bad_input import check_on_bad_image
from tfface.data.bad_input import sniff_format
from tfface.data.spec_files import MANIFEST_SUFFIX
from tfface.data.spec_files import rec_paths
from tfface.data.spec_files import shard_files

# TensorFlow-free at import: `check_spec`/`check_writable` run before TF loads (the CLI
# rejects a bad spec in well under a second); the readers and writers import it on use.

KINDS = ("synthetic", "folder", "tfrecord", "rec", "tfds")
WRITABLE_KINDS = ("folder", "tfrecord", "rec")


def parse_spec(spec, kinds=KINDS):
    """(kind, argument) of a spec string; raises ValueError naming the accepted forms."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"A data spec must be a non-empty string. Received: spec={spec!r}")
    kind, _, arg = spec.partition(":")
    if kind not in kinds:
        forms = ", ".join(f"'{k}:…'" if k != "synthetic" else "'synthetic'" for k in kinds)
        raise ValueError(f"Unknown data spec {spec!r}; expected one of {forms}.")
    if kind != "synthetic" and not arg:
        raise ValueError(f"Data spec {spec!r} needs a path or name after '{kind}:'.")
    return kind, arg


def check_spec(spec):
    """(kind, argument) of a spec whose files exist; raises ValueError naming the spec.

    A cheap check before any expensive work (train.py, the CLI): it looks only at paths,
    never at image bytes. Every spec `write` accepts is, once written, a spec that passes
    here and that `load` reads back.
    """
    kind, arg = parse_spec(spec)
    if kind == "synthetic":
        if arg and (not arg.isdigit() or int(arg) < 1):
            raise ValueError(f"'synthetic:N' needs a positive integer N. Received: {spec!r}")
    elif kind == "folder":
        if not os.path.isdir(arg):
            raise ValueError(f"Data spec {spec!r}: {arg!r} is not a directory.")
    elif kind == "tfrecord":
        try:
            shard_files(arg)
        except ValueError as e:
            raise ValueError(f"Data spec {spec!r}: {e}") from None
    elif kind == "rec":
        missing = [p for p in rec_paths(arg) if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"Data spec {spec!r}: {missing[0]!r} does not exist.")
    return kind, arg


def load(spec, on_bad_image="skip", **kwargs):
    """Returns the `Source` named by `spec` (see the module docstring).

    Args:
        spec: `synthetic`, `synthetic:N`, `folder:PATH`, `tfrecord:GLOB`, `rec:PATH` or
            `tfds:NAME`.
        on_bad_image: "skip" (leave bad inputs out and list them in `source.report`) or
            "fail" (raise `BadInputError` naming the first bad file and the reason).
        **kwargs: passed to the reader: `image_size` (resize to S×S when decoding),
            `max_pixels`, `progress`; `tfds:` also takes `split`, `data_dir`, `download`,
            `manual_dir`, `image_key`, `label_key`; `rec:` and `tfrecord:` take
            `check_images` (False: fast open from headers/sidecars, no image checks).

    Example:
    >>> source = tfface.data.load("folder:/data/lfw", image_size=112)  # doctest: +SKIP
    >>> source.report.summary()  # doctest: +SKIP
    """
    check_on_bad_image(on_bad_image)
    kind, arg = check_spec(spec)
    if kind == "synthetic":
        from tfface.data.synthetic import SyntheticSource

        if arg:
            kwargs.setdefault("num_identities", int(arg))
        kwargs.pop("progress", None)
        return SyntheticSource(**kwargs)
    if kind == "folder":
        from tfface.data.folder import FolderSource

        return FolderSource(arg, on_bad_image=on_bad_image, **kwargs)
    if kind == "tfrecord":
        from tfface.data.tfrecord import TFRecordSource

        return TFRecordSource(arg, on_bad_image=on_bad_image, **kwargs)
    if kind == "rec":
        from tfface.data.recordio import RecSource

        return RecSource(arg, on_bad_image=on_bad_image, **kwargs)
    from tfface.data.tfds_source import tfds_source

    return tfds_source(arg, on_bad_image=on_bad_image, **kwargs)


def encode_image(image, image_format="jpeg", quality=95):
    """Encoded bytes of a uint8 [H, W, 3] image (Pillow; JPEG quality 95 by default)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(
        buffer, "JPEG" if image_format == "jpeg" else "PNG", quality=quality
    )
    return buffer.getvalue()


def iter_examples(source, sort_by_label=True, image_format="jpeg"):
    """Yields (encoded bytes, label, identity) of every example of `source`.

    Encoded readers hand over the stored bytes unchanged (no re-encoding); other sources
    (synthetic) are decoded through `source.dataset()` and encoded as JPEG (quality 95).
    With `sort_by_label`, examples come grouped by label, as `rec:` writing requires.
    """
    from tfface.data.encoded import EncodedSource

    if isinstance(source, EncodedSource):
        order = np.argsort(source.labels, kind="stable") if sort_by_label else None
        rows = source.rows if order is None else source.rows[order]
        labels = source.labels if order is None else source.labels[order]
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            for data, label in zip(
                source.read_encoded(chunk), labels[start : start + 256], strict=True
            ):
                yield data, int(label), source.identities[label]
        return
    if sort_by_label and np.any(np.diff(source.labels) < 0):
        raise ValueError(
            f"{type(source).__name__} does not list its examples grouped by label; "
            "write it to folder: or tfrecord: first."
        )
    for image, label in source.dataset().as_numpy_iterator():
        yield encode_image(image, image_format), int(label), source.identities[int(label)]


def _safe_name(identity, label):
    name = str(identity)
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        return f"id_{label:06d}"
    return name


def write_folder(examples, root):
    """Writes `root/<identity>/<n>.<ext>`; returns the number of images written."""
    if os.path.exists(root) and os.listdir(root):
        raise ValueError(f"Refusing to write into non-empty folder {root!r}.")
    counts = {}
    ext = {"jpeg": "jpg", "png": "png", "bmp": "bmp", "gif": "gif"}
    for data, label, identity in examples:
        folder = os.path.join(root, _safe_name(identity, label))
        n = counts.get(folder, 0)
        if n == 0:
            os.makedirs(folder, exist_ok=True)
        counts[folder] = n + 1
        with open(os.path.join(folder, f"{n:06d}.{ext.get(sniff_format(data), 'jpg')}"), "wb") as f:
            f.write(data)
    return sum(counts.values())


def check_writable(spec):
    """(kind, argument) of a `folder:`, `tfrecord:` or `rec:` spec with nothing to overwrite."""
    kind, arg = parse_spec(spec, WRITABLE_KINDS)
    if kind == "folder":
        if os.path.exists(arg) and (not os.path.isdir(arg) or os.listdir(arg)):
            raise ValueError(f"Refusing to write into non-empty folder {arg!r}.")
    elif kind == "tfrecord":
        existing = glob.glob(glob.escape(arg) + "-*-of-*.tfrecord")
        existing += [p for p in [arg + MANIFEST_SUFFIX] if os.path.exists(p)]
        if existing:
            raise ValueError(f"Refusing to overwrite existing shards, e.g. {existing[0]!r}.")
    elif os.path.exists(rec_paths(arg)[0]):
        raise ValueError(f"Refusing to overwrite existing {rec_paths(arg)[0]!r}.")
    return kind, arg


def write(examples, spec, num_shards=1):
    """Writes (encoded bytes, label, identity) examples to `folder:`, `tfrecord:` or `rec:`.

    `tfrecord:PREFIX` writes `PREFIX-0000i-of-0000N.tfrecord` (+ `.idx` and a manifest);
    `rec:PATH` writes `PATH.rec`, `PATH.idx` (insightface layout) and needs examples grouped
    by label. Returns the number of examples written.
    """
    kind, arg = check_writable(spec)
    if kind == "folder":
        return write_folder(examples, arg)
    if kind == "tfrecord":
        from tfface.data.tfrecord import write_tfrecords

        count = [0]

        def counted():
            for example in examples:
                count[0] += 1
                yield example

        write_tfrecords(counted(), arg, num_shards)
        return count[0]
    from tfface.data.recordio import write_rec

    os.makedirs(os.path.dirname(os.path.abspath(arg)), exist_ok=True)
    return write_rec(examples, arg)
