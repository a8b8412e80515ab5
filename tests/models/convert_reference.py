"""Shared set-up for the converter parity tests: test images and the torch reference worker.

`make parity` sets TFFACE_TORCH_REF_PYTHON to .venv-torch-ref/bin/python; the worker
(tools/torch_ref_worker.py) builds the reference networks with random weights, writes the
files a user would convert and the reference embeddings of the same pixels.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).resolve().parents[2] / "tools" / "torch_ref_worker.py"
TOL = 1e-4  # the bound on max |embedding difference|


def sample_pixels(size, seed=0):
    """Three RGB images in 0–255 that the networks embed differently.

    A real photo (scikit-image's astronaut, resized), its mirror with a brightness shift,
    and smooth random colour blobs: varied content keeps the reference embeddings apart, so
    a small difference means agreement rather than a flat network.
    """
    from skimage import data
    from skimage.transform import resize

    face = resize(data.astronaut()[20:220, 150:350], (size, size), anti_aliasing=True) * 255.0
    mirror = np.clip(face[:, ::-1] * 0.8 + 30.0, 0.0, 255.0)
    rng = np.random.default_rng(seed)
    blobs = resize(rng.uniform(0, 255, (6, 6, 3)), (size, size), order=3)
    return np.clip(np.stack([face, mirror, blobs]), 0, 255).astype(np.float32)


def run_worker(tmp_path_factory, name, cases, no_dynamo=()):
    python = os.environ.get("TFFACE_TORCH_REF_PYTHON")
    if not python:
        pytest.skip(
            "TFFACE_TORCH_REF_PYTHON is not set: run `make parity`, which points it at "
            ".venv-torch-ref/bin/python (torch 2.13.0, onnxruntime, insightface, facenet-pytorch)"
        )
    out = tmp_path_factory.mktemp(name)
    np.save(out / "pixels112.npy", sample_pixels(112))
    np.save(out / "pixels160.npy", sample_pixels(160))
    proc = subprocess.run(
        [
            python,
            str(WORKER),
            "run",
            "--out",
            str(out),
            "--cases",
            ",".join(cases),
            "--pixels112",
            str(out / "pixels112.npy"),
            "--pixels160",
            str(out / "pixels160.npy"),
            "--no_dynamo",
            ",".join(no_dynamo),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
    )
    assert proc.returncode == 0, f"torch reference worker failed:\n{proc.stderr[-4000:]}"
    return out


def unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def check_close(ours, reference, label):
    """Asserts max |ours − reference| ≤ TOL, prints the figure, and that the images differ."""
    diff = float(np.abs(np.asarray(ours, np.float64) - reference).max())
    spread = float(np.abs(reference[:, None] - reference[None]).max())
    print(
        f"{label}: max|Δembedding| = {diff:.2e} (embeddings of different images differ by "
        f"up to {spread:.2e})"
    )
    assert spread > 100 * TOL, f"{label}: reference embeddings barely depend on the input"
    assert diff <= TOL, f"{label}: max abs difference {diff:.3e} > {TOL}"
    return diff
