"""The checks train.py runs before any work: what a `TrainConfig` names outside itself.

In two stages, each raising ValueError naming the flag and value (train.py: exit 2):

- `check_before_tensorflow`: the data spec (its files exist; its identity count against
  `--identities_per_batch` where it is known without reading images), the held-out pairs
  (`bin:` file, LFW pairs file, images directory and every image it references), and
  `--trainable_blocks` without `--pretrained`. Imports neither TensorFlow nor Keras.
- `check_model`: the backbone name, the published weights of `--pretrained` and their
  sizes, and the head settings by the head layer's own rules. These rules live in Keras
  code (the backbone registry, the layers), so this stage imports Keras, and with it
  TensorFlow; it builds no weights and touches no device.

`check_inputs` runs both. Identity counts that need the images indexed are checked by
`check_identities` once the data is loaded (`pipeline.load_training_source`).
"""

import os

from tfface.training import heads
from tfface.training.eval_split import check_split_size
from tfface.training.schema import SPLIT_EVAL_DATA


def check_inputs(config):
    """Both stages: `check_before_tensorflow`, then `check_model`."""
    check_before_tensorflow(config)
    check_model(config)


def check_before_tensorflow(config):
    """The checks that need no TensorFlow: flag combinations outside the config's own
    rules, the data spec, the held-out pairs. Raises ValueError naming the flag."""
    if config.trainable_blocks is not None and not config.pretrained:
        raise ValueError(
            "--trainable_blocks applies to --pretrained runs only. "
            f"Received: --trainable_blocks={config.trainable_blocks}"
        )
    from tfface.data.loader import check_spec

    try:
        kind, arg = check_spec(config.data)
    except ValueError as e:
        raise ValueError(f"--data={config.data}: {e}") from None
    check_identities(config, _count_identities(kind, arg))
    if config.evaluate and config.eval_data == SPLIT_EVAL_DATA:
        counts = _count_folder_images(arg) if kind == "folder" else None
        if counts is not None:
            check_split_size(counts, config.identities_per_batch, config.data)
    elif config.evaluate:
        from tfface.eval.pairs import check_pair_spec

        try:
            check_pair_spec(config.eval_data)
        except ValueError as e:
            raise ValueError(f"--eval_data={config.eval_data}: {e}") from None


def check_model(config):
    """The backbone, the pretrained weights and the head settings (imports Keras); no
    weights are made. Raises ValueError naming the flag."""
    from tfface import models

    if config.backbone not in models.list_backbones():
        raise ValueError(
            f"--backbone must be one of {models.list_backbones()}. "
            f"Received: --backbone={config.backbone}"
        )
    _check_pretrained(config, models)
    try:
        heads.check_head_kwargs(config.loss, config.head_kwargs)
    except ValueError as e:
        raise ValueError(
            f"--loss={config.loss} with head settings {config.head_kwargs}: {e}"
        ) from None


def _check_pretrained(config, models):
    """--pretrained needs published weights for the backbone at their size and width."""
    if not config.pretrained:
        return
    if config.backbone not in models.list_pretrained():
        raise ValueError(
            f"--pretrained: tfface has weights for {models.list_pretrained()} only. "
            f"Received: --backbone={config.backbone}"
        )
    spec = models.get_pretrained_spec(config.backbone)
    if (config.image_size, config.embedding_dim) != (spec.image_size, spec.embedding_dim):
        raise ValueError(
            f"--pretrained {config.backbone} takes --image_size={spec.image_size} "
            f"--embedding_dim={spec.embedding_dim}. Received: --image_size="
            f"{config.image_size} --embedding_dim={config.embedding_dim}"
        )
    blocks = config.trainable_blocks
    if blocks is not None and not 0 <= blocks <= spec.num_blocks:
        raise ValueError(
            f"--trainable_blocks must be in [0, {spec.num_blocks}] for {config.backbone}. "
            f"Received: --trainable_blocks={blocks}"
        )


def _count_identities(kind, arg):
    """The identity count of a data spec when it is known without reading images, else None."""
    if kind == "synthetic":
        return int(arg) if arg else 10_000
    if kind == "folder":
        return sum(1 for e in os.scandir(arg) if e.is_dir() and any(os.scandir(e.path)))
    return None


def _count_folder_images(root):
    """Image files per non-empty identity folder of `root` (by extension; the header
    checks come with the data)."""
    from tfface.data.bad_input import IMAGE_EXTENSIONS

    counts = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir():
            n = sum(1 for f in os.scandir(entry.path) if f.name.lower().endswith(IMAGE_EXTENSIONS))
            if n:
                counts.append(n)
    return counts


def check_identities(config, num_identities):
    """Raises ValueError when the data has too few identities for a P×K batch."""
    if num_identities is None:
        return
    if num_identities < config.identities_per_batch:
        raise ValueError(
            f"--data={config.data} holds {num_identities} identities, fewer than "
            f"--identities_per_batch={config.identities_per_batch} (a P×K batch draws P "
            "distinct identities). Lower --identities_per_batch or add identities."
        )
    if num_identities < 2:
        raise ValueError(
            f"--data={config.data} holds {num_identities} identity; training needs at least "
            "two (a triplet batch needs negatives, a classifier two classes)."
        )
