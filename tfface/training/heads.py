"""The head table: one `HeadSpec` per training loss, the only place a loss is described.

A loss either trains a head on the embeddings (a margin head of `tfface.layers`, or a plain
softmax `Dense`, optionally with `CenterLoss`) or mines its pairs in the batch (triplet:
no head, one `tfface.losses` function per mining). Its entry says which, whether it reads
the unnormalised backbone features, its per-loss defaults (measured on the synthetic
faces, BENCHMARKS.md per-loss table), its default training data and run name, and which
head flags of train.py apply to it. `TrainConfig` (its per-loss policy and checks),
`Objective`, train.py's flags and the loss tables of `benchmarks/per_loss.py` and
`experiments/loss_zoo.py` (`runs()`) read this table; none of them names a loss.

Adding a margin head: write the layer (a `tfface.layers.MarginSoftmax` subclass), export it
from `tfface.layers`, add one `HeadSpec` below (and a `HeadFlag` if it brings a new
train.py flag). This module imports neither TensorFlow nor Keras (train.py checks flags
with it before TensorFlow loads); `layer_class`, `build_head` and `check_head_kwargs`
import Keras when called.
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
            `"Dense"` for a plain softmax classifier, or None (a mining loss: no head).
        raw_features: the head reads the unnormalised backbone features instead of the unit
            embeddings (its logits scale with ‖x‖, or its centers live in feature space).
        defaults: layer keyword arguments used unless overridden (`head_kwargs`).
        flags: the head flags (names in `HEAD_FLAGS`) that set layer arguments.
        integer_arguments: layer arguments that take integers (a flag value must be whole).
        center: adds `tfface.layers.CenterLoss` (softmax + λ·center).
        mining: {mining name: `tfface.losses` function name} of a loss that mines its
            pairs in the batch; the first is the default. Empty for the heads.
        data: default training data.
        notes: per-flag hints appended to the errors about that flag.
        seeded: the layer draws random numbers (ElasticFace's margins); it gets the run's
            `seed` unless `head_kwargs` name one, so a seed repeats the run.
        quality: the head makes the feature norm ‖x‖ a face-quality score (AdaFace, MagFace);
            the export then carries it (`tfface.export`, `Face.quality["embedding_norm"]`).
        adds_loss: the layer adds a loss term of its own (`add_loss`: MagFace's g(a)),
            which the objective collects from `head.losses`; Partial FC calls only the
            margin hook, so the objective adds the layer's `own_loss(features)` itself.
    """

    name: str
    layer: str = None
    raw_features: bool = False
    defaults: dict = dataclasses.field(default_factory=dict)
    flags: tuple = ()
    integer_arguments: tuple = ()
    center: bool = False
    mining: dict = dataclasses.field(default_factory=dict)
    data: str = HEAD_DATA
    notes: dict = dataclasses.field(default_factory=dict)
    seeded: bool = False
    quality: bool = False
    adds_loss: bool = False

    @property
    def margin_head(self):
        """A `tfface.layers` margin head (called on `[embeddings, labels]`)."""
        return self.layer not in (None, "Dense")

    @property
    def classifies(self):
        """Trains a head with one weight row per identity: needs `num_classes` >= 2."""
        return self.layer is not None

    @property
    def mines(self):
        """Mines its pairs in the batch: needs `mining`, and positives (K >= 2) and
        negatives (P >= 2) in every batch."""
        return bool(self.mining)

    @property
    def default_mining(self):
        """The mining used when none is given (None for the heads)."""
        return next(iter(self.mining), None)

    def run_name(self, mining=None):
        """The run's name: the default `model_dir` is `runs/<run_name>`."""
        return f"{self.name}-{mining}" if self.mines else self.name


