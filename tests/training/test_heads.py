"""The head table: every loss builds its head from one entry; accuracy without the margin."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from tfface import layers
from tfface import losses
from tfface import models
from tfface.training import heads
from tfface.training.objective import Objective
from tfface.training.schema import TrainConfig


@pytest.mark.parametrize("loss", heads.LOSSES)
def test_every_loss_builds_from_its_entry(loss):
    spec = heads.get_head(loss)
    head = heads.build_head(loss, 5)
    if spec.layer is None:
        assert head is None
        return
    assert isinstance(head, heads.layer_class(loss))
    assert head.dtype_policy.name == "float32"
    for key, value in spec.defaults.items():
        assert getattr(head, key) == value, key
    # The config applies the same defaults, so train.py and the Python API agree.
    assert TrainConfig(loss=loss).head_kwargs == spec.defaults


@pytest.mark.parametrize("loss", heads.LOSSES)
def test_objective_on_features_or_unit_embeddings(loss):
    """`raw_features` heads read the features: scaling them changes the loss; the others
    read the unit embeddings and ignore the features."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(8, 4)).astype("float32")
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    labels = np.repeat(np.arange(4), 2)
    objective = Objective(loss, 4, mining="semihard" if loss == "triplet" else None)
    objective.build(4)

    def loss_of(scale):
        value, stats = objective(unit, labels, training=False, features=scale * features)
        assert all(np.isfinite(float(v)) for v in stats.values())
        return float(value)

    # ×10: MagFace clips ‖x‖ to [10, 110], so the norms must reach past l_a = 10.
    changed = not math.isclose(loss_of(1.0), loss_of(10.0), rel_tol=1e-6)
    assert changed == heads.get_head(loss).raw_features


def test_margin_head_accuracy_uses_logits_without_margin():
    """Two classes at angles 0 and 1.3 rad, an embedding of class 0 at 0.6 rad: it is 0.6
    from its class and 0.7 from the other, so the plain argmax is right. ArcFace's margin
    logit s·cos(0.6 + 0.5) = 0.45·s falls below s·cos(0.7) = 0.76·s: accuracy on the
    penalised logits would be 0, as train.py logged before."""
    objective = Objective("arcface", 2, head_kwargs={"scale": 16.0, "margin": 0.5})
    objective.build(2)
    objective.head.kernel.assign(np.array([[1.0, math.cos(1.3)], [0.0, math.sin(1.3)]]))
    embeddings = np.array([[math.cos(0.6), math.sin(0.6)]], "float32")
    labels = np.array([0])
    logits = objective.head([tf.constant(embeddings), tf.constant(labels)])
    assert int(np.argmax(logits[0])) == 1  # the margin-penalised logits pick the wrong class
    _, stats = objective(embeddings, labels, training=True)
    assert float(stats["accuracy"]) == 1.0


@pytest.mark.parametrize(
    "loss, given, message",
    [
        ("softmax", {"scale": 8.0}, "--scale applies to margin heads only"),
        ("sphereface", {"scale": 8.0}, r"--scale does not apply to --loss=sphereface \(its"),
        ("sphereface", {"margin": 2.5}, "integer m"),
        ("arcface", {"margins": ["1", "0.2", "0.1"]}, "it applies to --loss=combined"),
        ("combined", {"margin": 0.3}, "use --margins=m1,m2,m3"),
        ("combined", {"margins": ["1", "x", "0"]}, "must be numbers"),
        ("subcenter", {"subcenters": 2.5}, "--subcenters must be an integer"),
        ("arcface", {"subcenters": 2.0}, "it applies to --loss=subcenter"),
        ("cosface", {"margin_std": 0.1}, "it applies to --loss=elastic_arcface/elastic_cosface"),
        ("magface", {"margin": 0.5}, "use --magface_margins=l_m,u_m"),
        ("magface", {"magface_norms": ["10"]}, "needs two values lower_norm,upper_norm"),
        ("adaface", {"lambda_g": 1.0}, "it applies to --loss=magface"),
        ("arcface", {"adaface_h": 0.5}, "it applies to --loss=adaface"),
    ],
)
def test_head_flag_errors(loss, given, message):
    with pytest.raises(ValueError, match=message):
        heads.head_kwargs_from_flags(loss, **given)


