"""`Trainer`: a custom training loop under `strategy.run` with checkpoint/resume.

Keras 3's `model.fit` under MultiWorkerMirroredStrategy is fragile (keras#20585), so the
loop is written out: the host pulls one global P×K batch, splits it into contiguous
per-replica shards (replica r gets rows [r·b, (r+1)·b), so with P divisible by the number of
replicas every shard holds whole identities), and `strategy.run` computes each replica's
loss and applies the SUM-all-reduced gradients (see `objective.py` for the scaling).

The Trainer orchestrates; its parts live beside it: `checkpoints` (what a checkpoint holds,
save/restore, resume), `signals` (SIGINT/SIGTERM and their agreement across workers),
`errors` (`NonFiniteLossError`, `TrainingInterrupted`).
"""

import math
import os
import time

import keras
import tensorflow as tf

from tfface.training import run_dir
from tfface.training import signals
from tfface.training.checkpoints import Checkpoints
from tfface.training.errors import EmbeddingCollapseError
from tfface.training.errors import NonFiniteLossError
from tfface.training.errors import TrainingInterrupted
from tfface.training.heads import get_head
from tfface.training.objective import Objective
from tfface.training.schedules import WarmupSchedule
from tfface.training.schedules import make_optimizer
from tfface.training.schema import FINETUNE_LEARNING_RATE
from tfface.training.strategy import is_chief
from tfface.training.strategy import make_strategy

# What the compiled step reports (see `Trainer.train_step`); the host reads one int per step.
STEP_APPLIED = 0
STEP_SKIPPED = 1  # non-finite gradient norm: the update was not applied
STEP_NONFINITE_LOSS = 2  # non-finite loss: the update was not applied
STEP_NONFINITE_STATE = 3  # a variable (weight, BatchNorm statistic, slot) is non-finite
# Under --mixed_precision, LossScaleOptimizer skips steps whose scaled gradients overflow and
# halves the loss scale (2^15 at the start). This many skips in a row take the scale from
# 2^15 to 2^-5: the gradients themselves are not finite, so the run stops.
MAX_CONSECUTIVE_SKIPPED_STEPS = 20
# The stats key that carries the batch's mean pairwise embedding cosine out of the step.
_COSINE = "_embedding_cosine"
# The collapse guard: a batch whose faces (P identities) all embed to nearly one point has a
# mean pairwise cosine near 1. Measured on synthetic batches (BENCHMARKS.md, "Collapse guard
# measure"): small_cnn from scratch at most 0.016, pretrained dlib at most 0.934 (its first
# batch), the collapsed dlib run 1.0000. The run stops after this many such steps in a row.
COLLAPSE_COSINE = 0.999
COLLAPSE_STEPS = 5


