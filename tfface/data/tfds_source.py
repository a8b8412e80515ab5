"""`tfds:NAME`: a prepared tensorflow-datasets dataset read as a random-access source.

TFDS stores a prepared split as TFRecord shards of `tf.train.Example` (image features as
encoded bytes), so the split is read with `TFRecordSource` over the split's shard files: the
same header checks, bad-input report and by-offset random access as `tfrecord:GLOB`.
Nothing is downloaded unless `download=True` (which calls `download_and_prepare`, honouring
`manual_dir` for builders that need manually downloaded archives).
"""

import os

from tfface.data.bad_input import DEFAULT_MAX_PIXELS
from tfface.data.tfrecord import TFRecordSource


def _pick(features, kind, requested, role):
    if requested is not None:
        if requested not in features:
            raise ValueError(
                f"`{role}` {requested!r} is not a feature of this dataset; "
                f"features: {list(features)}"
            )
        return requested
    for key, feature in features.items():
        if type(feature).__name__ in kind:
            return key
    return None


def tfds_source(
    name,
    split="train",
    data_dir=None,
    image_key=None,
    label_key=None,
    download=False,
    manual_dir=None,
    on_bad_image="skip",
    image_size=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    progress=None,
):
    """A `TFRecordSource` over the shards of a prepared TFDS split.

    Args:
        name: TFDS builder name, optionally with config/version (`lfw`, `lfw:0.1.1`).
        split: split name (`train`, ...); slicing (`train[:10%]`) is not supported.
        data_dir: TFDS data directory (default: TFDS's own default).
        image_key: the Image feature (default: the first Image feature).
        label_key: the identity feature: a ClassLabel (names from its `names`) or a Text
            feature (labels by sorted name, e.g. `lfw`'s `label`). Default: the first
            ClassLabel, else the first Text feature.
        download: call `download_and_prepare` when the dataset is not prepared.
        manual_dir: `DownloadConfig.manual_dir` for builders that need it.
        on_bad_image, image_size, max_pixels, progress: as for `TFRecordSource`.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    prepared = os.path.isfile(os.path.join(builder.data_dir, "dataset_info.json"))
    if not prepared:
        if not download:
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir!r}. Prepare it "
                "(`tfds build`) or pass download=True (with manual_dir=... if it needs one)."
            )
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)
    info = builder.info
    if split not in info.splits:
        raise ValueError(
            f"TFDS dataset {name!r} has no split {split!r}; splits: {list(info.splits)}"
        )
    if info.file_format is not None and info.file_format.value != "tfrecord":
        raise ValueError(
            f"TFDS dataset {name!r} is stored as {info.file_format.value}; only tfrecord is read."
        )
    features = info.features
    image_key = _pick(features, ("Image",), image_key, "image_key")
    label_key = _pick(features, ("ClassLabel", "Text"), label_key, "label_key")
    if image_key is None or label_key is None:
        raise ValueError(
            f"TFDS dataset {name!r} needs an Image feature and a ClassLabel/Text identity "
            f"feature; features: {list(features)}"
        )
    is_class = type(features[label_key]).__name__ == "ClassLabel"
    names = dict(enumerate(features[label_key].names)) if is_class else None
    return TFRecordSource(
        [str(p) for p in info.splits[split].filepaths],
        on_bad_image=on_bad_image,
        image_size=image_size,
        max_pixels=max_pixels,
        image_key=image_key,
        label_key=label_key if is_class else None,
        identity_key=None if is_class else label_key,
        identity_names=names,
        progress=progress,
        name=f"tfds:{name}[{split}]",
    )
