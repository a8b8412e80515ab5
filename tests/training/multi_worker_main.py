"""One worker of the two-process MultiWorkerMirroredStrategy test (run as a script).

Usage: python multi_worker_main.py TF_CONFIG_JSON OUT.npz MODEL_DIR [--sigterm_at N]
       python multi_worker_main.py TF_CONFIG_JSON OUT.npz MODEL_DIR --partial_fc
       python multi_worker_main.py TF_CONFIG_JSON OUT.npz MODEL_DIR --partial_fc_sampled
       python multi_worker_main.py TF_CONFIG_JSON OUT.npz MODEL_DIR --partial_fc_resume
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


PARTIAL_FC_SAVE_AT = 2


def partial_fc_case(config):
    """The ArcFace config and initial centres [D, C] of the Partial FC two-worker test."""
    import dataclasses

    import numpy as np

    config = dataclasses.replace(config, loss="arcface", mining=None, partial_fc=1.0)
    kernel = np.random.default_rng(0).normal(size=(config.embedding_dim, 8)).astype(np.float32)
    return config, kernel


def _partial_fc(strategy, data, config, out_path):
    """ArcFace with Partial FC at r = 1: each worker saves its weights and its shard, and
    both join a checkpoint after `PARTIAL_FC_SAVE_AT` steps (the chief's goes to the run's
    `checkpoints`), whose centres are also kept in OUT (`saved_centres`)."""
    import numpy as np

    from tests.training.conftest import tiny_model
    from tfface.training.trainer import Trainer

    config, kernel = partial_fc_case(config)
    trainer = Trainer(config, strategy=strategy, model=tiny_model, dataset=data)
    trainer.partial_fc.set_weights(kernel)
    losses = []
    for step, (images, labels) in enumerate(data):
        if step == PARTIAL_FC_SAVE_AT:
            trainer.step.assign(step)
            trainer.save()  # a collective: the shards of both workers are gathered
            saved = trainer.partial_fc.canonical()  # also one
        losses.append(float(trainer.train_step(images, labels)[0]))
    weights = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(trainer.trainable_variables)}
    pfc = trainer.partial_fc
    np.savez(
        out_path,
        losses=np.array(losses),
        shard=pfc.shards[0].numpy(),
        saved_centres=saved["centres"].numpy(),
        saved_momentum=saved["momentum"].numpy(),
        first=pfc.first_shard,
        **weights,
    )


def partial_fc_sampled_case(config):
    """Data and config of the two-worker Partial FC test at r < 1: 40 classes, two shards
    of 20 rows, 12 of them sampled per step (every positive of the 12-image batch)."""
    import dataclasses

    from tests.training.conftest import FixedData
    from tests.training.conftest import fixed_batches

    data = FixedData(fixed_batches(PARTIAL_FC_SAVE_AT, 4, 3, 8, 40, seed=1), 40)
    config = dataclasses.replace(config, loss="arcface", mining=None, partial_fc=0.25)
    return data, config


def _partial_fc_sampled(strategy, config, out_path):
    """Partial FC at r < 1: two steps, then each worker keeps its shard and momentum and
    both join a checkpoint; OUT also gets the canonical layout they gathered."""
    import numpy as np

    from tests.training.conftest import tiny_model
    from tfface.training.trainer import Trainer

    data, config = partial_fc_sampled_case(config)
    trainer = Trainer(config, strategy=strategy, model=tiny_model, dataset=data)
    for images, labels in data:
        trainer.train_step(images, labels)
    trainer.step.assign(len(data))
    pfc = trainer.partial_fc
    shard, momentum = pfc.shards[0].numpy(), pfc.slots[0]["momentum"].numpy()
    trainer.save()
    saved = pfc.canonical()
    np.savez(
        out_path,
        shard=shard,
        momentum=momentum,
        first=pfc.first_shard,
        sampled=pfc.num_sampled,
        saved_centres=saved["centres"].numpy(),
        saved_momentum=saved["momentum"].numpy(),
    )


def _partial_fc_resume(strategy, config, out_path):
    """Both workers restore the run's latest checkpoint of `_partial_fc_sampled` (a
    collective: the restore reads the canonical layout's specs by a gather); OUT gets each
    worker's shard and momentum as restored."""
    import numpy as np

    from tests.training.conftest import tiny_model
    from tfface.training.trainer import Trainer

    data, config = partial_fc_sampled_case(config)
    trainer = Trainer(config, strategy=strategy, model=tiny_model, dataset=data)
    path = trainer.restore()
    pfc = trainer.partial_fc
    np.savez(
        out_path,
        path=str(path),
        step=int(trainer.step.numpy()),
        first=pfc.first_shard,
        shard=pfc.shards[0].numpy(),
        momentum=pfc.slots[0]["momentum"].numpy(),
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
    if sigterm_at == "partial_fc_sampled":
        return _partial_fc_sampled(strategy, config, out_path)
    if sigterm_at == "partial_fc_resume":
        return _partial_fc_resume(strategy, config, out_path)
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
    mode = [a[2:] for a in sys.argv if a.startswith("--partial_fc")]
    main(*sys.argv[1:4], *(sys.argv[5:6] if "--sigterm_at" in sys.argv else mode))