@pytest.mark.parametrize(
    "loss, kwargs, message",
    [
        ("arcface", {"margin": -1.0}, "margin"),
        ("cosface", {"scale": 0.0}, "scale"),
        ("combined", {"m1": 0.0}, "m1"),
        ("arcface", {"margn": 0.3}, "Unrecognized keyword arguments"),
        ("arcface", {"scale": float("nan")}, "finite"),
        ("subcenter", {"sub_centers": 0}, "sub_centers"),
        ("magface", {"lower_norm": 50.0, "upper_norm": 20.0}, "upper_norm"),
        ("adaface", {"h": -1.0}, "`h`"),
        ("elastic_cosface", {"std": -0.1}, "`std`"),
        ("curricularface", {"margin": 2.0}, "margin"),
    ],
)
def test_check_head_kwargs_uses_the_layer_rules(loss, kwargs, message):
    with pytest.raises(ValueError, match=message):
        heads.check_head_kwargs(loss, kwargs)


@pytest.mark.parametrize(
    "loss, given, kwargs",
    [
        ("subcenter", {"subcenters": 2.0}, {"sub_centers": 2}),
        ("elastic_arcface", {"margin_std": 0.1, "margin": 0.4}, {"std": 0.1, "margin": 0.4}),
        ("adaface", {"adaface_h": 0.5}, {"h": 0.5}),
        (
            "magface",
            {"magface_norms": ["5", "50"], "magface_margins": ["0.2", "0.6"], "lambda_g": 10},
            {
                "lower_norm": 5.0,
                "upper_norm": 50.0,
                "lower_margin": 0.2,
                "upper_margin": 0.6,
                "lambda_g": 10.0,
            },
        ),
    ],
)
def test_new_head_flags_set_layer_arguments(loss, given, kwargs):
    got = heads.head_kwargs_from_flags(loss, **given)
    assert got == kwargs and isinstance(got.get("sub_centers", 0), int)
    heads.check_head_kwargs(loss, got)


def test_unknown_loss():
    with pytest.raises(ValueError, match="`loss` must be one of"):
        heads.get_head("arcfce")


def test_embedding_model_with_features_shares_the_embedding_graph():
    model = models.build_embedding_model("small_cnn", 32, 16, return_features=True)
    unit, features = model(np.full((2, 32, 32, 3), 100.0, "float32"))
    np.testing.assert_allclose(
        unit, features / np.linalg.norm(features, axis=1, keepdims=True), atol=1e-6
    )
    assert isinstance(model.get_layer("l2_normalize"), layers.L2Normalize)


def test_run_table_is_the_head_table():
    """`heads.runs()` (the runs of benchmarks/per_loss.py and experiments/loss_zoo.py):
    every loss once, triplet once per mining, each named as its default model_dir."""
    runs = heads.runs()
    assert set(runs) == {
        "softmax",
        "center",
        "sphereface",
        "normface",
        "cosface",
        "arcface",
        "combined",
        "adaface",
        "magface",
        "curricularface",
        "subcenter",
        "elastic_arcface",
        "elastic_cosface",
        "triplet-semihard",
        "triplet-hard",
        "triplet-all",
    }
    for name, flags in runs.items():
        values = dict(flag.removeprefix("--").split("=") for flag in flags)
        config = TrainConfig(**values).validate()
        assert config.model_dir == os.path.join("runs", name)


@pytest.mark.parametrize("loss", heads.LOSSES)
def test_spec_says_what_the_loss_needs(loss):
    """The table, not the loss's name, decides: mining, num_classes, the P×K minimum."""
    spec = heads.get_head(loss)
    assert spec.mines == (loss == "triplet") and spec.classifies == (not spec.mines)
    config = TrainConfig(loss=loss)
    assert config.mining == spec.default_mining
    if spec.mines:
        for mining in spec.mining:
            assert hasattr(losses, spec.mining[mining])
        with pytest.raises(ValueError, match="at least two images per identity"):
            TrainConfig(loss=loss, images_per_identity=1).validate()
        Objective(loss, None, mining=spec.default_mining)  # no classes needed
    else:
        TrainConfig(loss=loss, images_per_identity=1).validate()
        with pytest.raises(ValueError, match="`num_classes` must be an int >= 2"):
            Objective(loss, 1)
        with pytest.raises(ValueError, match="`mining` applies to loss='triplet' only"):
            TrainConfig(loss=loss, mining="hard").validate()
