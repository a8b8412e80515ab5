"""`train_and_evaluate`: train → held-out verification against baselines → export.

The three verification rows (raw pixels, the freshly initialised network, the trained
network) are measured on the same pairs. The untrained row is taken before any checkpoint
is restored, from the network as `--seed` initialises it, so a resumed run reports the same
baseline as an uninterrupted one.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from tfface.training import evaluation
from tfface.training.trainer import Trainer
from tfface.training.trainer import write_scalar


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


def _summary_dict(result):
    return {
        "accuracy_mean": result.accuracy_mean,
        "accuracy_std": result.accuracy_std,
        "val_mean": result.val_mean,
        "val_std": result.val_std,
        "far_mean": result.far_mean,
        "auc": result.auc,
        "eer": result.eer,
    }


def train_and_evaluate(
    config,
    eval_data="synthetic",
    export_dir=None,
    evaluate=True,
    eval_every=0,
    strategy=None,
    scatter=True,
    log=print,
):
    """Runs a whole training job; returns a dict with the training summary and results.

    Args:
        config: a `TrainConfig`.
        eval_data: `synthetic`, `bin:PATH` or `lfw:PAIRS_TXT,IMAGES_DIR` (see
            `tfface.training.evaluation`).
        export_dir: where `tfface.export.export_saved_model` writes the SavedModel (with
            the threshold calibrated on the held-out pairs); None skips the export.
        evaluate: run the held-out verification (needed for the export threshold).
        eval_every: also evaluate every this many steps (TensorBoard `heldout/accuracy`);
            0 evaluates only before and after training.
        strategy: a `tf.distribute.Strategy` (default from `config.strategy`).
        scatter: write a 2-D scatter PNG of held-out embeddings (synthetic eval data).
        log: a print-like function.
    """
    t_start = time.time()
    trainer = Trainer(config, strategy=strategy, log=log)
    chief = trainer.chief
    model_dir = config.model_dir
    os.makedirs(model_dir, exist_ok=True)
    log(
        f"Data {config.data}: {trainer.num_examples} images of {trainer.num_classes} identities; "
        f"loss={config.loss}"
        + (
            f" mining={config.mining} scope={config.mining_scope}"
            if config.loss == "triplet"
            else ""
        )
        + f"; {trainer.num_replicas} replica(s); batch {config.global_batch_size} "
        f"(P={config.identities_per_batch} × K={config.images_per_identity}); "
        f"{trainer.total_steps} steps; model_dir={model_dir}"
    )
    results = {}
    pair_set = None
    embed = tf.function(lambda x: trainer.model(x, training=False), reduce_retracing=True)
    hooks = []
    if evaluate and chief:
        pair_set = evaluation.load_pair_set(eval_data, config.image_size, seed=config.seed)
        results["raw pixels"] = evaluation.raw_pixel_result(pair_set)
        emb0 = evaluation.embed_images(embed, pair_set.images, flip=pair_set.flip)
        results["untrained net"] = evaluation.evaluate_embeddings(pair_set, emb0)
        log(format_table(pair_set, results))

        if eval_every:

            def periodic(step, writer):
                emb = evaluation.embed_images(embed, pair_set.images, flip=pair_set.flip)
                r = evaluation.evaluate_embeddings(pair_set, emb)
                log(f"step {step}: held-out accuracy {r.accuracy_mean:.4f} ± {r.accuracy_std:.4f}")
                if writer is not None:
                    with writer.as_default(step=step):
                        write_scalar("heldout/accuracy", r.accuracy_mean)
                        write_scalar("heldout/auc", r.auc)

            hooks.append((eval_every, periodic))

    summary = trainer.fit(hooks=hooks)
    out = {"train": summary, "total_steps": trainer.total_steps}
    if not (evaluate and chief):
        return out

    t_eval = time.time()
    emb = evaluation.embed_images(embed, pair_set.images, flip=pair_set.flip)
    trained = evaluation.evaluate_embeddings(pair_set, emb)
    results["trained net"] = trained
    log(format_table(pair_set, results))
    gain = trained.accuracy_mean - results["raw pixels"].accuracy_mean
    log(f"Trained minus raw pixels: {100 * gain:+.1f} accuracy points.")

    eval_dir = os.path.join(model_dir, "eval")
    os.makedirs(eval_dir, exist_ok=True)
    from tfface.eval import write_report

    write_report(
        trained,
        os.path.join(eval_dir, "heldout.json"),
        os.path.join(eval_dir, "heldout_roc.png"),
        title=f"{config.loss}: {pair_set.name}, accuracy {trained.accuracy_mean:.4f}",
    )
    for name, key in (("raw pixels", "raw_pixels"), ("untrained net", "untrained")):
        write_report(results[name], os.path.join(eval_dir, f"{key}.json"))
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
    with writer.as_default(step=trainer.total_steps):
        write_scalar("heldout/accuracy", trained.accuracy_mean)
        write_scalar("heldout/auc", trained.auc)
        write_scalar("heldout/val_at_far", trained.val_mean)
    writer.flush()
    if scatter and pair_set.labels is not None:
        evaluation.write_scatter(
            os.path.join(eval_dir, "heldout_scatter.png"), emb, pair_set.labels
        )

    threshold, all_pairs_accuracy = evaluation.calibrated_threshold(pair_set, emb)
    # Unit embeddings: cosine lies in [-1, 1]; an accept-all/reject-all cut can fall outside.
    threshold = float(np.clip(threshold, -1.0, 1.0))
    out.update(
        {
            "eval_data": eval_data,
            "eval_pairs": len(pair_set),
            "results": {name: _summary_dict(r) for name, r in results.items()},
            "threshold": threshold,
            "threshold_accuracy_all_pairs": all_pairs_accuracy,
            "eval_seconds": time.time() - t_eval,
        }
    )
    if export_dir:
        from tfface.export import export_saved_model

        path = export_saved_model(
            trainer.model, export_dir, threshold=threshold, image_size=config.image_size
        )
        out["export_path"] = path
        log(f"Exported SavedModel to {path} (verify threshold {threshold:.4f}).")
    out["wall_seconds"] = time.time() - t_start
    with open(os.path.join(eval_dir, "summary.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
        f.write("\n")
    return out