@dataclasses.dataclass(frozen=True)
class HeadFlag:
    """A train.py flag that sets margin-head layer arguments (on the heads listing it).

    Attributes:
        name: the flag's name.
        help: its help text.
        arguments: the layer arguments it sets: one (a number flag) or several (a list
            flag, one number per argument, e.g. `--margins=m1,m2,m3`).
    """

    name: str
    help: str
    arguments: tuple

    @property
    def is_list(self):
        return len(self.arguments) > 1


HEAD_FLAGS = {
    flag.name: flag
    for flag in (
        HeadFlag("scale", "Margin-head scale s (every margin head but sphereface).", ("scale",)),
        HeadFlag("margin", "Margin m: cosface/arcface additive, sphereface int m.", ("margin",)),
        HeadFlag("margins", "Combined margin m1,m2,m3 (cos(m1·θ + m2) − m3).", ("m1", "m2", "m3")),
        HeadFlag("subcenters", "Sub-centres K per identity (an integer).", ("sub_centers",)),
        HeadFlag("margin_std", "ElasticFace σ of the per-sample margin N(m, σ).", ("std",)),
        HeadFlag("adaface_h", "AdaFace h, the concentration of the normalised norm.", ("h",)),
        HeadFlag(
            "magface_norms",
            "MagFace l_a,u_a: the feature-norm range of the margin.",
            ("lower_norm", "upper_norm"),
        ),
        HeadFlag(
            "magface_margins",
            "MagFace l_m,u_m: the margins at l_a and u_a.",
            ("lower_margin", "upper_margin"),
        ),
        HeadFlag("lambda_g", "MagFace λ_g, weight of the regulariser g(a).", ("lambda_g",)),
    )
}

_TRIPLET_MINING = {
    "semihard": "triplet_semihard_loss",
    "hard": "triplet_hard_loss",
    "all": "triplet_batch_all_loss",
}

