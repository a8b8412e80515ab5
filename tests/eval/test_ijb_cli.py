"""`python -m tfface.eval ijb` on a tiny IJB-C tree in the release's format: end to end,
the cache (re-scoring loads no model and no TensorFlow), and bad input exiting 2 before
TensorFlow loads."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from tests.eval.ijb_fixture import write_ijb_tree
from tests.module_imports import run_module
from tfface.eval import cli

ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
SIZE = 24


def _pixel_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    return keras.Model(inputs, keras.layers.Flatten()(x))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("ijb")
    tree = write_ijb_tree(root / "IJB_release")
    _pixel_model().save(root / "m.keras")
    return tree, root / "m.keras"


def _args(tree, model, out, *extra):
    return [
        "ijb",
        "--root",
        str(tree.root),
        "--dataset",
        "IJBC",
        "--model",
        str(model),
        "--out",
        str(out),
        "--no_progress",
        *extra,
    ]


def test_end_to_end_then_rescoring_from_the_cache(release, tmp_path, capsys):
    tree, model = release
    out = tmp_path / "out"
    assert cli.main(_args(tree, model, out, "--batch_size", "7", "--save_scores")) == 0
    captured = capsys.readouterr()
    report = json.loads((out / "ijbc_N1D1F1.json").read_text())
    assert captured.out.strip() == f"ijbc_N1D1F1: {report['summary']}"
    assert "embeddings: 0 from the cache, 32 embedded" in captured.err
    assert report["dataset"] == "IJBC" and report["image_size"] == SIZE
    assert (report["num_pairs"], report["num_genuine"], report["num_impostor"]) == (28, 4, 24)
    assert (report["num_images"], report["num_templates"]) == (len(tree.names), 8)
    assert report["embeddings"]["embedded"] == len(tree.names)
    assert report["embeddings"]["cache"] == str(out / "ijbc_embeddings.npz")
    assert [e["resolvable"] for e in report["tar_at_far"]] == [False] * 5 + [True]
    assert 0.0 <= report["tar_at_far"][-1]["tar"] <= 1.0
    assert (out / "ijbc_N1D1F1_roc.png").stat().st_size > 0
    with np.load(out / "ijbc_N1D1F1_scores.npz") as saved:
        np.testing.assert_array_equal(saved["labels"], tree.pairs[:, 2] == 1)
        assert saved["scores"].shape == (28,)
        first_scores = saved["scores"].copy()

    # Another pooling mode, a subset and the default report name: no re-embedding, no
    # TensorFlow (a fresh process), same scores for the same mode.
    (out / "ijbc_N1D1F1_scores.npz").unlink()
    code, stdout, errors, imported = run_module(
        "tfface.eval", *_args(tree, model, out, "--save_scores"), env=ENV
    )
    assert code == 0, errors
    assert "embeddings: 32 from the cache, 0 embedded" in errors
    assert "tensorflow" not in imported and "keras" not in imported
    with np.load(out / "ijbc_N1D1F1_scores.npz") as saved:
        np.testing.assert_allclose(saved["scores"], first_scores, rtol=1e-12)
    code, stdout, errors, imported = run_module(
        "tfface.eval", *_args(tree, model, out, "--no_norm_score", "--limit", "10"), env=ENV
    )
    assert code == 0, errors
    assert "tensorflow" not in imported
    subset = json.loads((out / "ijbc_N0D1F1_limit10.json").read_text())
    assert subset["mode"] == "N0D1F1" and subset["num_pairs"] == 10
    assert subset["subset"]["pairs_in_protocol"] == 28
    assert stdout.startswith("ijbc_N0D1F1_limit10: IJBC 1:1 N0D1F1, 10 pairs (subset)")


def test_changed_model_cannot_reuse_the_cache(release, tmp_path, capsys):
    tree, model = release
    out = tmp_path / "out"
    assert cli.main(_args(tree, model, out, "--limit", "4")) == 0
    other = tmp_path / "other.keras"
    shutil.copy(model, other)
    with open(other, "ab") as f:
        f.write(b"\0")  # other bytes, other fingerprint
    capsys.readouterr()
    assert cli.main(_args(tree, other, out)) == 2
    err = capsys.readouterr().err
    assert "ijbc_embeddings.npz' was written for fingerprint" in err
    assert "Pass another --cache" in err
    assert cli.main(_args(tree, model, out, "--image_size", "32")) == 2
    assert "holds 24×24 crops' embeddings, not 32×32" in capsys.readouterr().err


def test_unreadable_crop_exits_1_after_caching_the_others(release, tmp_path, capsys):
    tree, model = release
    root = tmp_path / "copy"
    shutil.copytree(tree.root, root)
    (root / "IJBC" / "loose_crop" / "5.jpg").write_bytes(b"truncated")
    out = tmp_path / "out"
    args = _args(tree, model, out)
    args[args.index("--root") + 1] = str(root)
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "1 loose crops could not be read" in err and "5.jpg: Cannot decode" in err
    assert not (out / "ijbc_N1D1F1.json").exists()
    with np.load(out / "ijbc_embeddings.npz") as cache:
        assert len(cache["names"]) == len(tree.names) - 1 and "5.jpg" not in cache["names"]


def _bad_inputs(tree, tmp_path):
    """(name, arguments, message) for inputs rejected before TensorFlow loads."""
    broken = tmp_path / "broken"
    shutil.copytree(tree.root, broken)
    meta = broken / "IJBC" / "meta"
    pairs = meta / "ijbc_template_pair_label.txt"
    lines = pairs.read_text().splitlines()
    pairs.write_text("\n".join([*lines[:2], "101 108 yes", *lines[2:]]) + "\n")
    missing = tmp_path / "missing"
    shutil.copytree(tree.root, missing)
    os.remove(missing / "IJBC" / "loose_crop" / "3.jpg")
    return [
        ("root", ["--root", str(tmp_path / "nowhere")], "is not a directory"),
        ("layout", ["--root", str(tmp_path)], "does not hold the IJBC release"),
        ("format", ["--root", str(broken)], f"{pairs}:3: expected 'template_id_1"),
        ("image", ["--root", str(missing)], "1 of the 32 loose crops the protocol needs"),
        ("model", ["--model", str(tmp_path / "none.keras")], "no such .keras file"),
        ("limit", ["--limit", "1"], "--limit must be >= 2 pairs"),
        ("batch", ["--batch_size", "0"], "--batch_size must be >= 1"),
        ("dataset", ["--dataset", "IJBA"], "invalid choice: 'IJBA'"),
    ]


def test_bad_input_exits_2_before_tensorflow(release, tmp_path):
    tree, model = release
    for name, change, message in _bad_inputs(tree, tmp_path):
        args = _args(tree, model, tmp_path / "out")
        for flag, value in zip(change[::2], change[1::2], strict=True):
            if flag in args:
                args[args.index(flag) + 1] = value
            else:
                args += [flag, value]
        code, _, errors, imported = run_module("tfface.eval", *args, env=ENV)
        assert code == 2, (name, errors)
        assert message in errors, (name, errors)
        assert "tensorflow" not in imported and "keras" not in imported, name
    assert not (tmp_path / "out").exists()
