"""The run directory (`--model_dir`): its layout, the files that record how a run was
made, and the rules for starting a run in a directory that already holds one.

- `write_run_files`: `config.json` (the resolved config, by section; a valid `--config`
  file) and, in a git checkout, `revision.txt` (hash, status and `git diff HEAD`).
- `check_resume`: a rerun resumes; one whose config differs from `config.json` in a field
  that shapes the trained weights is refused unless `--allow_config_change` names it
  (fields marked `resume_free` in the schema may change freely).
- `finished_run`: a run that reached its last step and exported is not redone.

TF-free at import (train.py checks a resume before TensorFlow loads); `finished_run`
imports TensorFlow to read the checkpoint state.
"""

import dataclasses
import json
import os
import subprocess

from tfface.training.schema import SPLIT_EVAL_DATA
from tfface.training.schema import TrainConfig
from tfface.training.schema import fields_by_name

# The layout of a run directory (README.md, "What a run writes").
CONFIG_FILE = "config.json"
REVISION_FILE = "revision.txt"
MODEL_FILE = "embedding_model.keras"  # the trained embedding model (python -m tfface.export)
CHECKPOINT_DIR = "checkpoints"
EVENTS_DIR = "train"  # TensorBoard
EVAL_DIR = "eval"
SUMMARY_FILE = "summary.json"  # in EVAL_DIR


def code_revision(path=None):
    """`git describe`-like revision text of the checkout holding `path`, or None."""
    root = path or os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True
        ).stdout

    try:
        head = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=no")
        diff = git("diff", "HEAD") if status else ""
    except (OSError, subprocess.SubprocessError):
        return None
    text = f"git hash: {head}\n"
    text += (
        "git status: clean\n" if not status else f"git status:\n{status}\ngit diff HEAD:\n{diff}"
    )
    return text


def changed_fields(old, new):
    """[(field, old, new)] of the fields in which two `TrainConfig`s differ."""
    return [
        (f.name, getattr(old, f.name), getattr(new, f.name))
        for f in dataclasses.fields(TrainConfig)
        if getattr(old, f.name) != getattr(new, f.name)
    ]


def check_resume(config, allow=()):
    """Compares `config` with `<model_dir>/config.json` of an earlier start, if any.

    Returns the accepted changes [(field, old, new)]. Raises ValueError naming every field
    that shapes the trained weights and differs, unless `allow` names it.
    """
    path = os.path.join(config.model_dir, CONFIG_FILE)
    fields = fields_by_name()
    unknown = [name for name in allow if name not in fields]
    if unknown:
        raise ValueError(
            f"--allow_config_change names unknown fields {unknown}; fields: {sorted(fields)}"
        )
    if not os.path.exists(path):
        return []
    with open(path) as f:
        old = TrainConfig.from_dict(json.load(f), source=path)
    changes = changed_fields(old, config)
    refused = [
        c
        for c in changes
        if (not fields[c[0]].metadata["resume_free"] or _changes_training_images(*c))
        and c[0] not in allow
    ]
    if refused:
        listed = "; ".join(f"{name}: {a!r} → {b!r}" for name, a, b in refused)
        raise ValueError(
            f"{config.model_dir} holds a run started with a different config ({listed}). "
            "Use another --model_dir, or allow a deliberate change with "
            f"--allow_config_change={','.join(c[0] for c in refused)}."
        )
    return changes


def _changes_training_images(name, old, new):
    """A change to or from `eval_data=split` moves identities in or out of training."""
    return name == "eval_data" and SPLIT_EVAL_DATA in (old, new)


def write_run_files(config):
    """Writes `<model_dir>/config.json` and, in a git checkout, `<model_dir>/revision.txt`."""
    os.makedirs(config.model_dir, exist_ok=True)
    tmp = os.path.join(config.model_dir, CONFIG_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config.to_dict(), f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(config.model_dir, CONFIG_FILE))
    revision = code_revision()
    if revision is not None:
        with open(os.path.join(config.model_dir, REVISION_FILE), "w") as f:
            f.write(revision)


def finished_run(config, total_steps):
    """The summary of a run in `config.model_dir` that already reached `total_steps` and
    exported (when asked to), else None: rerunning it would only export a second copy."""
    import tensorflow as tf

    path = os.path.join(config.model_dir, EVAL_DIR, SUMMARY_FILE)
    latest = tf.train.latest_checkpoint(os.path.join(config.model_dir, CHECKPOINT_DIR))
    if latest is None or not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    done = summary.get("train", {}).get("final_step") == total_steps
    at_end = latest.rsplit("-", 1)[-1] == str(total_steps)
    exported = not config.export or os.path.isdir(summary.get("export_path") or "")
    return summary if done and at_end and exported else None
