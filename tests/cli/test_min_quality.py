"""`tfface enroll --min_quality`: faces under the quality bar (the embedding_norm of an
AdaFace/MagFace model) are skipped, counted and reported; the rest are enrolled."""

import json

import numpy as np
import pytest

from tfface.cli.main import main


@pytest.fixture(scope="module")
def quality_model(tmp_path_factory):
    from tests.recognition.conftest import make_model
    from tfface.export import export_saved_model

    model = make_model(seed=5)
    base = tmp_path_factory.mktemp("quality_models")
    export_saved_model(
        model, str(base), name="q", threshold=0.5, quality_scores=("embedding_norm",)
    )
    return str(base / "q")


def _enroll(capsys, demo, model, gallery, *extra):
    code = main(
        ["enroll", "--model", model, "--gallery", gallery, str(demo["people"]), "--json"]
        + ["--no_progress", *extra]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.mark.slow
def test_min_quality_skips_counts_and_reports(demo, quality_model, capsys, tmp_path):
    code, everyone, _ = _enroll(capsys, demo, quality_model, str(tmp_path / "all.gallery"))
    assert code == 0 and everyone["below_min_quality"] == 0
    enrolled = sum(p["enrolled"] for p in everyone["people"])

    # The per-face scores, as the model reports them; a bar between two of them.
    from tfface.cli.image_files import identity_tree
    from tfface.recognition import Recognizer

    recognizer = Recognizer(quality_model)
    norms = []
    for _, paths in identity_tree(str(demo["people"])):
        for path in paths:
            try:
                faces = recognizer.faces(path)
            except (OSError, ValueError):
                continue  # the unreadable photo the demo holds on purpose
            if faces:
                norms.append(max(faces, key=lambda f: f.area).quality["embedding_norm"])
    assert len(norms) == enrolled
    bar = float(np.median(norms))
    below = sum(n < round(bar, 3) for n in norms)
    assert 0 < below < len(norms)

    code, report, _ = _enroll(
        capsys, demo, quality_model, str(tmp_path / "bar.gallery"), "--min_quality", str(bar)
    )
    assert code == 0
    assert report["below_min_quality"] == below
    assert sum(p["enrolled"] for p in report["people"]) == enrolled - below
    reasons = [s["reason"] for s in report["skipped"] if "--min_quality" in s["reason"]]
    assert len(reasons) == below and all("embedding_norm" in r for r in reasons)

    main(
        ["enroll", "--model", quality_model, "--gallery", str(tmp_path / "text.gallery")]
        + [str(demo["people"]), "--no_progress", "--min_quality", str(bar)]
    )
    out, _ = capsys.readouterr()
    assert f"{below} face(s) below --min_quality {bar} (embedding_norm) skipped." in out

    code, report, err = _enroll(
        capsys, demo, quality_model, str(tmp_path / "none.gallery"), "--min_quality", "1e9"
    )
    assert code == 1 and "nothing enrolled" in err
