"""`train_and_evaluate`: train → held-out verification against baselines → export.

The verification rows (raw pixels, the freshly initialised network, the trained network)
are measured with `tfface.eval.heldout` on the same `PairSet`. The untrained row is taken
before any checkpoint is restored, from the network as `seed` initialises it, so a resumed
run reports the same baseline as an uninterrupted one. In a `--pretrained` run that row is
the published weights before fine-tuning, named "pretrained net".
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from tfface import model_metadata
from tfface.eval import pairs as pairs_lib
from tfface.eval.heldout import baseline_results
from tfface.eval.heldout import evaluate_model
from tfface.eval.heldout import format_table
from tfface.eval.heldout import heldout_identification
from tfface.eval.heldout import summary_dict
from tfface.eval.identification import format_identification
from tfface.eval.scatter import write_scatter
from tfface.training import heads
from tfface.training import run_dir
from tfface.training.eval_split import plan_split
from tfface.training.eval_split import split_pairs
from tfface.training.preflight import check_identities
from tfface.training.schema import SPLIT_EVAL_DATA
from tfface.training.trainer import Trainer
from tfface.training.trainer import write_scalar

# The row of the weights a --pretrained run starts from (the "untrained net" otherwise).
_START_ROW = "pretrained net"
# Open-set 1:N needs enrolled and non-mated identities beyond the largest rank (10).
MIN_IDENTIFICATION_IDENTITIES = 20


def load_training_source(config):
    """The training `Source` of `config.data`, checked to hold enough identities for a
    P×K batch (raises ValueError naming `--data`) before any model is built. With
    `eval_data="split"` (and evaluation on) it is the training side of the split
    (`split_training_source`)."""
    from tfface import data

    source = data.load(config.data, image_size=config.image_size)
    check_identities(config, len(source.identities))
    if _uses_split(config):
        source = split_training_source(config, source)
    return source


def _uses_split(config):
    return config.evaluate and config.eval_data == SPLIT_EVAL_DATA


def split_training_source(config, source):
    """The identities of `source` left for training after the seeded, identity-disjoint
    evaluation split (`tfface.training.eval_split`); its `held_out` attribute is
    (source, `EvalSplit`). Raises ValueError naming the numbers when `source` is too small."""
    from tfface.data.subset import SubsetSource

    split = plan_split(source.labels, config.seed, config.identities_per_batch, config.data)
    train = SubsetSource(source, split.train_indices, name=f"{config.data} (training side)")
    train.held_out = (source, split)
    return train


def split_pair_set(config, source, split):
    """The `PairSet` of the held-out side of `split` (images decoded at the run's size)."""
    indices = tf.data.Dataset.from_tensors(tf.constant(split.eval_indices))
    images, labels = next(iter(source.images_for_indices(indices)))
    labels = labels.numpy().astype(np.int64)
    pairs = split_pairs(labels, seed=config.seed)
    return pairs_lib.PairSet(
        name=split.describe(config.data),
        images=np.asarray(images.numpy(), np.uint8),
        first=pairs.first,
        second=pairs.second,
        issame=pairs.issame,
        num_folds=pairs.num_folds,
        labels=labels,
    )


def export_template(config):
    """The crop template the trained model expects: the pretrained weights' own (dlib's
    chip for dlib_resnet_v1), else the ArcFace template the training data is aligned on."""
    if config.pretrained:
        from tfface import models

        return models.get_pretrained_spec(config.backbone).template
    return "arcface"


def _run_metadata(config, model, threshold=None, threshold_source=None):
    return model_metadata.build_metadata(
        name=config.backbone,
        image_size=config.image_size,
        embedding_size=config.embedding_dim,
        fingerprint=model_metadata.model_fingerprint(model),
        threshold=threshold,
        template=export_template(config),
        threshold_source=threshold_source,
        # AdaFace/MagFace: `tfface.recognition` loading the .keras file reports the norm.
        quality_scores=model_metadata.model_quality_scores(model),
    )


def _total_steps(config, source):
    if config.steps:
        return config.steps
    return config.epochs * max(1, -(-source.num_examples // config.global_batch_size))


def _embedder(model):
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: fn(x).numpy()


def train_and_evaluate(config, strategy=None, source=None, scatter=True, log=print):
    """Runs a whole training job; returns a dict with the training summary and results.

    Args:
        config: a validated `TrainConfig`; its evaluation and export sections say whether
            to evaluate held-out pairs (`eval_data`, every `eval_every` steps as well) and
            where to export the SavedModel (with the threshold calibrated on those pairs).
        strategy: a `tf.distribute.Strategy` (default from `config.strategy`).
        source: the training `Source` (default `load_training_source(config)`).
        scatter: write a 2-D scatter PNG of held-out embeddings (synthetic eval data).
        log: a print-like function.

    Writes, on the chief: `<model_dir>/embedding_model.keras` (the trained embedding model)
    and, when evaluating, `<model_dir>/eval/` (reports, `summary.json`). A run that already
    reached its last step and exported is not redone: its summary is returned.
    """
    t_start = time.time()
    if source is None:
        source = load_training_source(config)
    held_out = getattr(source, "held_out", None)
    if _uses_split(config) and held_out is None:
        source = split_training_source(config, source)
        held_out = source.held_out
    total_steps = _total_steps(config, source)
    done = run_dir.finished_run(config, total_steps) if config.evaluate else None
    if done is not None:
        where = f"; exported to {done['export_path']}" if done.get("export_path") else ""
        log(
            f"{config.model_dir} already finished at step {total_steps}{where}. Nothing to do "
            "(raise --steps with --allow_config_change=steps to train further)."
        )
        return dict(done, already_finished=True)

    trainer = Trainer(config, strategy=strategy, source=source, log=log)
    chief = trainer.chief
    model_dir = config.model_dir
    os.makedirs(model_dir, exist_ok=True)
    log(
        f"Data {config.data}: {trainer.num_examples} images of {trainer.num_classes} identities; "
        f"loss={config.loss}"
        + (
            f" mining={config.mining} scope={config.mining_scope}"
            if heads.get_head(config.loss).mines
            else ""
        )
        + f"; {trainer.num_replicas} replica(s); batch {config.global_batch_size} "
        f"(P={config.identities_per_batch} × K={config.images_per_identity}); "
        f"{trainer.total_steps} steps; model_dir={model_dir}"
    )
    if held_out is not None:
        log(
            f"Held out for evaluation (identity-disjoint, seed {config.seed}): "
            f"{held_out[1].describe(config.data)}; training on the other "
            f"{trainer.num_classes} identities."
        )
    evaluate = config.evaluate and chief
    embed = _embedder(trainer.model)
    results = {}
    pair_set = None
    hooks = []
    if evaluate:
        if held_out is not None:
            pair_set = split_pair_set(config, *held_out)
        else:
            pair_set = pairs_lib.load_pair_set(
                config.eval_data, config.image_size, seed=config.seed
            )
        for name, result in baseline_results(embed, pair_set).items():
            results[_START_ROW if config.pretrained and name == "untrained net" else name] = result
        log(format_table(pair_set, results))

        if config.eval_every:

            def periodic(step, writer):
                r, _ = evaluate_model(embed, pair_set)
                log(f"step {step}: held-out accuracy {r.accuracy_mean:.4f} ± {r.accuracy_std:.4f}")
                if writer is not None:
                    with writer.as_default(step=step):
                        write_scalar("heldout/accuracy", r.accuracy_mean)
                        write_scalar("heldout/auc", r.auc)

            hooks.append((config.eval_every, periodic))

    summary = trainer.fit(hooks=hooks)
    out = {"train": summary, "total_steps": trainer.total_steps}
    if chief:
        out["model_path"] = os.path.join(model_dir, run_dir.MODEL_FILE)
        trainer.model.save(out["model_path"])
        # The crop template travels with the file (python -m tfface.export reads it).
        metadata = _run_metadata(config, trainer.model)
        model_metadata.write_keras_metadata(out["model_path"], metadata)
    if not evaluate:
        return out

    t_eval = time.time()
    trained, emb = evaluate_model(embed, pair_set)
    results["trained net"] = trained
    log(format_table(pair_set, results))
    identification = {}
    num_identities = 0 if pair_set.labels is None else len(np.unique(pair_set.labels))
    if num_identities >= MIN_IDENTIFICATION_IDENTITIES:
        identification = heldout_identification(emb, pair_set)
    elif pair_set.labels is not None:
        log(
            f"1:N identification skipped: {num_identities} held-out identities, fewer than "
            f"{MIN_IDENTIFICATION_IDENTITIES}."
        )
    for name, r in identification.items():
        log(format_identification(r, f"1:N {name}"))
    gain = trained.accuracy_mean - results["raw pixels"].accuracy_mean
    log(f"Trained minus raw pixels: {100 * gain:+.1f} accuracy points.")
    if gain <= 0:
        log(
            f"WARNING: the trained net does not beat the raw-pixel baseline on {pair_set.name} "
            f"({100 * gain:+.1f} points): it has not learnt a useful embedding. Train longer "
            "or check the data before using its export."
        )

    eval_dir = os.path.join(model_dir, run_dir.EVAL_DIR)
    os.makedirs(eval_dir, exist_ok=True)
    from tfface.eval import write_report

    write_report(
        trained,
        os.path.join(eval_dir, "heldout.json"),
        os.path.join(eval_dir, "heldout_roc.png"),
        title=f"{config.loss}: {pair_set.name}, accuracy {trained.accuracy_mean:.4f}",
    )
    start = _START_ROW if config.pretrained else "untrained net"
    for name, key in (("raw pixels", "raw_pixels"), (start, start.split()[0])):
        write_report(results[name], os.path.join(eval_dir, f"{key}.json"))
    writer = tf.summary.create_file_writer(os.path.join(model_dir, run_dir.EVENTS_DIR))
    with writer.as_default(step=trainer.total_steps):
        write_scalar("heldout/accuracy", trained.accuracy_mean)
        write_scalar("heldout/auc", trained.auc)
        write_scalar("heldout/val_at_far", trained.val_mean)
    writer.flush()
    if scatter and pair_set.labels is not None:
        write_scatter(os.path.join(eval_dir, "heldout_scatter.png"), emb, pair_set.labels)

    threshold, all_pairs_accuracy = pairs_lib.calibrated_threshold(emb, pair_set)
    # Unit embeddings: cosine lies in [-1, 1]; an accept-all/reject-all cut can fall outside.
    threshold = float(np.clip(threshold, -1.0, 1.0))
    threshold_source = f"--eval_data={config.eval_data}: {pair_set.name}; {len(pair_set)} pairs"
    log(f"Threshold {threshold:.4f} fitted on {threshold_source}.")
    metadata = _run_metadata(config, trainer.model, threshold, threshold_source)
    model_metadata.write_keras_metadata(out["model_path"], metadata)
    out.update(
        {
            "eval_data": config.eval_data,
            "eval_pairs": len(pair_set),
            "results": {name: summary_dict(r) for name, r in results.items()},
            "beats_raw_pixels": bool(gain > 0),
            "identification": {name: r.to_dict() for name, r in identification.items()},
            "threshold": threshold,
            "threshold_source": threshold_source,
            "threshold_accuracy_all_pairs": all_pairs_accuracy,
            "eval_seconds": time.time() - t_eval,
        }
    )
    if config.export:
        from tfface.export import export_saved_model

        path = export_saved_model(
            trainer.model,
            config.export_path,
            threshold=threshold,
            image_size=config.image_size,
            template=export_template(config),
            threshold_source=threshold_source,
        )
        out["export_path"] = path
        log(
            f"Exported SavedModel to {path} (verify threshold {threshold:.4f}, "
            f"template {export_template(config)})."
        )
    out["wall_seconds"] = time.time() - t_start
    with open(os.path.join(eval_dir, run_dir.SUMMARY_FILE), "w") as f:
        json.dump(out, f, indent=1, default=str)
        f.write("\n")
    return out
