"""Ctrl-C during `tfface enroll` stops in one line, keeps what was enrolled, and a rerun
skips the photos the gallery holds without embedding them again (issue 17, defect 6)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from tests.module_imports import REPO
from tfface.cli import photos
from tfface.cli.main import main
from tfface.gallery import Gallery

# demo/people: Eileen Collins (4 photos), Grace Hopper (4 photos and a broken JPEG).
PHOTOS = 9
FACES = 8


@pytest.fixture
def embedded(monkeypatch):
    """Records every photo `enroll` embeds; `interrupt_at` makes the n-th one a Ctrl-C."""
    calls = {"paths": [], "interrupt_at": None}
    real = photos.embed_items

    def embed_items(recognizer, args, paths, desc):
        calls["paths"] += list(paths)
        if calls["interrupt_at"] == len(calls["paths"]):
            raise KeyboardInterrupt
        return real(recognizer, args, paths, desc)

    monkeypatch.setattr(photos, "embed_items", embed_items)
    return calls


def _enroll(capsys, demo, gallery, *extra):
    code = main(["enroll", "--model", demo["model"], "--gallery", gallery, "--no_progress", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_interrupted_enrolment_keeps_its_photos_and_a_rerun_skips_them(
    demo, tmp_path, capsys, embedded
):
    gallery = str(tmp_path / "g.gallery")
    embedded["interrupt_at"] = 3  # Ctrl-C while the third photo is being embedded
    code, out, err = _enroll(capsys, demo, gallery, demo["people"])
    assert code == 130
    assert err.strip() == (
        "tfface enroll: interrupted: 2 photos enrolled, 7 left; rerun to continue"
    )
    assert "Traceback" not in err and out == ""
    first = list(embedded["paths"][:2])
    with Gallery.open(gallery, create=False) as g:
        assert sorted(source for _, source, _, _ in g.rows()) == sorted(
            os.path.abspath(p) for p in first
        )

    embedded.update(paths=[], interrupt_at=None)
    code, out, err = _enroll(capsys, demo, gallery, demo["people"], "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["already_enrolled"] == 2
    assert {p["name"]: p["already_enrolled"] for p in report["people"]} == {
        "Eileen Collins": 2,
        "Grace Hopper": 0,
    }
    # No photo is embedded twice: the rerun embeds exactly the ones the first run did not
    # commit (the interrupted one included).
    assert len(embedded["paths"]) == PHOTOS - 2
    assert not set(embedded["paths"]) & set(first)
    assert sum(p["new"] for p in report["people"]) == FACES - 2
    with Gallery.open(gallery, create=False) as g:
        assert len(g) == FACES

    # A third run embeds only the photo without a face; the table says what it skipped.
    embedded["paths"] = []
    code, out, _ = _enroll(capsys, demo, gallery, demo["people"])
    assert code == 0
    assert [os.path.basename(p) for p in embedded["paths"]] == ["broken.jpg"]
    assert f"{FACES} already enrolled, skipped." in out


def test_the_same_photo_at_another_path_is_skipped_by_content(demo, tmp_path, capsys, embedded):
    gallery = str(tmp_path / "g.gallery")
    photo = os.path.join(demo["people"], "Grace Hopper", "photo.png")
    assert _enroll(capsys, demo, gallery, "--name", "GH", photo)[0] == 0
    copy = tmp_path / "copy of photo.png"
    shutil.copy(photo, copy)
    embedded["paths"] = []
    code, out, _ = _enroll(capsys, demo, gallery, "--name", "GH", str(copy), "--json")
    assert code == 0 and embedded["paths"] == []
    assert json.loads(out)["people"][0]["already_enrolled"] == 1
    # Another name is another identity: the photo is enrolled for it.
    code, out, _ = _enroll(capsys, demo, gallery, "--name", "Grace", str(copy), "--json")
    assert code == 0 and json.loads(out)["people"][0]["new"] == 1


def _progress_reached_one(stream, seen, lines):
    """Reads tqdm's stderr (carriage returns, no newlines) until a bar counts >= 1 photo."""
    buffer = ""
    while chunk := stream.read(1):
        buffer += chunk
        if re.search(r"\| *[1-9]\d*/\d+ \[", buffer):
            seen.set()
    lines.append(buffer)
    seen.set()  # EOF: the process ended


@pytest.mark.slow
def test_a_real_sigint_mid_enrolment(demo, tmp_path, capsys):
    """SIGINT to `python -m tfface enroll` after its progress bar shows a committed photo."""
    gallery = str(tmp_path / "g.gallery")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfface", "enroll", "--model", demo["model"]]
        + ["--gallery", gallery, demo["people"]],
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen, err = threading.Event(), []
    reader = threading.Thread(target=_progress_reached_one, args=(proc.stderr, seen, err))
    reader.start()
    assert seen.wait(timeout=300)
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    code = proc.wait(timeout=60)
    reader.join(timeout=60)
    errors = err[0]
    assert code == 130, errors
    assert "Traceback" not in errors and out == ""
    match = re.search(r"interrupted: (\d+) photos enrolled, (\d+) left; rerun to continue", errors)
    assert match, errors
    kept, left = int(match[1]), int(match[2])
    assert kept >= 1 and kept + left <= PHOTOS
    with Gallery.open(gallery, create=False) as g:
        assert len(g) == kept

    code, out, _ = _enroll(capsys, demo, gallery, demo["people"], "--json")
    report = json.loads(out)
    assert code == 0 and report["already_enrolled"] == kept
    assert sum(p["new"] for p in report["people"]) == FACES - kept
