"""Decision margins of the margin-softmax heads, computed by calling the layers themselves.

Command (CPU, a few seconds; any Keras backend):

    python experiments/margin_curves.py --out=docs/images/margin_curves.png

Binary case, 2-D unit features: class weights W_0 = e_1, W_1 = e_2 are loaded into each
head (`head.kernel.assign`), a unit feature x = (cos θ, sin θ) is fed with label 0, and the
head's own output is read back, so nothing here re-types a formula. Left panel: the target
logit divided by the head's scale (s for the normalised heads, ‖x‖ = 1 for softmax and
SphereFace) as a function of θ, the ArcFace paper's "target logit curves" (Deng et al.
2019, Fig. 4a). Right panel: the decision boundary of class 0 in the (θ_0, θ_1) plane, where
its target value equals the other class's cos θ_1 (ArcFace paper, Table 1 / Fig. 5): the
gap between a boundary and the diagonal is that head's margin.

Measured (this command, 2026-11-26), target logit / scale read back from the layers:

    head                        θ= 30°  θ= 60°  θ= 90°
    Softmax                       0.866    0.500    0.000
    NormFace (s=64)               0.866    0.500    0.000
    SphereFace (m=4, λ=5)         0.638    0.167   -0.500
    SphereFace (m=4, λ=0)        -0.500   -1.500   -3.000
    CosFace (m=0.35)              0.516    0.150   -0.350
    ArcFace (m=0.5)               0.520    0.024   -0.479
    Combined (1, 0.3, 0.2)        0.480    0.022   -0.496

ArcFace's curve drops at θ = π − m = 151.4° where the monotone fallback takes over.
"""

import argparse
import math
import os
import sys

import keras
import numpy as np

import tfface

# (label, head factory, scale to divide by); Softmax is a bias-free Dense, the plain logit.
HEADS = (
    ("Softmax", lambda: keras.layers.Dense(2, use_bias=False), 1.0),
    ("NormFace (s=64)", lambda: tfface.layers.NormFace(2, scale=64.0), 64.0),
    (
        "SphereFace (m=4, λ=5)",
        lambda: tfface.layers.SphereFace(2, margin=4, base=0.0, lambda_min=5.0),
        1.0,
    ),
    ("SphereFace (m=4, λ=0)", lambda: tfface.layers.SphereFace(2, base=0.0, lambda_min=0.0), 1.0),
    ("CosFace (m=0.35)", lambda: tfface.layers.CosFace(2, scale=64.0, margin=0.35), 64.0),
    ("ArcFace (m=0.5)", lambda: tfface.layers.ArcFace(2, scale=64.0, margin=0.5), 64.0),
    (
        "Combined (1, 0.3, 0.2)",
        lambda: tfface.layers.CombinedMargin(2, m1=1.0, m2=0.3, m3=0.2, scale=64.0),
        64.0,
    ),
)


def target_values(make_head, scale, theta):
    """Target logit / scale of a 2-class head for unit features at angles `theta` from W_0."""
    head = make_head()
    head.build((None, 2))
    head.kernel.assign(np.eye(2, dtype="float32"))
    x = np.stack([np.cos(theta), np.sin(theta)], axis=1).astype("float32")
    if isinstance(head, tfface.layers.MarginSoftmax):
        logits = head([x, np.zeros(len(theta), "int32")], training=False)
    else:
        logits = head(x)
    return keras.ops.convert_to_numpy(logits)[:, 0].astype("float64") / scale


def curves(num=721):
    """θ in radians [num] and {label: target value [num]} for every head in HEADS."""
    theta = np.linspace(0.0, math.pi, num)
    return theta, {label: target_values(make, scale, theta) for label, make, scale in HEADS}


def draw(theta, values, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    degrees = np.degrees(theta)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for label, value in values.items():
        style = "--" if "λ=0" in label or label.startswith("NormFace") else "-"
        left.plot(degrees, value, style, label=label)
        # Class 0 wins where f(θ_0) > cos θ_1: boundary θ_1 = arccos f(θ_0) (clipped).
        right.plot(degrees, np.degrees(np.arccos(np.clip(value, -1.0, 1.0))), style, label=label)
    left.set(
        xlabel="θ between feature and target weight (degrees)",
        ylabel="target logit / scale",
        title="Target logit curves (binary, unit features)",
        xlim=(0, 180),
        ylim=(-1.5, 1.05),
    )
    right.plot([0, 180], [0, 180], color="0.6", lw=0.8)
    right.set(
        xlabel="θ₀ (feature to its own class)",
        ylabel="θ₁ (feature to the other class)",
        title="Class-0 decision boundary: f(θ₀) = cos θ₁",
        xlim=(0, 180),
        ylim=(0, 180),
        aspect="equal",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/images/margin_curves.png", help="PNG path")
    parser.add_argument("--points", type=int, default=721, help="angles in [0°, 180°]")
    args = parser.parse_args(argv)
    if args.points < 3:
        parser.error(f"--points must be >= 3. Received: --points={args.points}")
    theta, values = curves(args.points)
    probe = np.radians([30.0, 60.0, 90.0])
    print(f"{'head':26s}" + "".join(f"  θ={d:>3.0f}°" for d in np.degrees(probe)))
    for label, make, scale in HEADS:
        row = target_values(make, scale, probe)
        print(f"{label:26s}" + "".join(f"  {v:7.3f}" for v in row))
    draw(theta, values, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
