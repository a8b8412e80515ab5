"""The held-out report train.py prints: verification rows next to the baselines, 1:N, the
scatter PNG (tfface.eval.heldout, tfface.eval.scatter)."""

import numpy as np
import pytest

from tfface.eval import heldout
from tfface.eval.pairs import PairSet
from tfface.eval.pairs import make_lfw_style_pairs
from tfface.eval.scatter import write_scatter

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IDENTITIES = 20


def _pair_set(with_labels=True):
    """Identity k's images are 8×8 noise (±20) around the grey level 10·k + 30: raw pixels
    (mean-centred per image) see only the noise, the identity oracle below never errs."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(IDENTITIES), 4)
    noise = rng.integers(-20, 21, size=(len(labels), 8, 8, 3))
    images = (labels[:, None, None, None] * 10 + 30 + noise).astype(np.uint8)  # 10..240
    # The oracle reads the identity from the mean grey level: the mean of 192 noise values
    # has std 11.8 / sqrt(192) = 0.85, so its rounding error stays far below 5.
    pairs = make_lfw_style_pairs(labels, num_folds=2, pairs_per_fold=20)
    return PairSet(
        name="toy",
        images=images,
        first=pairs.first,
        second=pairs.second,
        issame=pairs.issame,
        num_folds=2,
        labels=labels if with_labels else None,
    )


def _oracle(x):
    """One-hot of the identity encoded in the mean grey level."""
    identity = np.rint((x.reshape(len(x), -1).mean(axis=1) - 30) / 10).astype(int)
    return np.eye(IDENTITIES, dtype=np.float32)[identity]


def test_rows_baselines_and_table():
    pair_set = _pair_set()
    result, embeddings = heldout.evaluate_model(_oracle, pair_set, batch_size=7)
    assert result.accuracy_mean == 1.0 and result.auc == 1.0
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    results = {**heldout.baseline_results(_oracle, pair_set), "trained net": result}
    assert list(results) == ["raw pixels", "untrained net", "trained net"]
    assert results["raw pixels"].accuracy_mean < 0.8  # mean-centred: only noise is left
    lines = heldout.format_table(pair_set, results).splitlines()
    assert lines[0] == "Held-out verification on toy: 80 pairs, 2 folds (cosine similarity)"
    assert lines[-1].startswith("  trained net     1.0000 ± 0.0000")
    summary = heldout.summary_dict(result)
    assert summary["accuracy_mean"] == 1.0 and summary["eer"] == 0.0
    assert set(summary) == {"accuracy_mean", "accuracy_std", "val_mean", "val_std"} | {
        "far_mean",
        "auc",
        "eer",
    }


def test_identification_only_with_labels():
    pair_set = _pair_set()
    _, embeddings = heldout.evaluate_model(_oracle, pair_set)
    rows = heldout.heldout_identification(embeddings, pair_set)
    assert list(rows) == ["raw pixels", "trained net"]
    assert rows["trained net"].cmc[1] == 1.0
    assert heldout.heldout_identification(embeddings, _pair_set(with_labels=False)) == {}


@pytest.mark.parametrize("max_identities", [3, 10])
def test_scatter_writes_a_png(tmp_path, max_identities):
    pair_set = _pair_set()
    _, embeddings = heldout.evaluate_model(_oracle, pair_set)
    path = tmp_path / "scatter.png"
    write_scatter(str(path), embeddings, pair_set.labels, max_identities=max_identities)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
