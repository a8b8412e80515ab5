"""The README's ArcFace snippet, run unchanged under the active Keras backend.

`make test-backends` runs this file under KERAS_BACKEND=jax and =torch (no TensorFlow
installed there), `make test` under TensorFlow: a Keras user on any backend can copy it.
"""

import pathlib
import re

import keras
import numpy as np

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet(after):
    """The first ```python block of README.md that follows the line containing `after`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.DOTALL)
    assert match, f"no python block after {after!r} in {README}"
    return match.group(1)


def test_arcface_snippet_fits_saves_and_reloads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(readme_snippet("ArcFace in a functional model:"), "README.md", "exec"), namespace)
    model, x, y = namespace["model"], namespace["x"], namespace["y"]
    history = model.history.history if model.history else {}
    assert np.isfinite(history["loss"][0]), history
    # The snippet's comment: the saved file reloads with nothing but `import tfface`.
    reloaded = keras.saving.load_model(tmp_path / "arcface.keras")
    expected = keras.ops.convert_to_numpy(model([x[:4], y[:4]], training=False))
    actual = keras.ops.convert_to_numpy(reloaded([x[:4], y[:4]], training=False))
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)
    embedding = keras.ops.convert_to_numpy(namespace["embedder"](x[:4]))
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


def test_margin_head_snippets_run():
    """The README's custom-hook head and the sub-centre noisy-sample steps, unchanged."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("To write a new head, subclass") : text.index("### Center loss")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 2, len(blocks)
    import tfface

    namespace = {"keras": keras, "np": np, "tfface": tfface}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    head = namespace["NormScaledMargin"](num_classes=3, scale=10.0)
    logits = keras.ops.convert_to_numpy(head([np.ones((2, 4), "float32"), np.array([0, 2])]))
    margin = 0.1 * np.tanh(2.0)  # ‖x‖ = 2: the target logit is 10·(cos θ_y − margin)
    plain = keras.ops.convert_to_numpy(head(np.ones((2, 4), "float32")))
    np.testing.assert_allclose(plain[[0, 1], [0, 2]] - logits[[0, 1], [0, 2]], 10 * margin, 1e-5)
    assert namespace["counts"].sum() == 256
    assert namespace["noisy"].shape == (256,) and namespace["noisy"].dtype == bool
    assert namespace["clean_kernel"].shape == (128, 100)
