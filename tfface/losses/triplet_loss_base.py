"""The thin `keras.losses.Loss` wrapper shared by the triplet losses."""

import keras
from keras import ops

from tfface.losses import distances
from tfface.losses import mining

# The loss is already one scalar per batch; these reductions of a scalar are that scalar.
_SCALAR_REDUCTIONS = ("sum_over_batch_size", "mean", "sum")


class TripletLossBase(keras.losses.Loss):
    """Stores the config of a batch-mined triplet loss and calls its plain function.

    Subclasses set `loss_fn` and list their extra init arguments in `get_config`.
    y_true are integer labels [B] or [B, 1]; y_pred embeddings [B, D]. The loss is one
    scalar per batch, mined and summed in float32 and returned in `dtype`. Labels are passed
    to the function in their integer dtype (the base `Loss.__call__` would cast them to
    float, merging identities above 2**24).

    `reduction` must reduce to a scalar ("sum_over_batch_size", "mean" or "sum": the same
    value here); "none"/None (per-sample losses) and "mean_with_sample_weight" are rejected,
    because a batch-mined loss has no per-sample values.
    """

    loss_fn = None

    def __init__(
        self,
        margin=1.0,
        distance_metric="L2",
        name=None,
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        mining.check_margin(margin)
        distance_metric = distances.deserialize(distance_metric)
        distances.get(distance_metric)
        if reduction not in _SCALAR_REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__} mines triplets across the batch and returns one "
                f"scalar; `reduction` must be one of {_SCALAR_REDUCTIONS}. "
                f"Received: reduction={reduction!r}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not keras.backend.is_float_dtype(self.dtype):
            raise ValueError(
                f"`dtype` must be a floating dtype or policy. Received: dtype={dtype!r}"
            )
        self.margin = margin
        self.distance_metric = distance_metric

    def _fn_kwargs(self):
        return {"margin": self.margin, "distance_metric": self.distance_metric}

    def call(self, y_true, y_pred):
        return type(self).loss_fn(y_true, y_pred, **self._fn_kwargs())

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} mines triplets across the whole batch and returns "
                "one scalar; per-sample weights have no defined meaning. "
                "Received: sample_weight is not None"
            )
        with keras.name_scope(self.name):
            loss = self.call(ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred))
            return ops.cast(loss, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "margin": self.margin,
                "distance_metric": distances.serialize(self.distance_metric),
                # keras.losses.Loss leaves `dtype` out of its config.
                "dtype": self._dtype_policy.name,
            }
        )
        return config


class SoftTripletLossBase(TripletLossBase):
    """A triplet loss with tfa's `soft` option: log(1 + exp(·)) in place of the hinge."""

    def __init__(
        self,
        margin=1.0,
        soft=False,
        distance_metric="L2",
        name=None,
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        if not isinstance(soft, bool):
            raise ValueError(f"`soft` must be a bool. Received: soft={soft!r}")
        super().__init__(
            margin=margin,
            distance_metric=distance_metric,
            name=name,
            reduction=reduction,
            dtype=dtype,
        )
        self.soft = soft

    def _fn_kwargs(self):
        return dict(super()._fn_kwargs(), soft=self.soft)

    def get_config(self):
        config = super().get_config()
        config.update({"soft": self.soft})
        return config
