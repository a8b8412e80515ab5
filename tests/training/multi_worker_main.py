"""One worker of the two-process MultiWorkerMirroredStrategy test (run as a script).

Usage: python multi_worker_main.py TF_CONFIG_JSON OUT.npz MODEL_DIR [--sigterm_at N]
       python multi_worker_main.py TF_CONFIG_JSON OUT.npz MODEL_DIR --partial_fc
Trains the test's tiny model for a few triplet steps (global mining) on fixed batches and
saves the final weights and losses. With `--sigterm_at N`, it runs `Trainer.fit` for 12
steps instead, the chief sends itself SIGTERM after step N, and OUT gets the step and
signal of the `TrainingInterrupted` each worker raised.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""


def _fit_until_sigterm(strategy, data, config, out_path, sigterm_at):
    import signal

    import numpy as np

    from tests.training.conftest import FixedData
    from tests.training.conftest import tiny_model
    from tfface.training.trainer import Trainer
    from tfface.training.trainer import TrainingInterrupted

    config.steps = 12
    data = FixedData(list(data) * 4, data.num_classes)

    def hook(step, writer):  # runs on the chief only
        if step == sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = Trainer(config, strategy=strategy, model=tiny_model, dataset=data)
    try:
        trainer.fit(hooks=[(1, hook)])
    except TrainingInterrupted as e:
        np.savez(out_path, step=e.step, signum=e.signum, chief=trainer.chief)
        return
    np.savez(out_path, step=-1, signum=0, chief=trainer.chief)


def partial_fc_case(config):
    """The ArcFace config and initial centres [D, C] of the Partial FC two-worker test."""
    import dataclasses

    import numpy as np

    config = dataclasses.replace(config, loss="arcface", mining=None, partial_fc=1.0)
    kernel = np.random.default_rng(0).normal(size=(config.embedding_dim, 8)).astype(np.float32)
    return config, kernel


def _partial_fc(strategy, data, config, out_path):
    """ArcFace with Partial FC at r = 1: each worker saves its weights and its shard."""
    import numpy as np

    from tests.training.conftest import tiny_model
    from tfface.training.trainer import Trainer

    config, kernel = partial_fc_case(config)
    trainer = Trainer(config, strategy=strategy, model=tiny_model, dataset=data)
    trainer.partial_fc.set_weights(kernel)
    losses = [float(trainer.train_step(images, labels)[0]) for images, labels in data]
    weights = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(trainer.trainable_variables)}
    pfc = trainer.partial_fc
    np.savez(
        out_path,
        losses=np.array(losses),
        shard=pfc.shards[0].numpy(),
        first=pfc.first_shard,
        **weights,
    )


def main(tf_config, out_path, model_dir, sigterm_at=None):
    os.environ["TF_CONFIG"] = tf_config
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    # Collective ops must be configured before anything initialises the TF runtime, and
    # importing tfface builds tensors: make the strategy first.
    from tfface.training.strategy import make_strategy

    strategy = make_strategy("multi_worker")
    import numpy as np

    from tests.training.conftest import multi_worker_case
    from tests.training.conftest import tiny_model
    from tfface.training.trainer import Trainer

    data, config = multi_worker_case(model_dir)
    if sigterm_at == "partial_fc":
        return _partial_fc(strategy, data, config, out_path)
    if sigterm_at is not None:
        return _fit_until_sigterm(strategy, data, config, out_path, int(sigterm_at))
    trainer = Trainer(config, strategy=strategy, model=tiny_model, dataset=data)
    losses = []
    for images, labels in data:
        loss, _ = trainer.train_step(images, labels)
        losses.append(float(loss))
    weights = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(trainer.trainable_variables)}
    np.savez(out_path, losses=np.array(losses), replicas=trainer.num_replicas, **weights)


if __name__ == "__main__":
    mode = ["partial_fc"] if "--partial_fc" in sys.argv else []
    main(*sys.argv[1:4], *(sys.argv[5:6] if "--sigterm_at" in sys.argv else mode))
