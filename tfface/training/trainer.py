"""`Trainer`: a custom training loop under `strategy.run` with checkpoint/resume.

Keras 3's `model.fit` under MultiWorkerMirroredStrategy is fragile (keras#20585), so the
loop is written out: the host pulls one global P×K batch, splits it into contiguous
per-replica shards (replica r gets rows [r·b, (r+1)·b), so with P divisible by the number of
replicas every shard holds whole identities), and `strategy.run` computes each replica's
loss and applies the SUM-all-reduced gradients (see `objective.py` for the scaling).
"""

import math
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfface.training.objective import Objective
from tfface.training.schedules import WarmupSchedule
from tfface.training.schedules import make_optimizer
from tfface.training.strategy import is_chief
from tfface.training.strategy import make_strategy

# Test-only hook (documented in BUILD_NOTES.md): poison the batch of this step with NaN
# so tests can check the NaN policy through the real loss path. Not a flag on purpose.
NAN_TEST_HOOK_ENV = "TFFACE_TESTING_NAN_AT_STEP"


class NonFiniteLossError(RuntimeError):
    """Raised when a training step produces a NaN or infinite loss."""


class Trainer:
    """Trains an embedding model with one of the tfface objectives.

    Args:
        config: a `TrainConfig`.
        strategy: a `tf.distribute.Strategy`; default `make_strategy(config.strategy)`.
        source: a `tfface.data` `Source`; default `tfface.data.load(config.data)`.
        model: replaces the default `config.backbone` model: a `keras.Model` mapping
            float32 0–255 images to unit embeddings, or a callable `model(config)` that
            returns one (called inside `strategy.scope()`, which a distributed run needs).
        dataset: an iterable of (images, labels) global batches to use instead of
            `tfface.data.pk_batches(source, ...)` (tests feed fixed batches).
        log: a print-like function for progress lines.
    """

    def __init__(self, config, strategy=None, source=None, model=None, dataset=None, log=print):
        self.config = config.validate()
        self.log = log
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)
        self.strategy = strategy or make_strategy(config.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        if config.identities_per_batch % self.num_replicas:
            raise ValueError(
                "`identities_per_batch` must be divisible by the number of replicas so that "
                "every replica gets whole identities. Received: identities_per_batch="
                f"{config.identities_per_batch}, replicas={self.num_replicas}"
            )
        self.chief = is_chief(self.strategy)
        if source is None and dataset is None:
            from tfface import data

            source = data.load(config.data, image_size=config.image_size)
        self.source = source
        self._dataset = dataset
        if source is not None:
            self.num_classes = len(source.identities)
            self.num_examples = source.num_examples
        else:
            self.num_classes = int(getattr(dataset, "num_classes", 0)) or None
            self.num_examples = int(getattr(dataset, "num_examples", 0)) or None
        if config.steps:
            self.total_steps = config.steps
        else:
            if not self.num_examples:
                raise ValueError("`epochs` needs a source with a known number of images.")
            self.total_steps = config.epochs * self.steps_per_epoch
        self._nan_step = int(os.environ.get(NAN_TEST_HOOK_ENV, "-1"))

        previous_policy = keras.config.dtype_policy()
        if config.mixed_precision:
            keras.mixed_precision.set_dtype_policy("mixed_float16")
        try:
            with self.strategy.scope():
                self._build_model(model)
                self.objective = Objective(
                    config.loss,
                    self.num_classes,
                    mining=config.mining,
                    mining_scope=config.mining_scope,
                    triplet_margin=config.triplet_margin,
                    distance_metric=config.distance_metric,
                    head_kwargs=config.head_kwargs,
                    center_weight=config.center_weight,
                    center_alpha=config.center_alpha,
                )
                self.objective.build(self.model.output.shape[-1])
                self.schedule = WarmupSchedule(
                    config.learning_rate,
                    total_steps=self.total_steps,
                    warmup_steps=config.warmup_steps,
                    decay=config.lr_schedule,
                )
                self.optimizer = make_optimizer(
                    config.optimizer,
                    self.schedule,
                    weight_decay=config.weight_decay,
                    momentum=config.momentum,
                    mixed_precision=config.mixed_precision,
                )
                self.optimizer.build(self.trainable_variables)
        finally:
            keras.mixed_precision.set_dtype_policy(previous_policy)
        # Host-side counters; checkpointed with everything else.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self._data_iterator = None
        self._checkpoint = None
        self._manager = None
        self._train_step_fn = None

    # === Building ===
    def _build_model(self, model):
        """Sets `self.model` (pixels → unit embeddings; evaluated and exported) and
        `self.train_model` (pixels → [unit embeddings, backbone features])."""
        if isinstance(model, keras.Model) or callable(model):
            self.model = model if isinstance(model, keras.Model) else model(self.config)
            self.train_model = self.model
            return self.model
        from tfface import layers
        from tfface import models

        cfg = self.config
        backbone = models.create_backbone(
            cfg.backbone, image_size=cfg.image_size, embedding_dim=cfg.embedding_dim
        )
        # The same graph as models.build_embedding_model, but the unnormalised backbone
        # features are exposed too: softmax, center loss and SphereFace are defined on them.
        inputs = keras.Input((cfg.image_size, cfg.image_size, 3), dtype="float32", name="pixels")
        x = layers.ImageNormalization(mode="insightface", name="normalization")(inputs)
        features = backbone(x)
        unit = layers.L2Normalize(axis=-1, dtype="float32", name="l2_normalize")(features)
        self.model = keras.Model(inputs, unit, name=f"{cfg.backbone}_embedding")
        self.train_model = keras.Model(inputs, [unit, features], name="train_model")
        return self.model

    @property
    def trainable_variables(self):
        return list(self.model.trainable_variables) + list(self.objective.trainable_weights)

    @property
    def steps_per_epoch(self):
        return max(1, math.ceil(self.num_examples / self.config.global_batch_size))

    # === Data ===
    def _make_iterator(self):
        if self._dataset is not None:
            return iter(self._dataset)
        from tfface.data.sampler import pk_batches

        cfg = self.config
        ds = pk_batches(
            self.source,
            identities_per_batch=cfg.identities_per_batch,
            images_per_identity=cfg.images_per_identity,
            seed=cfg.seed,
            image_size=cfg.image_size,
            augment=cfg.augment,
            num_replicas=self.num_replicas,
        )
        return iter(ds)

    def _distribute(self, images, labels):
        """Contiguous per-replica shards of one global batch, in replica order."""
        n = self.num_replicas
        if n == 1:
            return tf.convert_to_tensor(images), tf.convert_to_tensor(labels)
        size = int(images.shape[0])
        if size % n:
            raise ValueError(
                f"The global batch ({size}) must be divisible by the replica count ({n})."
            )
        shard = size // n

        def piece(x):
            return lambda ctx: x[
                ctx.replica_id_in_sync_group * shard : (ctx.replica_id_in_sync_group + 1) * shard
            ]

        dist = self.strategy.experimental_distribute_values_from_function
        return dist(piece(images)), dist(piece(labels))

    # === The step ===
    def _step_fn(self, images, labels, global_labels):
        with tf.GradientTape() as tape:
            outputs = self.train_model(images, training=True)
            if isinstance(outputs, (list, tuple)):
                embeddings, features = outputs
            else:
                embeddings, features = outputs, None
            loss, stats = self.objective(
                embeddings, labels, training=True, features=features, global_labels=global_labels
            )
            # Σ-all-reduce of gradients over N replicas: 1/N makes it the global-batch mean.
            scaled = loss / self.num_replicas
            if self.config.mixed_precision:
                scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, {k: tf.cast(v, tf.float32) for k, v in stats.items()}

    def train_step(self, images, labels):
        """One step on a global batch; returns (mean loss, mean stats) as tensors."""
        if self._train_step_fn is None:

            @tf.function
            def fn(images, labels, global_labels):
                loss, stats = self.strategy.run(self._step_fn, args=(images, labels, global_labels))
                mean = tf.distribute.ReduceOp.MEAN
                loss = self.strategy.reduce(mean, loss, axis=None)
                stats = {k: self.strategy.reduce(mean, v, axis=None) for k, v in stats.items()}
                return loss, stats

            self._train_step_fn = fn
        global_labels = tf.convert_to_tensor(labels)
        return self._train_step_fn(*self._distribute(images, labels), global_labels)

    # === Checkpoints ===
    def _checkpoint_dir(self):
        base = os.path.join(self.config.model_dir, "checkpoints")
        if self.chief:
            return base
        # Non-chief workers must also save (the save is collective) but not into model_dir.
        return os.path.join(tempfile.gettempdir(), f"tfface_worker_ckpt_{os.getpid()}")

    def _ensure_checkpoint(self):
        if self._manager is not None:
            return
        items = {
            "model": self.model,
            "objective": self.objective,
            "optimizer": self.optimizer,
            "step": self.step,
            "epoch": self.epoch,
        }
        self._iterator_in_checkpoint = _checkpointable_iterator(self._data_iterator)
        if self._iterator_in_checkpoint:
            items["data"] = self._data_iterator
        self._checkpoint = tf.train.Checkpoint(**items)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self._checkpoint_dir(), max_to_keep=self.config.keep_checkpoints
        )

    def restore(self):
        """Restores the latest checkpoint in `model_dir`, if any; returns its path or None."""
        if self._data_iterator is None:
            self._data_iterator = self._make_iterator()
        self._ensure_checkpoint()
        path = tf.train.latest_checkpoint(os.path.join(self.config.model_dir, "checkpoints"))
        if path is None:
            return None
        self._checkpoint.restore(path).assert_existing_objects_matched()
        if not self._iterator_in_checkpoint:
            # The iterator could not be checkpointed: replay the data stream to the step.
            for _ in range(int(self.step.numpy())):
                next(self._data_iterator)
        return path

    def save(self):
        self._ensure_checkpoint()
        return self._manager.save(checkpoint_number=int(self.step.numpy()))

    # === The loop ===
    def fit(self, hooks=()):
        """Trains to `total_steps` (resuming from `model_dir`); returns a summary dict.

        Args:
            hooks: (every, fn) pairs; on the chief, `fn(step, summary_writer)` runs after
                every `every`-th step.
        """
        cfg = self.config
        resumed = self.restore()
        start = int(self.step.numpy())
        if resumed:
            self.log(f"Resumed from {resumed} at step {start}/{self.total_steps}.")
        else:
            self.log(f"Starting at step 0/{self.total_steps}.")
        writer = None
        if self.chief:
            writer = tf.summary.create_file_writer(os.path.join(cfg.model_dir, "train"))
        t0 = time.time()
        last_t, last_step = t0, start
        loss_value = float("nan")
        stats_values = {}
        for step in range(start, self.total_steps):
            images, labels = next(self._data_iterator)
            if step == self._nan_step:
                images = tf.fill(tf.shape(images), float("nan"))
            loss, stats = self.train_step(images, labels)
            loss_value = float(loss.numpy())
            if not math.isfinite(loss_value):
                # Weights are now suspect: do not save; the last checkpoint stays good.
                last = self._manager.latest_checkpoint if self._manager else None
                raise NonFiniteLossError(
                    f"Non-finite loss ({loss_value}) at step {step + 1}. Stopped without "
                    f"saving; the last good checkpoint is {last}."
                )
            self.step.assign(step + 1)
            self.epoch.assign((step + 1) // self.steps_per_epoch if self.num_examples else 0)
            stats_values = {k: float(v.numpy()) for k, v in stats.items()}
            done = step + 1
            if writer is not None and (done % cfg.log_every == 0 or done == self.total_steps):
                with writer.as_default(step=done):
                    write_scalar("loss", loss_value)
                    write_scalar("learning_rate", float(self.schedule(step)))
                    for k, v in stats_values.items():
                        write_scalar(k, v)
            if done % cfg.log_every == 0 or done == self.total_steps:
                now = time.time()
                rate = (done - last_step) / max(now - last_t, 1e-9)
                eta = (self.total_steps - done) / max(rate, 1e-9)
                extra = " ".join(f"{k}={v:.4g}" for k, v in stats_values.items())
                self.log(
                    f"step {done}/{self.total_steps} loss={loss_value:.4f} {extra} "
                    f"lr={float(self.schedule(step)):.3g} {rate:.2f} steps/s ETA {eta:.0f}s"
                )
                last_t, last_step = now, done
            if done % cfg.checkpoint_every == 0 and done != self.total_steps:
                self.save()
            if self.chief:
                for every, fn in hooks:
                    if done % every == 0:
                        fn(done, writer)
        if self.total_steps > start or not resumed:
            self.save()
        if writer is not None:
            writer.flush()
        return {
            "start_step": start,
            "final_step": int(self.step.numpy()),
            "loss": loss_value,
            "stats": stats_values,
            "train_seconds": time.time() - t0,
            "resumed_from": resumed,
        }

    def embed(self, images, batch_size=256):
        """Unit embeddings of float32 0–255 images [N, S, S, 3], on the host, in order."""
        out = []
        for i in range(0, len(images), batch_size):
            out.append(np.asarray(self.model(images[i : i + batch_size], training=False)))
        if not out:
            return np.zeros((0, self.model.output.shape[-1]), np.float32)
        return np.concatenate(out).astype(np.float32)


def write_scalar(name, value, step=None):
    """A TensorBoard scalar without importing the `tensorboard` package.

    `tf.summary.scalar` lives in tensorboard, which is not a dependency; this writes the
    same record (float32 scalar tensor, plugin "scalars") with the core `tf.summary.write`.
    """
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    return tf.summary.write(
        name, tf.constant(value, tf.float32), step=step, metadata=metadata.SerializeToString()
    )


def _checkpointable_iterator(iterator):
    """tf.data iterators are checkpointable unless the pipeline holds Python state."""
    if not isinstance(iterator, tf.data.Iterator):
        return False
    try:
        with tempfile.TemporaryDirectory() as d:
            tf.train.Checkpoint(data=iterator).write(os.path.join(d, "probe"))
        return True
    except (tf.errors.FailedPreconditionError, tf.errors.UnimplementedError, ValueError):
        return False
