"""Fine-tuning the pretrained dlib_resnet_v1 keeps what it knows (issue 17 defect 1).

Real identities available offline are the 9 people of the wheel photos, one photo each
(insightface's t1.jpg and Tom_Hanks_54745.png, scikit-image's astronaut, matplotlib's
grace_hopper.jpg). So the folder is `benchmarks/real_face_folder.py`'s: each face
re-photographed 8 ways (mirrored, rotated ±8°, brighter, darker, blurred, noisier) and
aligned on dlib's chip. The run's default evaluation holds 4 of the 9 people out
(identity-disjoint, seed 0) and trains on the other 5 (P=4 × K=4); verification is on the
200 pairs of the held-out people. Copies of one photo are easier to match than new photos
of a person (the pretrained model scores 1.0000 on them), so what this guards is that
fine-tuning does not destroy the model, as the README's recipe did (loss 0.2000 from
step 2, exported threshold 1.0000).
"""

import os
import sys

import pytest

from tfface.training import pipeline
from tfface.training.errors import EmbeddingCollapseError
from tfface.training.schema import TrainConfig
from tfface.training.trainer import COLLAPSE_STEPS

pytestmark = pytest.mark.slow

BENCHMARKS = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")
DLIB = dict(
    backbone="dlib_resnet_v1",
    pretrained=True,
    image_size=150,
    embedding_dim=128,
    trainable_blocks=2,
)


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory):
    sys.path.insert(0, os.path.abspath(BENCHMARKS))
    from real_face_folder import write_real_face_folder

    root = tmp_path_factory.mktemp("real_faces")
    try:
        people = write_real_face_folder(str(root))
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert len(people) == 9 and all(len(p) == 8 for p in people.values())
    return str(root)


def test_finetuning_keeps_verification_on_held_out_real_faces(real_folder, tmp_path):
    config = TrainConfig(
        data=f"folder:{real_folder}",
        identities_per_batch=4,
        images_per_identity=4,
        steps=20,
        log_every=5,
        model_dir=str(tmp_path / "run"),
        **DLIB,
    ).validate()
    lines = []
    out = pipeline.train_and_evaluate(config, scatter=False, log=lines.append)
    before = out["results"]["pretrained net"]["accuracy_mean"]
    after = out["results"]["trained net"]["accuracy_mean"]
    assert after >= before - 0.01, "\n".join(lines)
    assert out["eval_pairs"] == 200
    assert out["threshold"] < 0.999  # the collapsed model's was 1.0000
    # Defect 2: the threshold is fitted on the user's own (held-out) faces, and says so.
    source = out["threshold_source"]
    assert source.startswith("--eval_data=split: split of folder:") and "4 held-out" in source
    from tfface import model_metadata

    exported = model_metadata.read_saved_model_metadata(out["export_path"])
    assert exported["template"]["name"] == "dlib"  # was "arcface"
    assert exported["threshold_source"] == source
    saved = model_metadata.read_keras_metadata(out["model_path"])
    assert saved["template"]["name"] == "dlib" and saved["threshold_source"] == source
    assert any(line.startswith(f"Threshold {out['threshold']:.4f} fitted on") for line in lines)


def test_the_recipe_at_learning_rate_1e3_is_stopped_as_a_collapse(tmp_path):
    """The issue's command with its old learning rate (1e-3, no warm-up) on synthetic faces:
    every face embeds to one point from step 2. The guard stops it after COLLAPSE_STEPS
    collapsed steps, without saving; before the guard it ran to the end and exported."""
    config = TrainConfig(
        identities_per_batch=8,
        steps=10,
        learning_rate=1e-3,
        warmup_steps=0,
        evaluate=False,
        export=False,
        log_every=1,
        model_dir=str(tmp_path / "run"),
        **DLIB,
    ).validate()
    lines = []
    with pytest.raises(EmbeddingCollapseError, match="Embeddings collapsed") as e:
        pipeline.train_and_evaluate(config, log=lines.append)
    assert e.value.step <= 1 + COLLAPSE_STEPS, "\n".join(lines)
    assert e.value.last_checkpoint is None
    assert not os.path.exists(os.path.join(config.model_dir, "embedding_model.keras"))
