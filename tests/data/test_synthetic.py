"""Tests for tfface.data.synthetic: shapes, determinism, random access, landmarks, splits."""

import numpy as np
import pytest
import tensorflow as tf

from tfface.align import ARCFACE_TEMPLATE_112
from tfface.data.synthetic import HELDOUT_ID_OFFSET
from tfface.data.synthetic import SyntheticFaces
from tfface.data.synthetic import SyntheticSource
from tfface.data.synthetic import heldout_images


@pytest.mark.parametrize("size", [64, 96, 112, 160])
def test_render_shapes_dtypes_and_landmarks_inside(size):
    faces = SyntheticFaces(image_size=size, seed=0)
    images, landmarks = faces.render(np.arange(6), np.arange(6))
    assert images.shape == (6, size, size, 3) and images.dtype == np.uint8
    assert landmarks.shape == (6, 5, 2) and landmarks.dtype == np.float32
    assert np.all((landmarks > 0) & (landmarks < size))
    assert images.std() > 10  # not blank


@pytest.mark.parametrize("size", [32, 64, 112, 150, 160])
def test_resampling_kernels_hold_no_denormals(size):
    """Denormal kernel taps cost a microcode assist per multiply on Intel cores (the
    renderer ran 4× slower on a Xeon than on an AMD EPYC): a property, not a timing."""
    tiny = np.finfo(np.float32).tiny
    for k in SyntheticFaces(image_size=size)._kernels:
        assert k.dtype == np.float32
        assert not np.any((k != 0) & (np.abs(k) < tiny))
        np.testing.assert_allclose(k.sum(0), 1.0, atol=1e-6)


_TUNING_PROBE = """
import platform, resource, sys
import numpy as np, threadpoolctl
from tfface.data.synthetic import SyntheticFaces
faces = SyntheticFaces(image_size=64, seed=0)
ids = np.arange(128) * 13
faces.render(ids, ids % 20)
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(1, 4):
    faces.render(ids + i, ids % 20)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
print(blas, faults, platform.libc_ver()[0])
"""


def test_render_runs_blas_on_one_thread_and_keeps_its_memory_mapped():
    """In a fresh process, after the first render: NumPy's BLAS has one thread (idle
    OpenBLAS workers spin and take cores from training), and later 128-image batches
    take < 500 minor page faults each (8,900–10,000 before glibc was told to keep freed
    memory: `benchmarks/render_cost.py`). Counts, not timings."""
    import ast
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _TUNING_PROBE], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    blas, faults, libc = proc.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    assert ast.literal_eval(blas) and set(ast.literal_eval(blas)) == {1}
    if libc == "glibc":
        assert float(faults) < 500, faults


def _record_process_settings(monkeypatch):
    """An undecided process whose settings changes are recorded instead of made."""
    import types

    from tfface.data.synthetic import process_tuning

    calls = []

    def mallopt(param, value):
        calls.append(("mallopt", param, value))
        return 1

    monkeypatch.setattr(process_tuning, "_state", None)
    monkeypatch.setattr(
        process_tuning,
        "threadpoolctl",
        types.SimpleNamespace(threadpool_limits=lambda **kw: calls.append(("blas", kw))),
    )
    libc = types.SimpleNamespace(mallopt=mallopt)
    monkeypatch.setattr(process_tuning, "ctypes", types.SimpleNamespace(CDLL=lambda name: libc))
    monkeypatch.setattr(
        process_tuning, "platform", types.SimpleNamespace(libc_ver=lambda: ("glibc", "2.39"))
    )
    return calls


def test_first_render_applies_the_process_settings_once(monkeypatch):
    from tfface.data.synthetic import disable_process_tuning

    calls = _record_process_settings(monkeypatch)
    faces = SyntheticFaces(image_size=32, seed=0)
    faces.render([], [])
    assert calls == []  # only a render of at least one image
    faces.render([0], [0])
    assert calls == [
        ("blas", {"limits": 1, "user_api": "blas"}),
        ("mallopt", -1, 256 << 20),  # M_TRIM_THRESHOLD
        ("mallopt", -3, 32 << 20),  # M_MMAP_THRESHOLD
    ]
    faces.render([1, 2], [0, 0])
    assert len(calls) == 3
    # Too late to opt out: the settings are not undone, so saying so is an error.
    with pytest.raises(RuntimeError, match="before the first synthetic render"):
        disable_process_tuning()


def test_disable_process_tuning_before_the_first_render_keeps_the_settings(monkeypatch):
    from tfface.data.synthetic import disable_process_tuning
    from tfface.data.synthetic import tune_process_for_rendering

    calls = _record_process_settings(monkeypatch)
    disable_process_tuning()
    SyntheticFaces(image_size=32, seed=0).render([0, 1], [0, 0])
    tune_process_for_rendering()
    disable_process_tuning()  # again: a no-op
    assert calls == []


def test_deterministic_per_seed_and_random_access():
    faces = SyntheticFaces(image_size=64, seed=3)
    ids, var = np.array([5, 9, 5, 2]), np.array([0, 1, 7, 3])
    a, la = faces.render(ids, var)
    b, lb = SyntheticFaces(image_size=64, seed=3).render(ids, var)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    # Any image renders the same alone as inside a batch (needed by the P×K sampler).
    single, lsingle = faces.render([5], [7])
    np.testing.assert_array_equal(single[0], a[2])
    np.testing.assert_array_equal(lsingle[0], la[2])
    other, _ = SyntheticFaces(image_size=64, seed=4).render(ids, var)
    assert np.abs(other.astype(int) - a.astype(int)).mean() > 10
    assert np.abs(a[0].astype(int) - a[2].astype(int)).mean() > 5  # variations differ


