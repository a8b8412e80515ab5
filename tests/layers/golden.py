"""Helpers for analytic goldens: a 2-D head whose class weights are the unit axes."""

import math

import numpy as np


def at_angles(head, degrees, radius=1.0, weight_norms=(1.0, 1.0)):
    """Builds `head` on D=2 with W = diag(weight_norms) and returns embeddings at `degrees`.

    Class 0's weight is the x-axis and class 1's the y-axis, so an embedding at angle θ
    from the x-axis has cos θ_0 = cos θ and cos θ_1 = sin θ.
    """
    head.build((None, 2))
    head.kernel.assign(np.diag(np.asarray(weight_norms, "float32")))
    radians = np.deg2rad(np.asarray(degrees, "float64"))
    x = np.stack([np.cos(radians), np.sin(radians)], axis=1) * radius
    return x.astype("float32")


def deg(value):
    return math.radians(value)
