"""Held-out evaluation of an embedding function next to the baselines it must beat.

What train.py reports before and after training, on one `PairSet` (`tfface.eval.pairs`):
LFW-protocol verification rows for raw pixels, the untrained and the trained network
(`baseline_results`, `evaluate_model`, printed by `format_table`), and open-set 1:N
identification where the set has identity labels (`heldout_identification`). NumPy only:
`embed` is any function mapping float32 images [N, S, S, 3] (0–255) to embeddings.
"""

from tfface.eval import pairs as pairs_lib
from tfface.eval.embed import embed_array
from tfface.eval.identification import evaluate_identification

EVAL_BATCH = 256


def evaluate_model(embed, pair_set, batch_size=EVAL_BATCH):
    """(VerificationResult, unit embeddings) of an embedding function on `pair_set`."""
    emb = embed_array(embed, pair_set.images, batch_size=batch_size, flip=pair_set.flip)
    return pairs_lib.evaluate_embeddings_on_pairs(emb, pair_set), emb


def baseline_results(embed, pair_set):
    """{"raw pixels": …, "untrained net": …}: the rows a trained net must beat."""
    raw = pairs_lib.raw_pixel_embeddings(pair_set.images)
    return {
        "raw pixels": pairs_lib.evaluate_embeddings_on_pairs(raw, pair_set),
        "untrained net": evaluate_model(embed, pair_set)[0],
    }


def heldout_identification(embeddings, pair_set):
    """Open-set 1:N (rank-1/5/10, TPIR@FPIR) on held-out identities with labels (the
    synthetic set), for raw pixels and the given embeddings; {} for pair-only sets."""
    if pair_set.labels is None:
        return {}
    raw = pairs_lib.raw_pixel_embeddings(pair_set.images)
    return {
        "raw pixels": evaluate_identification(raw, pair_set.labels),
        "trained net": evaluate_identification(embeddings, pair_set.labels),
    }


def _row(name, result):
    return (
        f"  {name:<15} {result.accuracy_mean:.4f} ± {result.accuracy_std:.4f}   "
        f"{result.val_mean:.3f} ± {result.val_std:.3f}   {result.auc:.4f}"
    )


def format_table(pair_set, results):
    """The console table: one row per (name, VerificationResult)."""
    first = next(iter(results.values()))
    lines = [
        f"Held-out verification on {pair_set.name}: {len(pair_set)} pairs, "
        f"{first.num_folds} folds (cosine similarity)",
        f"  {'model':<15} {'accuracy ± std':<17}   {'VAL@FAR=1e-3':<13}   AUC",
    ]
    lines += [_row(name, r) for name, r in results.items()]
    return "\n".join(lines)


def summary_dict(result):
    """The headline numbers of a `VerificationResult` (a run's `eval/summary.json` rows)."""
    return {
        "accuracy_mean": result.accuracy_mean,
        "accuracy_std": result.accuracy_std,
        "val_mean": result.val_mean,
        "val_std": result.val_std,
        "far_mean": result.far_mean,
        "auc": result.auc,
        "eer": result.eer,
    }
