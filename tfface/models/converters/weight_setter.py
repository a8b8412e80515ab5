"""`WeightSetter`: writes converted arrays into a Keras model's layers, checking every shape.

Source weights arrive in the Keras layout (converters transpose them first) together with
the name they had in the source file, so a mismatch names both sides. Two foldings keep
tfface's architectures unchanged while staying exact at inference:

* a convolution or dense bias followed by a BatchNormalization that has its own mean is
  folded into that mean (BN(Wx + b) uses x − (μ − b));
* a BatchNormalization source scale γ where the Keras BN has `scale=False` (facenet and the
  insightface embedding BN, whose γ is 1 in released weights) is folded into the preceding
  kernel: γ·(Wx − μ)/σ + β = ((γW)x − γμ)/σ + β.
"""

import keras
import numpy as np


class WeightSetter:
    """Assigns converted weights into `model`, layer by layer, and tracks coverage.

    Args:
        model: the freshly built tfface backbone (`keras.Model`).
        source: how errors name the file being converted.
    """

    def __init__(self, model, source):
        self.model = model
        self.source = source
        self.assigned = set()

    def layer(self, name):
        try:
            return self.model.get_layer(name)
        except ValueError:
            raise ValueError(
                f"{self.source}: the tfface model {self.model.name!r} has no layer {name!r}"
            ) from None

    def _set(self, layer, arrays, origin):
        current = layer.get_weights()
        if len(current) != len(arrays):
            raise ValueError(
                f"{self.source}: layer {layer.name!r} holds {len(current)} weights, the "
                f"converter produced {len(arrays)} from {origin}"
            )
        values = []
        for cur, new in zip(current, arrays, strict=True):
            new = np.asarray(new, dtype=np.float32)
            if cur.shape != new.shape:
                raise ValueError(
                    f"{self.source}: {origin} has shape {new.shape}, but tfface layer "
                    f"{layer.name!r} expects {cur.shape}. The file does not match this "
                    "architecture/size."
                )
            values.append(new)
        layer.set_weights(values)
        self.assigned.add(layer.name)

    def set_conv_bn(self, conv, bn, kernel, norm, bias=None, origin=""):
        """A Keras conv/dense `conv` followed by BatchNormalization `bn`.

        Args:
            kernel: the kernel in Keras layout (output channels on the last axis; for a
                DepthwiseConv2D [kh, kw, C, 1], channels on axis 2).
            norm: (gamma or None, beta, moving_mean, moving_variance) from the source.
            bias: the source's bias of `conv`, or None. It goes into the Keras bias when
                `conv` has one, else into the BN mean.
        """
        gamma, beta, mean, var = (None if a is None else np.asarray(a, np.float64) for a in norm)
        kernel = np.asarray(kernel, np.float64)
        conv_layer, bn_layer = self.layer(conv), self.layer(bn)
        use_bias = getattr(conv_layer, "use_bias", False)
        conv_bias = np.zeros_like(mean)
        if bias is not None:
            if use_bias:
                conv_bias = np.asarray(bias, np.float64)
            else:
                mean = mean - np.asarray(bias, np.float64)
        if bn_layer.scale:
            bn_weights = [np.ones_like(beta) if gamma is None else gamma, beta, mean, var]
        else:
            if gamma is not None and not np.all(gamma == 1.0):
                # A depthwise kernel [kh, kw, C, 1] keeps its output channels on axis 2.
                axis = 2 if isinstance(conv_layer, keras.layers.DepthwiseConv2D) else -1
                shape = [1] * kernel.ndim
                shape[axis] = -1
                kernel = kernel * gamma.reshape(shape)
                conv_bias = conv_bias * gamma
                mean = mean * gamma
            bn_weights = [beta, mean, var]
        self._set(conv_layer, [kernel, conv_bias] if use_bias else [kernel], origin)
        self._set(bn_layer, bn_weights, origin)

    def set_bn(self, bn, norm, origin=""):
        """A standalone BatchNormalization (not preceded by a foldable kernel)."""
        gamma, beta, mean, var = norm
        bn_layer = self.layer(bn)
        if not bn_layer.scale:
            if gamma is not None and not np.all(np.asarray(gamma) == 1.0):
                raise ValueError(
                    f"{self.source}: {origin} has a scale γ ≠ 1, but tfface layer {bn!r} has "
                    "no scale and no preceding kernel to fold it into"
                )
            self._set(bn_layer, [beta, mean, var], origin)
        else:
            self._set(
                bn_layer, [np.ones_like(beta) if gamma is None else gamma, beta, mean, var], origin
            )

    def set(self, name, arrays, origin=""):
        """Any other layer (conv with bias, PReLU, dense): arrays in Keras order."""
        self._set(self.layer(name), arrays, origin)

    def check_complete(self):
        """Raises if a layer with weights was left untouched (a converter bug or a gap)."""
        missing = [
            layer.name
            for layer in self.model.layers
            if layer.weights and layer.name not in self.assigned
        ]
        if missing:
            raise ValueError(
                f"{self.source}: no weights found for tfface layers {missing[:8]}"
                f"{' …' if len(missing) > 8 else ''}"
            )