def check_replicas(config, num_replicas):
    """Raises ValueError when `config` cannot run on `num_replicas` replicas (train.py
    runs it once the strategy is known, before loading data or building the model)."""
    if config.identities_per_batch % num_replicas:
        raise ValueError(
            "`identities_per_batch` must be divisible by the number of replicas so that "
            "every replica gets whole identities. Received: identities_per_batch="
            f"{config.identities_per_batch}, replicas={num_replicas}"
        )
    if (config.global_batch_size // num_replicas) % config.accumulate_steps:
        raise ValueError(
            "Each replica's share of the global batch must be divisible by "
            f"`accumulate_steps`. Received: global batch={config.global_batch_size}, "
            f"replicas={num_replicas}, accumulate_steps={config.accumulate_steps}"
        )
    spec = get_head(config.loss)
    if config.jit and spec.mines and config.mining_scope == "global" and num_replicas > 1:
        # Measured: the all-gather of global mining inside the XLA-compiled function is a
        # cross-replica sync point, which tf.distribute refuses in a nested tf.function.
        raise ValueError(
            f"`jit` cannot compile loss={config.loss!r} with mining_scope='global' on "
            f"{num_replicas} replicas: its all-gather of the global batch cannot run inside "
            "the compiled per-replica function. Use mining_scope='replica' or drop `jit`. "
            f"Received: jit=True, loss={config.loss!r}, mining_scope='global', "
            f"replicas={num_replicas}"
        )


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
        check_replicas(config, self.num_replicas)
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

        previous_policy = keras.config.dtype_policy()
        if config.mixed_precision:
            keras.mixed_precision.set_dtype_policy("mixed_float16")
        try:
            with self.strategy.scope():
                self._build_model(model)
                self.schedule = WarmupSchedule(
                    config.learning_rate,
                    total_steps=self.total_steps,
                    warmup_steps=config.warmup_steps,
                    decay=config.lr_schedule,
                )
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
                    seed=config.seed,
                    partial_fc=self._build_partial_fc(),
                )
                self.objective.build(self.model.output.shape[-1])
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
        if self.partial_fc is not None:
            pfc = self.partial_fc
            self.log(
                f"Partial FC r={config.partial_fc:g}: {pfc.num_classes} classes in "
                f"{pfc.num_shards} shard(s) of {pfc.shard_size}; {pfc.num_sampled} rows per "
                f"shard per step ({pfc.optimizer} on the sampled rows)."
            )
        # Host-side counters; checkpointed with everything else.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self._data_iterator = None
        self._checkpoints = None
        self._train_step_fn = None
        self._compute_fn = None
        self._finite_fn = None
        self.last_status = None
        self.last_cosine = None

    # === Building ===
    def _build_model(self, model):
        """Sets `self.model` (pixels → unit embeddings; evaluated and exported) and
        `self.train_model` (pixels → [unit embeddings, backbone features])."""
        if isinstance(model, keras.Model) or callable(model):
            self.model = model if isinstance(model, keras.Model) else model(self.config)
            self.train_model = self.model
            return self.model
        from tfface import models

        cfg = self.config
        # The unnormalised backbone features are exposed too: the heads marked
        # `raw_features` (softmax, center loss, SphereFace) are defined on them.
        backbone, normalization = cfg.backbone, models.backbone_normalization(cfg.backbone)
        if cfg.pretrained:
            # Published weights, frozen up to the last `trainable_blocks` residual blocks,
            # with their own input normalisation (tfface.models.load_pretrained_backbone).
            backbone, spec = models.load_pretrained_backbone(
                cfg.backbone, trainable_blocks=cfg.trainable_blocks
            )
            normalization = spec.normalization
        self.train_model = models.build_embedding_model(
            backbone,
            cfg.image_size,
            cfg.embedding_dim,
            normalization=normalization,
            return_features=True,
        )
        self.model = keras.Model(
            self.train_model.input, self.train_model.outputs[0], name=f"{cfg.backbone}_embedding"
        )
        if cfg.freeze_batchnorm:
            frozen = freeze_batchnorm(self.train_model)
            self.log(f"BatchNorm: {frozen} layer(s) of {cfg.backbone} frozen (inference mode).")
        if get_head(cfg.loss).quality:
            # AdaFace/MagFace make ‖x‖ a quality score: the export carries it (embed_quality).
            self.model.tfface_quality_scores = ("embedding_norm",)
        return self.model

    def _build_partial_fc(self):
        """The sharded head of `--partial_fc` (None when off); its centres are updated by
        its own sparse optimizer (the same maths as `config.optimizer`, sampled rows only)."""
        cfg = self.config
        if not cfg.partial_fc:
            return None
        from tfface.training.heads import build_head
        from tfface.training.partial_fc import PartialFC

        return PartialFC(
            build_head(cfg.loss, self.num_classes, cfg.head_kwargs, seed=cfg.seed),
            self.model.output.shape[-1],
            strategy=self.strategy,
            sample_rate=cfg.partial_fc,
            global_batch_size=cfg.global_batch_size,
            # Keras' Adam with weight decay is AdamW's decoupled update.
            optimizer="sgd" if cfg.optimizer == "sgd" else "adamw",
            learning_rate=self.schedule,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            seed=cfg.seed,
        )

    @property
    def partial_fc(self):
        return self.objective.partial_fc

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
    def _micro_batch_gradients(self, images, labels, global_labels, weight):
        """Loss, stats and gradients of one (micro-)batch; the loss is scaled by `weight`
        before differentiating (and by the loss scale under mixed precision)."""
        with tf.GradientTape() as tape:
            outputs = self.train_model(images, training=True)
            if isinstance(outputs, (list, tuple)):
                embeddings, features = outputs
            else:
                embeddings, features = outputs, None
            loss, stats = self.objective(
                embeddings, labels, training=True, features=features, global_labels=global_labels
            )
            scaled = loss * weight
            if self.config.mixed_precision:
                scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        pfc = self.partial_fc
        shard = [pfc.shards[pfc.local_index()]] if pfc is not None else []
        grads = tape.gradient(scaled, variables + shard)
        # This replica's sampled centre rows: (values [k, K, D], rows [k]), or ().
        head = ()
        if pfc is not None:
            sparse = grads.pop()
            head = (sparse.values, sparse.indices)
        stats = {k: tf.cast(v, tf.float32) for k, v in stats.items()}
        # For the collapse guard; averaged over micro-batches like the stats, popped by
        # `_gradients` before the stats are logged.
        stats[_COSINE] = mean_pairwise_cosine(embeddings)
        return loss, stats, grads, head

    def _compute(self, images, labels, global_labels):
        """This replica's loss, stats, gradients and Partial FC rows (the part `--jit`
        XLA-compiles).

        The loss of each replica is divided by the number of replicas: the optimizer
        SUM-all-reduces gradients, so the update follows the global-batch mean. With
        `accumulate_steps` = n the shard runs as n sequential micro-batches whose gradients
        (each of loss/n) are summed: the same gradient as the whole shard's, for losses that
        are means over samples (the config refuses mining losses and Partial FC with it).
        """
        n = self.config.accumulate_steps
        weight = 1.0 / (self.num_replicas * n)
        if n == 1:
            loss, stats, grads, head = self._micro_batch_gradients(
                images, labels, global_labels, weight
            )
        else:
            head = ()
            size = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
            micro = size // n
            loss, stats, grads = 0.0, {}, None
            for m in range(n):
                # The next micro-batch starts after this one's backward pass, so only one
                # micro-batch's activations are alive at a time.
                with tf.control_dependencies([g for g in grads or [] if g is not None]):
                    x = tf.identity(images[m * micro : (m + 1) * micro])
                    y = tf.identity(labels[m * micro : (m + 1) * micro])
                part_loss, part_stats, part_grads, _ = self._micro_batch_gradients(
                    x, y, None, weight
                )
                loss += part_loss / n
                stats = {k: stats.get(k, 0.0) + v / n for k, v in part_stats.items()}
                grads = (
                    part_grads
                    if grads is None
                    else [
                        None if g is None else g + p for g, p in zip(grads, part_grads, strict=True)
                    ]
                )
        # Decided while tracing: variables without a gradient are left out of the update.
        variables = self.trainable_variables
        self._update_variables = [v for g, v in zip(grads, variables, strict=True) if g is not None]
        return tf.cast(loss, tf.float32), stats, [g for g in grads if g is not None], head

    def _clip(self, grads):
        """`grads` (this replica's) scaled so that their sum over replicas, unscaled, has a
        global norm of at most `clip_norm`; returns (grads, that norm before clipping).

        The norm is the all-reduced gradient's (what the optimizer applies), not each
        replica's. Under mixed precision the gradients carry the loss scale S, so the norm
        is divided by S: clipping the scaled sum at clip_norm·S is clipping after unscaling.
        """
        total = grads
        if self.num_replicas > 1:
            total = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, grads
            )
        norm = tf.linalg.global_norm(total)
        if self.config.mixed_precision:
            norm = norm / tf.cast(self.optimizer.dynamic_scale, norm.dtype)
        clip = tf.constant(self.config.clip_norm, norm.dtype)
        factor = clip / tf.maximum(norm, clip)  # 1 when the norm is at most clip_norm
        return [g * tf.cast(factor, g.dtype) for g in grads], norm

    def _gradients(self, images, labels, global_labels):
        """Replica function: loss, stats, this replica's gradients and whether they are finite."""
        loss, stats, grads, head = self._compute_fn(images, labels, global_labels)
        # The global norm, not the loss: a fused oneDNN Conv2D+ReLU maps NaN to 0 in the
        # forward pass (BUILD_NOTES.md, NaN guard) while the backward pass still spreads it.
        finite = tf.math.is_finite(tf.linalg.global_norm(grads + list(head[:1])))
        bad = tf.cast(tf.logical_not(finite), tf.float32)
        stats = dict(stats)
        cosine = stats.pop(_COSINE)
        if self.config.clip_norm is not None:
            grads, norm = self._clip(grads)
            stats = {**stats, "grad_norm": norm}
            # The collectives that follow (loss, stats, flags) start after the gradients'
            # all-reduce on every replica, so the replicas pair them up in the same order.
            with tf.control_dependencies([norm]):
                loss, bad = tf.identity(loss), tf.identity(bad)
        return loss, stats, grads, bad, head, cosine

    def _apply(self, grads, head=()):
        self.optimizer.apply_gradients(zip(grads, self._update_variables, strict=True))
        if head:
            scale = self.optimizer.dynamic_scale if self.config.mixed_precision else None
            self.partial_fc.apply(*head, loss_scale=scale)

    def _variables(self, with_optimizer):
        """The model's and the objective layers' variables (and the optimizer's), each once."""
        objective = [w for layer in self.objective.layers for w in layer.weights]
        optimizer = list(self.optimizer.variables) if with_optimizer else []
        if self.partial_fc is not None:
            objective += self.partial_fc.variables  # plain per-device shards and slots
        unique = {id(v): v for v in list(self.model.variables) + objective + optimizer}
        return list(unique.values())

    def _state_variables(self):
        """Every float variable a checkpoint holds: weights, BatchNorm statistics, head,
        centers, optimizer slots (BN statistics change in the forward pass, not by gradients)."""
        return [v for v in self._variables(True) if tf.as_dtype(v.dtype).is_floating]

    def _forward_state_variables(self):
        """Variables the forward pass itself changes: BatchNorm statistics, CenterLoss
        centers, SphereFace's iteration counter (every non-trainable model or head variable)."""
        return [v for v in self._variables(False) if not v.trainable]

    def _state_is_finite(self):
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in self._state_variables()])

    def _step(self, images, labels, global_labels, signum):
        """The compiled step: gradients per replica, then (cross-replica) apply only when the
        loss and the global gradient norm are finite on every replica, then check the state.
        `signum` is this worker's pending SIGINT/SIGTERM (0 if none).
        Returns (mean loss, mean stats, status, signal): status one of the `STEP_*` codes,
        signal the largest pending signal number over all workers."""
        strategy = self.strategy
        # A skipped step must leave no trace: the forward pass has already moved these
        # (a NaN batch whose NaN oneDNN hid from the loss still shifts BatchNorm statistics).
        forward_state = self._forward_state_variables()
        before = [tf.identity(v) for v in forward_state]
        with tf.control_dependencies(before):
            loss, stats, grads, bad, head, cosine = strategy.run(
                self._gradients, args=(images, labels, global_labels)
            )
        mean = tf.distribute.ReduceOp.MEAN
        loss = strategy.reduce(mean, loss, axis=None)  # NaN on any replica stays NaN
        cosine = strategy.reduce(mean, cosine, axis=None)
        stats = {k: strategy.reduce(mean, v, axis=None) for k, v in stats.items()}

        # One collective for both: a bad gradient on any replica, a signal on any worker.
        # Every worker then stops after the same step and joins the same (collective) save.
        def flags_of(bad, signum):
            return tf.stack([bad, *signals.pending_counts(signum)])

        flags = strategy.run(flags_of, args=(bad, signum))
        flags = strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None)
        bad = flags[0]
        signal_seen = signals.agreed_signal(flags[1:])
        loss_finite = tf.math.is_finite(loss)
        finite = tf.logical_and(loss_finite, tf.equal(bad, 0.0))

        def apply():
            strategy.run(self._apply, args=(grads, head))
            return tf.constant(True)

        def skip():
            for variable, value in zip(forward_state, before, strict=True):
                variable.assign(value)
            if self.config.mixed_precision:
                # What LossScaleOptimizer does with an overflowing step: halve the scale.
                opt = self.optimizer
                opt.step_counter.assign(tf.zeros_like(opt.step_counter))
                opt.dynamic_scale.assign(opt.dynamic_scale * 0.5)
            return tf.constant(False)

        # A cond in cross-replica context (as LossScaleOptimizer does): every replica takes
        # the same branch, and the optimizer's merge_call is not inside a replica-context cond.
        applied = tf.cond(finite, apply, skip)
        with tf.control_dependencies([applied]):
            state_finite = self._state_is_finite()
        status = tf.where(
            loss_finite,
            tf.where(finite, STEP_APPLIED, STEP_SKIPPED),
            STEP_NONFINITE_LOSS,
        )
        status = tf.where(state_finite, status, STEP_NONFINITE_STATE)
        return loss, stats, status, signal_seen, cosine

    def _run_step(self, images, labels, signum=0):
        if self._train_step_fn is None:
            self._compute_fn = self._compute
            if self.config.jit:
                # Each replica's forward and backward pass; the collectives, the finite
                # checks and the optimizer update stay outside XLA.
                self._compute_fn = tf.function(self._compute, jit_compile=True)
            self._train_step_fn = tf.function(self._step)
        global_labels = tf.convert_to_tensor(labels)
        signum = tf.constant(int(signum), tf.int32)
        return self._train_step_fn(*self._distribute(images, labels), global_labels, signum)

    def train_step(self, images, labels):
        """One step on a global batch; returns (mean loss, mean stats) as tensors.

        A step whose loss or global gradient norm is not finite is not applied (under
        mixed precision the loss scale is halved instead, as LossScaleOptimizer does);
        `last_status` tells which `STEP_*` case happened, `last_cosine` the batch's mean
        pairwise embedding cosine (the collapse guard's measure).
        """
        loss, stats, self.last_status, _, self.last_cosine = self._run_step(images, labels)
        return loss, stats

    # === Checkpoints ===
    def _ensure_checkpoints(self):
        if self._checkpoints is not None:
            return
        if self._data_iterator is None:
            self._data_iterator = self._make_iterator()
        items = {
            "model": self.model,
            "objective": self.objective,
            "optimizer": self.optimizer,
            "step": self.step,
            "epoch": self.epoch,
        }
        self._checkpoints = Checkpoints(
            self.config.model_dir,
            items,
            step=self.step,
            data_iterator=self._data_iterator,
            keep=self.config.keep_checkpoints,
            chief=self.chief,
            is_finite=self.state_is_finite,
        )

    def restore(self):
        """Restores the latest checkpoint in `model_dir`, if any; returns its path or None."""
        self._ensure_checkpoints()
        return self._checkpoints.restore()

    def state_is_finite(self):
        """True when every float variable of the model, objective and optimizer is finite."""
        if self._finite_fn is None:
            self._finite_fn = tf.function(self._state_is_finite)
        return bool(self._finite_fn())

    def save(self):
        """Saves a checkpoint numbered by the step; refuses (raises) a non-finite state, so
        that every checkpoint on disk is a good one to resume from."""
        self._ensure_checkpoints()
        return self._checkpoints.save()

    @property
    def latest_checkpoint(self):
        """The latest checkpoint this run saved or resumed from, or None."""
        return self._checkpoints.latest if self._checkpoints else None

    # === The loop ===
    @property
    def _multi_worker(self):
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    def _stop(self, step, loss, status, skipped=0):
        last = self.latest_checkpoint
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"
        if status == STEP_NONFINITE_STATE:
            what = (
                "Non-finite values in the model or optimizer state (weights, BatchNorm "
                "statistics or optimizer slots overflowed)"
            )
        elif status == STEP_NONFINITE_LOSS:
            what = f"Non-finite loss ({float(loss)})"
        elif skipped:
            scale = float(self.optimizer.dynamic_scale.numpy())
            what = (
                f"{skipped} consecutive steps with non-finite gradients under mixed "
                f"precision (loss scale now {scale:.3g})"
            )
        else:
            what = f"Non-finite gradient norm (loss {float(loss):.4g})"
        raise NonFiniteLossError(
            f"{what} at step {step}. Stopped without saving; {where}.",
            step=step,
            last_checkpoint=last,
        )

    def _collapsed(self, step, cosine, steps):
        last = self.latest_checkpoint
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was saved"
        lr = self.config.learning_rate
        raise EmbeddingCollapseError(
            f"Embeddings collapsed: the mean pairwise cosine of the training batch was >= "
            f"{COLLAPSE_COSINE} for {steps} steps in a row (steps {step - steps + 1}-{step}, "
            f"last {cosine:.4f}): every face embeds to nearly the same point, so the model "
            f"no longer tells faces apart. Stopped at step {step} without saving; {where}. "
            f"Lower --learning_rate (it is {lr:g}; --pretrained runs default to "
            f"{FINETUNE_LEARNING_RATE:g}) or add --warmup_steps.",
            step=step,
            last_checkpoint=last,
        )

    def fit(self, hooks=()):
        """Trains to `total_steps` (resuming from `model_dir`); returns a summary dict.

        A step whose loss or global gradient norm is not finite is never applied, and
        nothing non-finite is saved: the run stops with `NonFiniteLossError` naming the step
        and the last (finite) checkpoint. Under mixed precision, overflowing steps are
        skipped and the run stops after `MAX_CONSECUTIVE_SKIPPED_STEPS` of them in a row.
        On SIGINT/SIGTERM the step in flight finishes, a checkpoint of it is saved and
        `TrainingInterrupted` is raised (when `fit` runs in the main thread). With several
        workers, a signal to any of them stops all after the same step (the next one).
        A run whose batch embeddings stay collapsed (mean pairwise cosine >=
        `COLLAPSE_COSINE`) for `COLLAPSE_STEPS` applied steps in a row stops with
        `EmbeddingCollapseError`, without saving.

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
            writer = tf.summary.create_file_writer(os.path.join(cfg.model_dir, run_dir.EVENTS_DIR))
        t0 = time.time()
        last_t, last_step = t0, start
        loss_value = float("nan")
        stats_values = {}
        skipped_in_row = 0
        collapsed_in_row = 0
        # Multi-worker: the step all-reduces each worker's pending signal (signals.py).
        with signals.SignalCatcher(signals.can_catch()) as caught:
            for step in range(start, self.total_steps):
                images, labels = next(self._data_iterator)
                loss, stats, status, signal_seen, cosine = self._run_step(
                    images, labels, caught.signum or 0
                )
                done = step + 1
                # One int per step, so the run stops at the first bad step; loss and stats
                # are fetched from the device only when they are logged.
                status = int(status)
                if status == STEP_SKIPPED and cfg.mixed_precision:
                    skipped_in_row += 1
                    if skipped_in_row >= MAX_CONSECUTIVE_SKIPPED_STEPS:
                        self._stop(done, loss, status, skipped_in_row)
                elif status != STEP_APPLIED:
                    self._stop(done, loss, status)
                else:
                    skipped_in_row = 0
                if status == STEP_APPLIED:
                    cosine = float(cosine)
                    collapsed_in_row = collapsed_in_row + 1 if cosine >= COLLAPSE_COSINE else 0
                    if collapsed_in_row >= COLLAPSE_STEPS:
                        self._collapsed(done, cosine, collapsed_in_row)
                self.step.assign(done)
                self.epoch.assign(done // self.steps_per_epoch if self.num_examples else 0)
                if done % cfg.log_every == 0 or done == self.total_steps:
                    loss_value = float(loss)
                    stats_values = {k: float(v) for k, v in stats.items()}
                    lr = float(self.schedule(step))
                    if writer is not None:
                        with writer.as_default(step=done):
                            write_scalar("loss", loss_value)
                            write_scalar("learning_rate", lr)
                            for k, v in stats_values.items():
                                write_scalar(k, v)
                    now = time.time()
                    rate = (done - last_step) / max(now - last_t, 1e-9)
                    eta = (self.total_steps - done) / max(rate, 1e-9)
                    extra = " ".join(f"{k}={v:.4g}" for k, v in stats_values.items())
                    self.log(
                        f"step {done}/{self.total_steps} loss={loss_value:.4f} {extra} "
                        f"lr={lr:.3g} {rate:.2f} steps/s ETA {eta:.0f}s"
                    )
                    last_t, last_step = now, done
                if done % cfg.checkpoint_every == 0 and done != self.total_steps:
                    self.save()
                if self.chief:
                    for every, fn in hooks:
                        if done % every == 0:
                            fn(done, writer)
                signal_seen = int(signal_seen)
                if caught.signum is not None and not self._multi_worker:
                    signal_seen = caught.signum  # one worker: stop after the step in flight
                if signal_seen and done != self.total_steps:
                    raise TrainingInterrupted(done, signal_seen, self.save())
            if self.total_steps > start or not resumed:
                self.save()
            if writer is not None:
                writer.flush()
            if caught.signum is not None:
                raise TrainingInterrupted(
                    int(self.step.numpy()), caught.signum, self.latest_checkpoint
                )
        return {
            "start_step": start,
            "final_step": int(self.step.numpy()),
            "loss": loss_value,
            "stats": stats_values,
            "train_seconds": time.time() - t0,
            "resumed_from": resumed,
        }


def mean_pairwise_cosine(embeddings):
    """Mean cosine over the distinct pairs of a batch of embeddings [N, D] (float32 scalar):
    near 1 when every row points the same way (a collapse)."""
    e = tf.math.l2_normalize(tf.cast(embeddings, tf.float32), axis=-1)
    n = tf.cast(tf.shape(e)[0], tf.float32)
    total = tf.reduce_sum(tf.square(tf.reduce_sum(e, axis=0)))  # Σ_ij e_i·e_j
    return (total - n) / tf.maximum(n * (n - 1.0), 1.0)


def freeze_batchnorm(model):
    """Sets every BatchNormalization layer inside `model` to `trainable=False`, which in
    Keras 3 also runs it in inference mode (its moving statistics are used and kept).
    Returns how many layers it froze."""
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            count += 1
    return count


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
