"""The head table: one entry per training loss, the only place a new head is added.

Each `HeadSpec` says which layer the loss trains, whether it reads the unnormalised
backbone features, its per-loss defaults (measured on the synthetic faces, BENCHMARKS.md
per-loss table) and which head flags of train.py apply to it. `Objective`, `TrainConfig`
and train.py read this table; nothing else lists the losses.

Adding a head: write the layer (a `tfface.layers.MarginSoftmax` subclass), export it from
`tfface.layers`, add one `HeadSpec` below.
"""

import dataclasses
import math

# Classification heads learn one weight vector per identity, so each identity must come
# back many times in the default 300 steps: 300 steps × 32 identities over 200 identities
# is ~48 visits each (over the 10,000 default identities it would be ~1). Measured for
# ArcFace: synthetic:200 0.818 vs synthetic:500 0.723 held-out accuracy (BENCHMARKS.md).
# Triplet losses have no per-identity weights and profit from more identities.
HEAD_DATA = "synthetic:200"
TRIPLET_DATA = "synthetic"

# The papers' s = 64 is for 10^4–10^5 identities and saturates the softmax on ~10^2–10^3
# identities with 128-D embeddings; s = 16 was measured best here (BENCHMARKS.md).
_SCALE = 16.0


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One training loss.

    Attributes:
        name: the `--loss` value.
        layer: class name in `tfface.layers` (a margin head taking `[embeddings, labels]`),
            `"Dense"` for a plain softmax classifier, or None (triplet: no head).
        raw_features: the head reads the unnormalised backbone features instead of the unit
            embeddings (its logits scale with ‖x‖, or its centers live in feature space).
        defaults: layer keyword arguments used unless overridden (`head_kwargs`).
        flags: the head flags (`scale`, `margin`, `margins`) that set layer arguments.
        center: adds `tfface.layers.CenterLoss` (softmax + λ·center).
        data: default training data.
        notes: per-flag hints appended to "does not apply" errors.
    """

    name: str
    layer: str = None
    raw_features: bool = False
    defaults: dict = dataclasses.field(default_factory=dict)
    flags: tuple = ()
    center: bool = False
    data: str = HEAD_DATA
    notes: dict = dataclasses.field(default_factory=dict)

    @property
    def margin_head(self):
        return self.layer not in (None, "Dense")


HEADS = {
    spec.name: spec
    for spec in (
        HeadSpec("softmax", layer="Dense", raw_features=True),
        HeadSpec("center", layer="Dense", raw_features=True, center=True),
        HeadSpec("triplet", data=TRIPLET_DATA),
        HeadSpec(
            "sphereface",
            layer="SphereFace",
            raw_features=True,
            flags=("margin",),
            notes={"scale": "its scale is ‖x‖"},
        ),
        HeadSpec("normface", layer="NormFace", defaults={"scale": _SCALE}, flags=("scale",)),
        HeadSpec(
            "cosface",
            layer="CosFace",
            defaults={"scale": _SCALE, "margin": 0.2},
            flags=("scale", "margin"),
        ),
        HeadSpec(
            "arcface",
            layer="ArcFace",
            defaults={"scale": _SCALE, "margin": 0.3},
            flags=("scale", "margin"),
        ),
        HeadSpec(
            "combined",
            layer="CombinedMargin",
            defaults={"scale": _SCALE, "m1": 1.0, "m2": 0.2, "m3": 0.1},
            flags=("scale", "margins"),
            notes={"margin": "use --margins=m1,m2,m3"},
        ),
    )
}
LOSSES = tuple(HEADS)
HEAD_FLAGS = ("scale", "margin", "margins")


def get_head(loss):
    """The `HeadSpec` of `loss`; raises ValueError naming the known losses."""
    if loss not in HEADS:
        raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={loss!r}")
    return HEADS[loss]


def head_kwargs_from_flags(loss, scale=None, margin=None, margins=None):
    """Layer keyword arguments set by the head flags (None: not given).

    Raises ValueError naming the flag when it does not apply to `loss` or is malformed.
    """
    spec = get_head(loss)
    given = {"scale": scale, "margin": margin, "margins": margins}
    kwargs = {}
    for name, value in given.items():
        if value is None:
            continue
        if not spec.flags:
            raise ValueError(
                f"--{name} applies to margin heads only. Received: --loss={loss}, --{name}={value}"
            )
        if name not in spec.flags:
            users = [s.name for s in HEADS.values() if name in s.flags]
            hint = spec.notes.get(name) or f"it applies to --loss={'/'.join(users)}"
            raise ValueError(
                f"--{name} does not apply to --loss={loss} ({hint}). Received: --{name}={value}"
            )
    if scale is not None:
        kwargs["scale"] = float(scale)
    if margin is not None:
        if spec.name == "sphereface":
            # SphereFace's margin is the integer m of cos(m·θ).
            if margin != int(margin):
                raise ValueError(
                    f"SphereFace's margin is an integer m. Received: --margin={margin}"
                )
            margin = int(margin)
        kwargs["margin"] = margin
    if margins is not None:
        if isinstance(margins, str):
            margins = margins.split(",")
        if len(margins) != 3:
            raise ValueError(f"--margins needs three values m1,m2,m3. Received: {margins}")
        try:
            kwargs.update(zip(("m1", "m2", "m3"), (float(m) for m in margins), strict=True))
        except ValueError:
            raise ValueError(f"--margins must be numbers. Received: {margins}") from None
    return kwargs


def resolve_head_kwargs(loss, head_kwargs=None):
    """The loss's defaults updated with `head_kwargs`."""
    spec = get_head(loss)
    head_kwargs = dict(head_kwargs or {})
    if head_kwargs and not spec.margin_head:
        raise ValueError(
            f"`head_kwargs` apply to margin heads only. Received: loss={loss!r}, "
            f"head_kwargs={head_kwargs}"
        )
    return {**spec.defaults, **head_kwargs}


def layer_class(loss):
    """The layer class of `loss`'s head (imports Keras), or None for triplet."""
    spec = get_head(loss)
    if spec.layer is None:
        return None
    if spec.layer == "Dense":
        import keras

        return keras.layers.Dense
    from tfface import layers

    return getattr(layers, spec.layer)


def build_head(loss, num_classes, head_kwargs=None):
    """The head layer of `loss` for `num_classes` identities (float32 logits), or None.

    Float32 even under mixed_float16: the softmax of large logits overflows float16.
    """
    spec = get_head(loss)
    cls = layer_class(loss)
    if cls is None:
        return None
    if not spec.margin_head:
        return cls(num_classes, dtype="float32", name="softmax_head")
    return cls(num_classes, dtype="float32", **resolve_head_kwargs(loss, head_kwargs))


def check_head_kwargs(loss, head_kwargs):
    """Raises ValueError when the head layer rejects `head_kwargs` (no weights are made)."""
    spec = get_head(loss)
    if not spec.margin_head:
        resolve_head_kwargs(loss, head_kwargs)
        return
    kwargs = resolve_head_kwargs(loss, head_kwargs)
    for key, value in kwargs.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"`{key}` must be finite. Received: {key}={value}")
    # The layer's own checks (and Keras' for unknown arguments) are the rules.
    layer_class(loss)(2, **kwargs)
