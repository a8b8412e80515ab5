"""Shared base of SphereFace and L-Softmax: ψ(θ) with a multiplicative margin, λ annealing."""

import math

from keras import ops

from tfface.layers.margin_softmax import MarginSoftmax


class MultiplicativeMargin(MarginSoftmax):
    """Target cosine → (λ · cos θ + ψ(θ)) / (1 + λ), ψ(θ) = (−1)^k cos(mθ) − 2k.

    ψ is the monotonic extension of cos(mθ) over [0, π]: θ ∈ [kπ/m, (k+1)π/m],
    k ∈ {0, …, m−1}. cos(mθ) is the Chebyshev polynomial T_m(cos θ) and k is counted by
    comparing cos θ with cos(jπ/m), so there is no acos and the gradient is finite at
    cos θ = ±1. λ anneals from softmax (λ large) to the full margin:
    λ = max(λ_min, base · (1 + γ · iteration)^(−power)). `iteration` is a non-trainable
    int64 weight (saved by `tf.train.Checkpoint` and `.keras`) that every training call
    advances by one *before* computing λ, as SphereFace's Caffe layer does (so the first
    training step uses iteration 1). Non-training calls with labels use the current value.

    Subclasses choose the normalisation: SphereFace (‖W‖ = 1, features not normalised),
    L-Softmax (neither).

    Args:
        num_classes: int >= 1, number of identities C.
        margin: int >= 1, m. Defaults to `4`.
        base, gamma, power, lambda_min: λ schedule, floats >= 0. Defaults to the
            SphereFace values 1000, 0.12, 1, 5.
        kernel_initializer: initializer for `W` [D, C]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        num_classes,
        margin=4,
        base=1000.0,
        gamma=0.12,
        power=1.0,
        lambda_min=5.0,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            num_classes,
            scale=None,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            **kwargs,
        )
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 1:
            raise ValueError(f"`margin` must be an int >= 1. Received: margin={margin!r}")
        for name, value in (("base", base), ("gamma", gamma), ("power", power)):
            if not value >= 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
        if not lambda_min >= 0:
            raise ValueError(f"`lambda_min` must be >= 0. Received: lambda_min={lambda_min!r}")
        self.margin = margin
        self.base = float(base)
        self.gamma = float(gamma)
        self.power = float(power)
        self.lambda_min = float(lambda_min)

    def build(self, input_shape):
        super().build(input_shape)
        # ONLY_FIRST_REPLICA: every replica computes the same increment under a strategy.
        self.iteration = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int64",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="iteration",
        )

    def annealing_lambda(self, iteration):
        """λ for an iteration count (a Python number or tensor), as float32."""
        iteration = ops.cast(iteration, "float32")
        value = self.base * ops.power(1.0 + self.gamma * iteration, -self.power)
        return ops.maximum(ops.cast(value, "float32"), self.lambda_min)

    def psi(self, cosine):
        """ψ(θ) from cos θ, gradient-safe on [−1, 1]."""
        m = self.margin
        cosine = ops.convert_to_tensor(cosine)  # NumPy input on torch: tensor arithmetic below
        # Chebyshev recurrence: T_0 = 1, T_1 = x, T_{n+1} = 2x T_n − T_{n−1}; T_m(cos θ) = cos mθ.
        t_prev, t = ops.ones_like(cosine), cosine
        for _ in range(m - 1):
            t_prev, t = t, 2.0 * cosine * t - t_prev
        k = ops.zeros_like(cosine)
        for j in range(1, m):
            k = k + ops.cast(ops.less_equal(cosine, math.cos(j * math.pi / m)), "float32")
        sign = 1.0 - 2.0 * ops.mod(k, 2.0)
        return sign * t - 2.0 * k

    def apply_margin(self, cos_target, training=None):
        if training:
            next_iteration = ops.add(self.iteration.value, 1)
            self.iteration.assign(next_iteration)
        else:
            next_iteration = self.iteration.value
        lam = self.annealing_lambda(next_iteration)
        return (lam * cos_target + self.psi(cos_target)) / (1.0 + lam)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "margin": self.margin,
                "base": self.base,
                "gamma": self.gamma,
                "power": self.power,
                "lambda_min": self.lambda_min,
            }
        )
        return config
