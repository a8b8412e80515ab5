"""The collapse guard's measure, step by step: the mean pairwise cosine of the training
batch's embeddings (`tfface.training.trainer.mean_pairwise_cosine`), for healthy runs and
for the collapse it must catch.

Runs (synthetic faces, the trainer's own P×K batches, no evaluation):
- `small_cnn` from scratch, the default triplet job (P=32 × K=4, lr 1e-3);
- pretrained `dlib_resnet_v1`, `--trainable_blocks=2`, P=8 × K=4, at the fine-tuning
  default (lr 1e-5, warm-up) and at the old default (lr 1e-3, no warm-up).
Prints min / median / max of the cosine over the steps and the steps at or above the
guard's `COLLAPSE_COSINE`.

    .venv/bin/python benchmarks/collapse_cosine.py [--steps 40]
"""

import argparse
import tempfile

import numpy as np

# The README's fine-tuning command (issue 17 defect 1).
DLIB_FINETUNE = dict(
    backbone="dlib_resnet_v1",
    pretrained=True,
    image_size=150,
    embedding_dim=128,
    trainable_blocks=2,
    identities_per_batch=8,
)
RUNS = {
    "small_cnn scratch, lr 1e-3": dict(identities_per_batch=32),
    "dlib pretrained, lr 1e-5 + warm-up": DLIB_FINETUNE,
    "dlib pretrained, lr 1e-3, no warm-up": dict(DLIB_FINETUNE, learning_rate=1e-3, warmup_steps=0),
}


def cosines(steps, **overrides):
    from tfface.training.schema import TrainConfig
    from tfface.training.trainer import Trainer

    config = TrainConfig(
        steps=steps,
        evaluate=False,
        export=False,
        model_dir=tempfile.mkdtemp(prefix="collapse_"),
        **overrides,
    ).validate()
    trainer = Trainer(config, log=lambda *a: None)
    batches = trainer._make_iterator()
    values = []
    for _ in range(steps):
        images, labels = next(batches)
        trainer.train_step(images, labels)
        values.append(float(trainer.last_cosine))
    return np.array(values)


def main():
    from tfface.training.trainer import COLLAPSE_COSINE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    print(f"{args.steps} steps each; guard: cosine >= {COLLAPSE_COSINE}")
    print("| run | first | min | median | max | steps >= guard |")
    print("|---|---|---|---|---|---|")
    for name, overrides in RUNS.items():
        c = cosines(args.steps, **overrides)
        print(
            f"| {name} | {c[0]:.4f} | {c.min():.4f} | {np.median(c):.4f} | {c.max():.4f} | "
            f"{int(np.sum(c >= COLLAPSE_COSINE))} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