HEADS = {
    spec.name: spec
    for spec in (
        HeadSpec("softmax", layer="Dense", raw_features=True),
        HeadSpec("center", layer="Dense", raw_features=True, center=True),
        HeadSpec("triplet", mining=_TRIPLET_MINING, data=TRIPLET_DATA),
        HeadSpec(
            "sphereface",
            layer="SphereFace",
            raw_features=True,
            flags=("margin",),
            integer_arguments=("margin",),
            notes={"scale": "its scale is ‖x‖", "margin": "the integer m of cos(m·θ)"},
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
        # The modern margins: the papers' constants but s (see `_SCALE`).
        HeadSpec(
            "adaface",
            layer="AdaFace",
            raw_features=True,  # the margin adapts to ‖x‖ before L2 normalisation
            defaults={"scale": _SCALE, "margin": 0.4, "h": 0.333},
            flags=("scale", "margin", "adaface_h"),
            quality=True,
        ),
        HeadSpec(
            "magface",
            layer="MagFace",
            raw_features=True,  # m(a) and g(a) read a = ‖x‖
            defaults={
                "scale": _SCALE,
                "lower_norm": 10.0,
                "upper_norm": 110.0,
                "lower_margin": 0.45,
                "upper_margin": 0.8,
                "lambda_g": 35.0,
            },
            flags=("scale", "magface_norms", "magface_margins", "lambda_g"),
            notes={"margin": "its margin follows ‖x‖: use --magface_margins=l_m,u_m"},
            quality=True,
            adds_loss=True,
        ),
        HeadSpec(
            "curricularface",
            layer="CurricularFace",
            defaults={"scale": _SCALE, "margin": 0.5},
            flags=("scale", "margin"),
        ),
        HeadSpec(
            "subcenter",
            layer="SubCenterArcFace",
            defaults={"scale": _SCALE, "margin": 0.5, "sub_centers": 3},
            flags=("scale", "margin", "subcenters"),
            integer_arguments=("sub_centers",),
            notes={"subcenters": "K sub-centres per identity, a whole number >= 1"},
        ),
        HeadSpec(
            "elastic_arcface",
            layer="ElasticArcFace",
            defaults={"scale": _SCALE, "margin": 0.5, "std": 0.05},
            flags=("scale", "margin", "margin_std"),
            seeded=True,
        ),
        HeadSpec(
            "elastic_cosface",
            layer="ElasticCosFace",
            defaults={"scale": _SCALE, "margin": 0.35, "std": 0.05},
            flags=("scale", "margin", "margin_std"),
            seeded=True,
        ),
    )
}
LOSSES = tuple(HEADS)
# Every mining name of the table (the choices of `TrainConfig.mining`).
MINING = tuple(dict.fromkeys(m for spec in HEADS.values() for m in spec.mining))


def get_head(loss):
    """The `HeadSpec` of `loss`; raises ValueError naming the known losses."""
    if loss not in HEADS:
        raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={loss!r}")
    return HEADS[loss]


def runs():
    """{run name: train.py flags} of every loss at its defaults, one run per mining of a
    mining loss, in table order (the runs of `benchmarks/per_loss.py` and
    `experiments/loss_zoo.py`)."""
    out = {}
    for spec in HEADS.values():
        for mining in spec.mining or (None,):
            mined = [f"--mining={mining}"] if mining else []
            out[spec.run_name(mining)] = [f"--loss={spec.name}", *mined]
    return out


def head_kwargs_from_flags(loss, **given):
    """Layer keyword arguments set by the head flags `given` ({flag name: value}; None:
    not given), in the order of `HEAD_FLAGS`.

    Raises ValueError naming the flag when it does not apply to `loss` or is malformed.
    """
    spec = get_head(loss)
    unknown = sorted(set(given) - set(HEAD_FLAGS))
    if unknown:
        raise TypeError(f"Unknown head flags {unknown}; expected some of {list(HEAD_FLAGS)}.")
    given = {name: given[name] for name in HEAD_FLAGS if given.get(name) is not None}
    for name, value in given.items():
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
    kwargs = {}
    for name, value in given.items():
        flag = HEAD_FLAGS[name]
        if flag.is_list:
            values = value.split(",") if isinstance(value, str) else list(value)
            if len(values) != len(flag.arguments):
                count = _NUMBER_WORDS.get(len(flag.arguments), len(flag.arguments))
                raise ValueError(
                    f"--{name} needs {count} values {','.join(flag.arguments)}. Received: {values}"
                )
            try:
                numbers = [float(v) for v in values]
            except ValueError:
                raise ValueError(f"--{name} must be numbers. Received: {values}") from None
        else:
            numbers = [float(value)]
        for argument, number in zip(flag.arguments, numbers, strict=True):
            if argument in spec.integer_arguments:
                if number != int(number):
                    note = f" ({spec.notes[name]})" if name in spec.notes else ""
                    raise ValueError(
                        f"--{name} must be an integer for --loss={loss}{note}. "
                        f"Received: --{name}={value}"
                    )
                number = int(number)
            kwargs[argument] = number
    return kwargs


_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


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
    """The layer class of `loss`'s head (imports Keras), or None for a mining loss."""
    spec = get_head(loss)
    if spec.layer is None:
        return None
    if spec.layer == "Dense":
        import keras

        return keras.layers.Dense
    from tfface import layers

    return getattr(layers, spec.layer)


def build_head(loss, num_classes, head_kwargs=None, seed=None):
    """The head layer of `loss` for `num_classes` identities (float32 logits), or None.

    Float32 even under mixed_float16: the softmax of large logits overflows float16.
    A `seeded` head gets `seed` (the run's) unless `head_kwargs` give one.
    """
    spec = get_head(loss)
    cls = layer_class(loss)
    if cls is None:
        return None
    if not spec.margin_head:
        return cls(num_classes, dtype="float32", name="softmax_head")
    kwargs = resolve_head_kwargs(loss, head_kwargs)
    if spec.seeded and seed is not None:
        kwargs.setdefault("seed", int(seed))
    return cls(num_classes, dtype="float32", **kwargs)


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