def test_neutral_landmarks_sit_on_the_arcface_template():
    for size in (112, 64):
        faces = SyntheticFaces(image_size=size, seed=0, nuisance=0.0)
        _, landmarks = faces.render(np.arange(200), np.zeros(200))
        template = ARCFACE_TEMPLATE_112 * size / 112
        np.testing.assert_allclose(landmarks.mean(0), template, atol=1.5 * size / 112)
        # Individual identities differ only by their own proportions.
        assert np.abs(landmarks - template).max() < 8 * size / 112


def test_neutral_identity_is_stable_and_landmarks_follow_the_pose():
    neutral = SyntheticFaces(image_size=112, seed=0, nuisance=0.0)
    _, l0 = neutral.render([3, 3, 3], [0, 1, 2])
    np.testing.assert_allclose(l0, np.repeat(l0[:1], 3, 0), atol=1e-4)
    posed = SyntheticFaces(image_size=112, seed=0)
    _, lp = posed.render(np.full(50, 3), np.arange(50))
    v = posed.variation_params(np.full(50, 3), np.arange(50))
    # Eye-to-eye distance scales with the pose scale (the yaw squeeze is at most 18 %).
    eye_dist = np.linalg.norm(lp[:, 1] - lp[:, 0], axis=1)
    ratio = eye_dist / (np.linalg.norm(l0[0, 1] - l0[0, 0]) * v["scale"])
    assert np.all((ratio > 0.8) & (ratio < 1.01))
    # The eye line tilts by the roll angle.
    d = lp[:, 1] - lp[:, 0]
    np.testing.assert_allclose(np.arctan2(d[:, 1], d[:, 0]), v["roll"], atol=1e-4)


def test_eyes_are_darker_or_more_detailed_than_cheeks_at_the_landmarks():
    faces = SyntheticFaces(image_size=112, seed=1, nuisance=0.0)
    images, landmarks = faces.render(np.arange(20), np.zeros(20))
    grey = images.astype(np.float32).mean(-1)
    for img, lm in zip(grey, landmarks, strict=True):
        x, y = np.round(lm[0]).astype(int)
        eye = img[y - 2 : y + 3, x - 4 : x + 5]
        cheek = img[y + 12 : y + 17, x - 4 : x + 5]  # skin below the eye
        assert eye.std() > cheek.std() or eye.mean() < cheek.mean()


def test_heldout_ids_are_disjoint_and_heldout_images_are_ordered():
    images, labels = heldout_images(3, 2, image_size=64, seed=0)
    assert images.shape == (6, 64, 64, 3)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])
    faces = SyntheticFaces(image_size=64, seed=0)
    expected, _ = faces.render(HELDOUT_ID_OFFSET + np.array([1]), [1])
    np.testing.assert_array_equal(images[3], expected[0])
    train, _ = faces.render([1], [1])
    assert not np.array_equal(train[0], images[3])


def test_source_contract_and_render_by_index():
    source = SyntheticSource(num_identities=7, images_per_identity=3, image_size=48, seed=2)
    assert source.num_examples == 21 and len(source.identities) == 7
    np.testing.assert_array_equal(source.manifest.counts, [3] * 7)
    ds = source.images_for_indices(tf.data.Dataset.from_tensors(tf.constant([4, 20, 0], tf.int64)))
    images, labels = next(iter(ds))
    assert images.shape == (3, 48, 48, 3) and images.dtype == tf.uint8
    np.testing.assert_array_equal(labels.numpy(), [1, 6, 0])
    expected, _ = source.faces.render([1, 6, 0], [1, 2, 0])
    np.testing.assert_array_equal(images.numpy(), expected)
    seq = list(source.dataset().take(4).as_numpy_iterator())
    assert [int(label) for _, label in seq] == [0, 0, 0, 1]
    np.testing.assert_array_equal(seq[1][0], source.faces.render([0], [1])[0][0])
    shuffled = [int(lab) for _, lab in source.dataset(shuffle=True, seed=1).as_numpy_iterator()]
    assert sorted(shuffled) == sorted(source.labels.tolist())


def test_heldout_source_uses_the_heldout_ids():
    source = SyntheticSource(4, 2, image_size=48, seed=0, split="heldout")
    images, labels = source.render_indices([3])
    assert labels.tolist() == [1]
    expected, _ = source.faces.render([HELDOUT_ID_OFFSET + 1], [1])
    np.testing.assert_array_equal(images, expected)
    assert source.identities[0].startswith("synthetic_heldout")


def test_load_synthetic_spec():
    from tfface.data import load

    source = load("synthetic:12", image_size=64, images_per_identity=2)
    assert isinstance(source, SyntheticSource)
    assert source.num_examples == 24 and source.image_size == 64


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: SyntheticFaces(image_size=16), "image_size"),
        (lambda: SyntheticFaces(image_size=None), "image_size"),
        (lambda: SyntheticFaces(image_size=64.5), "image_size"),
        (lambda: SyntheticFaces(nuisance=-1), "nuisance"),
        (lambda: SyntheticFaces(seed=1.5), "seed"),
        (lambda: SyntheticFaces(image_size=64).render([1, 2], [0]), "same length"),
        (lambda: SyntheticSource(0, 2), "num_identities"),
        (lambda: SyntheticSource("3", 2), "num_identities"),
        (lambda: SyntheticSource(2, 0), "images_per_identity"),
        (lambda: SyntheticSource(2, 2, split="test"), "split"),
        (lambda: SyntheticSource(2, 2, colour=True), "unexpected arguments"),
        (lambda: SyntheticSource(2, 2, image_size=48).render_indices([4]), "indices"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
