"""Shared checks for the triplet-loss tests: ours (any Keras backend) against the loop
references."""

import numpy as np

from tests.losses import reference
from tfface.testing.backend import value_and_gradients

METRICS = ("L2", "squared-L2", "angular")
KINDS = ("mixed", "no_positive", "one_class")


def value_and_grad(fn, labels, embeddings, **kwargs):
    loss, (grad,) = value_and_gradients(lambda x: fn(labels, x, **kwargs), embeddings)
    return float(loss), grad


def check_against_reference(case, fn, ref_fn, fn_kwargs, ref_kwargs, seeds=(0, 1), sizes=(7,)):
    """Values (1e-5) and gradients (finite differences, 2e-4) over metrics and batch kinds."""
    for metric in METRICS:
        for kind in KINDS:
            for seed in seeds:
                for batch in sizes:
                    labels, emb = reference.random_batch(seed, batch, 3, kind)
                    with case.subTest(metric=metric, kind=kind, seed=seed, batch=batch):
                        value, grad = value_and_grad(
                            fn, labels, emb, distance_metric=metric, **fn_kwargs
                        )
                        expected = ref_fn(labels, emb, metric=metric, **ref_kwargs)
                        np.testing.assert_allclose(value, expected, atol=1e-5, rtol=1e-5)
                        numeric = reference.numerical_gradient(
                            lambda e, y=labels, m=metric: ref_fn(y, e, metric=m, **ref_kwargs), emb
                        )
                        np.testing.assert_allclose(grad, numeric, atol=2e-4, rtol=1e-3)
                        case.assertTrue(np.all(np.isfinite(grad)))


def max_intermediate_elements(fn, batch, dim):
    """Largest element count of any tensor in the traced forward+backward graph.

    The batch is static, so the only dynamic dimensions are data-dependent widths (such as
    the most positives of any anchor), which never exceed B: each unknown dimension is
    counted as B, an upper bound. Tensors that a differentiated while loop stacks per
    iteration count B times. Returns (largest, number of outputs of unknown rank).
    TensorFlow backend only (it reads the traced tf.Graph).
    """
    import tensorflow as tf

    @tf.function(
        input_signature=[
            tf.TensorSpec([batch], tf.int32),
            tf.TensorSpec([batch, dim], tf.float32),
        ]
    )
    def step(labels, embeddings):
        with tf.GradientTape() as tape:
            tape.watch(embeddings)
            loss = fn(labels, embeddings)
        return loss, tape.gradient(loss, embeddings)

    graph = step.get_concrete_function().graph
    largest, unknown = 0, 0
    for op in _all_ops(graph):
        if op.type == "TensorListPushBack":
            # A differentiated while loop stacks one tensor per iteration for the backward
            # pass; with up to B iterations its memory is B × the element.
            element = op.inputs[1].shape
            dims = [batch if d is None else d for d in element.as_list()] if element.rank else []
            largest = max(largest, batch * int(np.prod(dims, dtype=np.int64)))
            continue
        if op.type == "Placeholder":
            # Function-body inputs mirror outer tensors, which are checked themselves (the
            # unused ones of a while-loop condition carry no shape at all).
            continue
        for out in op.outputs:
            if out.dtype == tf.resource or out.dtype == tf.variant:
                continue
            if out.shape.rank is None:
                unknown += 1
                continue
            dims = [batch if d is None else d for d in out.shape.as_list()]
            largest = max(largest, int(np.prod(dims, dtype=np.int64)))
    return largest, unknown


def _all_ops(graph):
    """Ops of a graph and of the function bodies it calls (while loops, gradients)."""
    ops = list(graph.get_operations())
    for name in getattr(graph, "_functions", {}):
        ops.extend(graph._functions[name].graph.get_operations())
    return ops
