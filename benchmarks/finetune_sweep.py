"""Fine-tuning dlib_resnet_v1 on real aligned faces: learning rate × warm-up sweep.

The folder is `real_face_folder.py`'s (9 real people of the wheel photos, 8 re-photographed
crops each). Every run is `train.py --backbone=dlib_resnet_v1 --pretrained
--trainable_blocks=2 --data=folder:... ` with the default evaluation, the seeded
identity-disjoint split (4 people held out, 5 trained on, P=4 × K=4), and prints, per
setting: held-out accuracy of the pretrained model and after fine-tuning, the AUC, the
calibrated threshold, the last loss and the batch's mean pairwise embedding cosine (1.0
is a collapse; the run then stops with exit status 4 and no figures after it).

    .venv/bin/python benchmarks/finetune_sweep.py [--steps 30] [--folder /tmp/real_faces]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SETTINGS = (  # (learning rate, warm-up fraction of the steps)
    (1e-3, 0.0),
    (1e-3, 0.1),
    (1e-4, 0.0),
    (1e-4, 0.1),
    (3e-5, 0.1),
    (1e-5, 0.0),
    (1e-5, 0.1),
)


def run(folder, learning_rate, warmup, steps, model_dir, seed=0):
    from tfface.training import pipeline
    from tfface.training.errors import EmbeddingCollapseError
    from tfface.training.schema import TrainConfig

    config = TrainConfig(
        backbone="dlib_resnet_v1",
        pretrained=True,
        image_size=150,
        embedding_dim=128,
        trainable_blocks=2,
        identities_per_batch=4,
        images_per_identity=4,
        data=f"folder:{folder}",
        steps=steps,
        learning_rate=learning_rate,
        warmup_steps=int(warmup * steps),
        log_every=1,
        export=False,
        model_dir=model_dir,
        seed=seed,
    ).validate()
    lines = []
    t0 = time.time()
    try:
        out = pipeline.train_and_evaluate(config, scatter=False, log=lines.append)
    except EmbeddingCollapseError as e:
        return {"collapsed": e.step, "seconds": time.time() - t0}
    results = out["results"]
    return {
        "pretrained": results["pretrained net"]["accuracy_mean"],
        "tuned": results["trained net"]["accuracy_mean"],
        "auc_before": results["pretrained net"]["auc"],
        "auc": results["trained net"]["auc"],
        "threshold": out["threshold"],
        "loss": out["train"]["loss"],
        "pairs": out["eval_pairs"],
        "source": out["threshold_source"],
        "seconds": time.time() - t0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--folder", default=None, help="default: written to a temp dir")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="finetune_sweep_")
    folder = args.folder
    if folder is None or not os.path.isdir(folder):
        from real_face_folder import write_real_face_folder

        folder = folder or os.path.join(tmp, "faces")
        write_real_face_folder(folder)
    print(f"real faces: {folder}; {args.steps} steps, trainable_blocks=2, P=4 x K=4")
    print(
        "| lr | warm-up | pretrained acc | fine-tuned acc | AUC before → after | threshold "
        "| last loss | s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i, (lr, warm) in enumerate(SETTINGS):
        r = run(folder, lr, warm, args.steps, os.path.join(tmp, f"run{i}"))
        warm_text = f"{int(warm * args.steps)} steps" if warm else "none"
        if "collapsed" in r:
            print(
                f"| {lr:g} | {warm_text} | | collapsed: stopped at step {r['collapsed']} "
                f"| | | | {r['seconds']:.0f} |",
                flush=True,
            )
            continue
        print(
            f"| {lr:g} | {warm_text} | {r['pretrained']:.4f} | {r['tuned']:.4f} | "
            f"{r['auc_before']:.4f} → {r['auc']:.4f} | {r['threshold']:.4f} | {r['loss']:.4f} "
            f"| {r['seconds']:.0f} |",
            flush=True,
        )
    print(f"pairs: {r.get('source', '')}")


if __name__ == "__main__":
    main()
