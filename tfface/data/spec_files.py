"""The files a `tfrecord:` or `rec:` spec names, found without TensorFlow.

`check_spec` and `check_writable` (and so `python -m tfface.data`) resolve specs with these
before TensorFlow loads; the readers and writers (`tfrecord.py`, `recordio.py`) use the same
functions, so a spec that passes the check is the spec they open.
"""

import glob
import json
import os

# Sidecars the TFRecord writer leaves beside each shard: a DALI-format offset index and
# the shard's labels; with `PREFIX.manifest.json`, none of them is ever a shard.
INDEX_SUFFIX = ".idx"
LABELS_SUFFIX = ".labels.npy"
MANIFEST_SUFFIX = ".manifest.json"
SIDECAR_SUFFIXES = (INDEX_SUFFIX, LABELS_SUFFIX, ".json")


def shard_files(pattern):
    """The shard files a `tfrecord:` spec names, sorted; raises ValueError when none.

    `pattern` is what `write_tfrecords` was given (`PREFIX`: the shards its
    `PREFIX.manifest.json` lists, or else `PREFIX-*-of-*.tfrecord`), or a glob of shard
    files; our writer's sidecars (`.idx`, `.labels.npy`, `.json`) are never shards.
    """
    manifest_path = pattern + MANIFEST_SUFFIX
    if os.path.isfile(manifest_path):
        with open(manifest_path) as f:
            shards = json.load(f).get("shards", [])
        parent = os.path.dirname(pattern)
        files = [os.path.join(parent, shard["file"]) for shard in shards]
        missing = [p for p in files if not os.path.isfile(p)]
        if missing:
            raise ValueError(
                f"{manifest_path} lists {len(files)} shards but {len(missing)} are missing, "
                f"e.g. {missing[0]!r}."
            )
        if files:
            return files
    files = [
        p for p in glob.glob(pattern) if not p.endswith(SIDECAR_SUFFIXES) and os.path.isfile(p)
    ]
    if not files:
        files = glob.glob(glob.escape(pattern) + "-*-of-*.tfrecord")
    if not files:
        raise ValueError(
            f"No TFRecord shard matches {pattern!r}: expected a glob of shard files or the "
            "PREFIX a writer was given (PREFIX-00000-of-0000N.tfrecord, PREFIX.manifest.json)."
        )
    return sorted(files)


def rec_paths(path):
    """(PATH.rec, PATH.idx) for `PATH`, `PATH.rec` or `PATH.idx`.

    >>> rec_paths("/data/faces_emore/train.idx")
    ('/data/faces_emore/train.rec', '/data/faces_emore/train.idx')
    """
    base = path[:-4] if path.endswith((".rec", ".idx")) else path
    return base + ".rec", base + ".idx"
