"""train.py: flag validation (in process) and end-to-end runs (subprocess, slow)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import train  # noqa: E402
from tests.module_imports import run_script  # noqa: E402
from tfface.training import heads  # noqa: E402
from tfface.training import preflight  # noqa: E402
from tfface.training import run_dir  # noqa: E402
from tfface.training import schema  # noqa: E402

TINY = [
    "--data=synthetic:40",
    "--image_size=32",
    "--embedding_dim=16",
    "--identities_per_batch=8",
    "--images_per_identity=2",
    "--log_every=2",
]


@pytest.fixture(autouse=True)
def parsed_flags():
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss": "arcface", "mining": "hard"}, "`mining` applies to loss='triplet' only"),
        ({"loss": "triplet", "scale": 30.0}, "--scale applies to margin heads only"),
        ({"loss": "sphereface", "scale": 30.0}, "--scale does not apply to --loss=sphereface"),
        ({"loss": "normface", "margin": 0.3}, "--margin does not apply to --loss=normface"),
        ({"loss": "arcface", "margins": ["1", "0.3", "0.2"]}, "--margins does not apply to"),
        ({"loss": "combined", "margins": ["1", "0.3"]}, "three values"),
        ({"steps": 10, "epochs": 2}, "`steps` or `epochs`, not both"),
        ({"identities_per_batch": 0}, "`identities_per_batch` must be a positive int"),
        ({"loss": "triplet", "identities_per_batch": 1}, "at least two identities per batch"),
        ({"export": True, "evaluate": False}, "`export` needs `evaluate`"),
        ({"accumulate_steps": 0}, "`accumulate_steps` must be a positive int"),
        ({"loss": "arcface", "accumulate_steps": 3}, "must be divisible by `accumulate_steps`"),
        ({"loss": "triplet", "accumulate_steps": 2}, "mining would see only one micro-batch"),
        ({"clip_norm": -1.0}, "`clip_norm` must be a finite number > 0"),
        ({"loss": "subcenter", "subcenters": 1.5}, "--subcenters must be an integer"),
        ({"loss": "arcface", "margin_std": 0.1}, "--margin_std does not apply to --loss=arcface"),
        ({"loss": "magface", "magface_margins": ["0.4"]}, "two values lower_margin"),
        ({"loss": "adaface", "lambda_g": 3.0}, "it applies to --loss=magface"),
    ],
)
def test_flag_errors_name_the_flag(overrides, message):
    with flagsaver.flagsaver(**overrides):
        with pytest.raises(ValueError, match=message):
            train.config_from_flags()


def test_per_loss_defaults_and_overrides():
    with flagsaver.flagsaver(loss="arcface"):
        config = train.config_from_flags()
        assert config.head_kwargs == heads.HEADS["arcface"].defaults
        assert config.model_dir == os.path.join("runs", "arcface")
        assert config.data == heads.HEAD_DATA
        assert config.mining is None
    with flagsaver.flagsaver(loss="combined", margins=["1", "0.3", "0.2"], scale=32.0):
        kwargs = train.config_from_flags().head_kwargs
        assert kwargs == {"scale": 32.0, "m1": 1.0, "m2": 0.3, "m3": 0.2}
    with flagsaver.flagsaver(loss="sphereface", margin=3.0):
        assert train.config_from_flags().head_kwargs == {"margin": 3}
    with flagsaver.flagsaver(loss="triplet"):
        config = train.config_from_flags()
        assert (config.mining, config.steps) == ("semihard", schema.DEFAULT_STEPS)
        assert config.model_dir == os.path.join("runs", "triplet-semihard")
        assert config.data == "synthetic"
    with flagsaver.flagsaver(loss="softmax", epochs=2):
        config = train.config_from_flags()
        assert (config.steps, config.epochs) == (0, 2)


@pytest.mark.parametrize(
    "loss",
    ["adaface", "magface", "curricularface", "subcenter", "elastic_arcface", "elastic_cosface"],
)
def test_new_heads_defaults_run_name_and_data(loss):
    with flagsaver.flagsaver(loss=loss):
        config = train.config_from_flags()
        assert config.head_kwargs == heads.HEADS[loss].defaults
        assert config.head_kwargs["scale"] == 16.0  # the table's s for small identity counts
        assert config.model_dir == os.path.join("runs", loss)
        assert config.data == heads.HEAD_DATA


def test_new_head_flags_reach_the_config():
    with flagsaver.flagsaver(loss="subcenter", subcenters=2.0, margin=0.4):
        kwargs = train.config_from_flags().head_kwargs
        assert kwargs["sub_centers"] == 2 and isinstance(kwargs["sub_centers"], int)
        assert kwargs["margin"] == 0.4
    with flagsaver.flagsaver(loss="elastic_cosface", margin_std=0.02):
        assert train.config_from_flags().head_kwargs["std"] == 0.02
    with flagsaver.flagsaver(loss="magface", magface_norms=["5", "60"], lambda_g=20.0):
        kwargs = train.config_from_flags().head_kwargs
        assert (kwargs["lower_norm"], kwargs["upper_norm"], kwargs["lambda_g"]) == (5, 60, 20)
    with flagsaver.flagsaver(loss="adaface", adaface_h=0.5):
        assert train.config_from_flags().head_kwargs["h"] == 0.5


def test_config_file_then_flag_overrides(tmp_path):
    """defaults → --config → flags: the file sets fields, a flag given wins over it."""
    path = tmp_path / "run.json"
    path.write_text(
        json.dumps(
            {
                "objective": {"loss": "cosface", "head_kwargs": {"margin": 0.25}},
                "run": {"steps": 40, "seed": 3},
            }
        )
    )
    with flagsaver.flagsaver(config=str(path), seed=5):
        config = train.config_from_flags()
    assert (config.loss, config.steps, config.seed) == ("cosface", 40, 5)
    assert config.head_kwargs == {"scale": 16.0, "margin": 0.25}
    assert config.data == heads.HEAD_DATA  # the per-loss policy of the file's loss
    # A run's own config.json is a config file: it resolves to the same config.
    path.write_text(json.dumps(config.to_dict()))
    with flagsaver.flagsaver(config=str(path)):
        assert train.config_from_flags() == config


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"optimiser": {}}', "unknown section 'optimiser'"),
        ('{"run": {"stepz": 3}}', "unknown field run.stepz"),
        ('{"data": {"steps": 3}}', "unknown field data.steps"),
    ],
)
def test_config_file_errors_name_file_and_key(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with flagsaver.flagsaver(config=str(path)):
        with pytest.raises(ValueError, match=f"--config={path}.*{message}"):
            train.config_from_flags()


def _main(capsys, **overrides):
    """train.main in process: (exit code, stderr)."""
    with flagsaver.flagsaver(**overrides):
        code = train.main(["train.py"])
    return code, capsys.readouterr().err


def _identity_folder(root, identities):
    for i in range(identities):
        (root / f"id{i}").mkdir(parents=True)
        (root / f"id{i}" / "0.jpg").write_bytes(b"not decoded by the cheap check")
    return root


def _lfw_pairs(tmp_path, ext="jpg", make_images=True):
    """pairs.txt with 2 sets of 1 matched + 1 mismatched pair, and (optionally) the images."""
    from tfface.eval import lfw

    names = ["ann", "bob", "cid", "dan"]
    pairs = [
        lfw.LFWPair("ann", 1, "ann", 2),
        lfw.LFWPair("ann", 1, "bob", 1),
        lfw.LFWPair("cid", 1, "cid", 2),
        lfw.LFWPair("cid", 1, "dan", 1),
    ]
    lfw.write_pairs(tmp_path / "pairs.txt", pairs, num_sets=2)
    images = tmp_path / "images"
    images.mkdir()
    if make_images:
        for name in names:
            (images / name).mkdir()
            for k in (1, 2):
                (images / name / f"{name}_{k:04d}.{ext}").write_bytes(b"x")
    return tmp_path / "pairs.txt", images


@pytest.mark.parametrize(
    "case",
    [
        "few_identities",
        "lfw_without_images_dir",
        "lfw_images_missing",
        "folder_missing",
        "data_typo",
        "backbone_unknown",
        "negative_margin",
        "magface_margins_reversed",
        "zero_subcenters",
        "bin_missing",
        "triplet_single_identity",
    ],
)
def test_bad_inputs_exit_2_before_any_work(tmp_path, capsys, case):
    """Each bad flag or data spec exits 2 naming the flag and value, before the run
    directory, a model or a baseline exists (defect 3)."""
    model_dir = tmp_path / "run"
    overrides = {"model_dir": str(model_dir), "loss": "softmax"}
    if case == "few_identities":
        folder = _identity_folder(tmp_path / "faces", 3)
        overrides.update(data=f"folder:{folder}")
        expect = [f"--data=folder:{folder}", "3 identities", "--identities_per_batch=32"]
    elif case == "lfw_without_images_dir":
        pairs_txt, _ = _lfw_pairs(tmp_path)
        overrides.update(eval_data=f"lfw:{pairs_txt}")
        expect = [f"--eval_data=lfw:{pairs_txt}", "lfw:PAIRS_TXT,IMAGES_DIR"]
    elif case == "lfw_images_missing":
        pairs_txt, images = _lfw_pairs(tmp_path, make_images=False)
        overrides.update(eval_data=f"lfw:{pairs_txt},{images}")
        expect = [f"--eval_data=lfw:{pairs_txt},{images}", "6 images", "ann_0001.jpg"]
    elif case == "folder_missing":
        overrides.update(data="folder:/does/not/exist")
        expect = ["--data=folder:/does/not/exist", "is not a directory"]
    elif case == "data_typo":
        overrides.update(data="synthtic")
        expect = ["--data=synthtic", "Unknown data spec"]
    elif case == "backbone_unknown":
        overrides.update(backbone="resnet50")
        expect = ["--backbone=resnet50", "small_cnn"]
    elif case == "negative_margin":
        overrides.update(loss="arcface", margin=-1.0)
        expect = ["--loss=arcface", "margin=-1.0"]
    elif case == "magface_margins_reversed":
        overrides.update(loss="magface", magface_margins=["0.8", "0.4"])
        expect = ["--loss=magface", "upper_margin"]
    elif case == "zero_subcenters":
        overrides.update(loss="subcenter", subcenters=0.0)
        expect = ["--loss=subcenter", "sub_centers"]
    elif case == "bin_missing":
        overrides.update(eval_data="bin:/nope.bin")
        expect = ["--eval_data=bin:/nope.bin", "'/nope.bin' is not a file"]
    else:
        folder = _identity_folder(tmp_path / "faces", 1)
        overrides.update(loss="triplet", data=f"folder:{folder}", identities_per_batch=2)
        expect = [f"--data=folder:{folder}", "1 identities"]
    code, err = _main(capsys, **overrides)
    assert code == 2, err
    for text in expect:
        assert text in err
    assert not model_dir.exists(), "the run started before the inputs were checked"


def test_lfw_eval_data_takes_the_image_extension(tmp_path):
    pairs_txt, images = _lfw_pairs(tmp_path, ext="png")
    with flagsaver.flagsaver(loss="softmax", eval_data=f"lfw:{pairs_txt},{images},png"):
        preflight.check_inputs(train.config_from_flags())
    with flagsaver.flagsaver(loss="softmax", eval_data=f"lfw:{pairs_txt},{images}"):
        with pytest.raises(ValueError, match="ann_0001.jpg"):
            preflight.check_inputs(train.config_from_flags())


def test_resume_refuses_a_different_config_unless_allowed(tmp_path, capsys):
    with flagsaver.flagsaver(loss="arcface", steps=20, model_dir=str(tmp_path)):
        first = train.config_from_flags()
    run_dir.write_run_files(first)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["objective"]["head_kwargs"] == {"scale": 16.0, "margin": 0.3}
    if (tmp_path / "revision.txt").exists():  # in a git checkout
        assert (tmp_path / "revision.txt").read_text().startswith("git hash: ")

    changed = dict(first.__dict__, steps=40, learning_rate=0.01, log_every=5)
    with pytest.raises(ValueError, match=r"learning_rate: 0\.001 → 0\.01; steps: 20 → 40") as e:
        run_dir.check_resume(schema.TrainConfig(**changed))
    assert "--allow_config_change=learning_rate,steps" in str(e.value)
    accepted = run_dir.check_resume(schema.TrainConfig(**changed), allow=["steps", "learning_rate"])
    assert {name for name, _, _ in accepted} == {"steps", "learning_rate", "log_every"}
    with pytest.raises(ValueError, match="unknown fields"):
        run_dir.check_resume(first, allow=["stepz"])
    # Through the command line: exit 2 naming the field, before any work.
    code, err = _main(capsys, loss="arcface", steps=40, model_dir=str(tmp_path))
    assert code == 2 and "steps: 20 → 40" in err


def _run(args, env=None, **kwargs):
    env = dict(env or dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def test_bad_flag_exits_with_message_and_no_tensorflow_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = _run(["--loss=cosface", "--mining=hard", f"--model_dir={tmp_path}"], env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "train.py: error: `mining` applies to loss='triplet' only. "
        "Received: loss='cosface', mining='hard'"
    )


TRAIN_PY = os.path.join(REPO, "train.py")
# Packages (and their submodules) that must not load before the checks.
NOT_BEFORE_CHECKS = ("tensorflow", "keras", "tfface.models", "tfface.layers", "tfface.losses")


def _loaded(imported, packages):
    return sorted(m for m in imported if any(m == p or m.startswith(p + ".") for p in packages))


def _bad_case_files(tmp_path):
    """Files the bad commands below name: a config naming an unknown section, identity
    folders with 3 and 5 people (one image each), an earlier run's config.json with other steps."""
    (tmp_path / "typo.json").write_text('{"optimiser": {"learning_rate": 0.1}}')
    _identity_folder(tmp_path / "faces", 3)
    _identity_folder(tmp_path / "few", 5)
    resumed = tmp_path / "resumed"
    with flagsaver.flagsaver(loss="arcface", steps=20, model_dir=str(resumed)):
        run_dir.write_run_files(train.config_from_flags())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--loss=bogus"], "flag --loss=bogus: value should be one of <softmax|"),
        (["--loss=arcfce"], "flag --loss=arcfce: value should be one of"),
        (["--stepz=3"], "Unknown command line flag 'stepz'"),
        (["--steps=ten"], "flag --steps=ten"),
        (["--loss=cosface", "--mining=hard"], "`mining` applies to loss='triplet' only"),
        (["--loss=sphereface", "--scale=30"], "--scale does not apply to --loss=sphereface"),
        (["--loss=combined", "--margins=1,0.3"], "--margins needs three values m1,m2,m3"),
        (["--loss=sphereface", "--margin=2.5"], "--margin must be an integer"),
        (["--loss=subcenter", "--subcenters=2.5"], "--subcenters must be an integer"),
        (["--loss=cosface", "--margin_std=0.1"], "--margin_std does not apply to --loss=cosface"),
        (["--loss=magface", "--magface_norms=10"], "--magface_norms needs two values"),
        (["--loss=magface", "--margin=0.5"], "use --magface_margins=l_m,u_m"),
        (["--loss=adaface", "--adaface_h=x"], "flag --adaface_h=x"),
        (["--steps=10", "--epochs=2"], "`steps` or `epochs`, not both"),
        (["--loss=triplet", "--images_per_identity=1"], "at least two images per identity"),
        (["--config={tmp}/missing.json"], "--config={tmp}/missing.json: cannot read it"),
        (["--config={tmp}/typo.json"], "unknown section 'optimiser'"),
        (["--data=synthtic"], "--data=synthtic: Unknown data spec"),
        (["--data=folder:{tmp}/nowhere"], "--data=folder:{tmp}/nowhere: Data spec"),
        (["--data=folder:{tmp}/faces"], "holds 3 identities, fewer than"),
        (["--data=synthetic:3"], "--data=synthetic:3 holds 3 identities"),
        (
            ["--data=folder:{tmp}/few", "--identities_per_batch=4"],
            "holds 5 identities (0 with >= 2 images, 5 images): too few for the default evaluation",
        ),
        (["--eval_data=bin:{tmp}/lfw.bin"], "--eval_data=bin:{tmp}/lfw.bin: "),
        (["--eval_data=lfw:{tmp}/pairs.txt"], "--eval_data=lfw:{tmp}/pairs.txt: "),
        (["--trainable_blocks=2"], "--trainable_blocks applies to --pretrained runs only"),
        (["--accumulate_steps=0"], "`accumulate_steps` must be a positive int"),
        (["--loss=triplet", "--accumulate_steps=4"], "mining would see only one micro-batch"),
        (["--clip_norm=0"], "`clip_norm` must be a finite number > 0"),
        (["--loss=arcface", "--partial_fc=0.1", "--jit"], "not with `partial_fc` yet"),
        (["--loss=triplet", "--partial_fc=0.1"], "`partial_fc` applies to margin heads only"),
        (["--loss=arcface", "--partial_fc=1.5"], "`partial_fc` must be a sampling rate in (0, 1]"),
        (["--loss=arcface", "--partial_fc=-0.1"], "Received: partial_fc=-0.1"),
        (["--loss=arcface", "--steps=40", "--model_dir={tmp}/resumed"], "steps: 20 → 40"),
        (["--allow_config_change=stepz", "--model_dir={tmp}/resumed"], "unknown fields"),
        (["arcface"], "unexpected arguments ['arcface']"),
    ],
)
def test_bad_command_lines_exit_2_before_tensorflow_is_imported(tmp_path, argv, message):
    """Every flag, config-file and data-spec error of train.py exits 2 naming the flag,
    from a fresh process that never imported TensorFlow, Keras or a model module (issue
    15: they took ~12 s, after the TF import; absl's own flag errors exited 1)."""
    _bad_case_files(tmp_path)
    argv = [a.format(tmp=tmp_path) for a in argv]
    if not any(a.startswith("--model_dir") for a in argv):
        argv.append(f"--model_dir={tmp_path / 'run'}")
    code, out, errors, imported = run_script(TRAIN_PY, *argv, cwd=tmp_path)
    assert code == 2, errors
    assert errors.startswith("train.py: error: "), errors
    assert message.format(tmp=tmp_path) in errors
    assert "tfface.training.schema" in imported
    assert not _loaded(imported, NOT_BEFORE_CHECKS), _loaded(imported, NOT_BEFORE_CHECKS)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss, flag, logged",
    [("magface", "--lambda_g=20", "head_loss="), ("subcenter", "--subcenters=2", "accuracy=")],
)
def test_new_heads_train_from_the_command_line(tmp_path, loss, flag, logged):
    """train.py trains a new head with its head flag: the flag is in config.json and the
    head's stats (MagFace: its regulariser, head_loss) are logged."""
    model_dir = tmp_path / loss
    args = [*TINY, f"--loss={loss}", flag, "--steps=2", "--noevaluate", "--noexport"]
    code, out, errors, _ = run_script(TRAIN_PY, *args, f"--model_dir={model_dir}", cwd=tmp_path)
    assert code == 0, errors[-3000:]
    assert "step 2/2 loss=" in out and logged in out
    config = json.loads((model_dir / "config.json").read_text())
    head_kwargs = config["objective"]["head_kwargs"]
    name, value = flag.removeprefix("--").split("=")
    argument = heads.HEAD_FLAGS[name].arguments[0]
    assert head_kwargs[argument] == float(value)


def test_good_command_imports_tensorflow_and_trains(tmp_path):
    """The same fresh train.py given a good command loads TensorFlow and trains (so the
    test above would have seen TensorFlow had it been imported); a backbone error, whose
    rule is the Keras backbone registry, exits 2 once Keras is loaded, before any work."""
    model_dir = tmp_path / "run"
    args = [*TINY, "--loss=arcface", "--steps=1", "--noevaluate", "--noexport"]
    code, out, errors, imported = run_script(
        TRAIN_PY, *args, "--backbone=resnet50", f"--model_dir={model_dir}", cwd=tmp_path
    )
    assert code == 2, errors
    assert "train.py: error: --backbone must be one of" in errors
    assert _loaded(imported, ["tensorflow"]) and _loaded(imported, ["keras"])
    assert not model_dir.exists()
    code, out, errors, imported = run_script(
        TRAIN_PY, *args, f"--model_dir={model_dir}", cwd=tmp_path
    )
    assert code == 0, errors[-3000:]
    for package in (
        "tensorflow",
        "keras",
        "tfface.models",
        "tfface.layers",
        "tfface.training.trainer",
    ):
        assert _loaded(imported, [package]), package
    assert "step 1/1 loss=" in out
    assert (model_dir / "config.json").is_file() and (model_dir / "embedding_model.keras").is_file()
    for noise in ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda"):
        assert noise not in errors


@pytest.mark.parametrize("module", ["tfface.eval", "tfface.data"])
def test_module_entry_points_print_no_tensorflow_noise(module):
    """`python -m tfface.X` imports TF (tfface/__init__.py) without its start-up lines."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        env=dict(env, PYTHONPATH=REPO),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for noise in ("absl::InitializeLog", "oneDNN", "cuda", "cpu_feature_guard"):
        assert noise not in result.stderr


@pytest.mark.slow
def test_end_to_end_tiny_run_evaluates_and_exports(tmp_path):
    model_dir = tmp_path / "run"
    result = _run([*TINY, "--loss=triplet", "--steps=6", f"--model_dir={model_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for row in ("raw pixels", "untrained net", "trained net", "Exported SavedModel"):
        assert row in out
    assert "6000 pairs, 10 folds" in out
    summary = json.loads((model_dir / "eval" / "summary.json").read_text())
    assert set(summary["results"]) == {"raw pixels", "untrained net", "trained net"}
    # Open-set 1:N next to verification, with the raw-pixel baseline.
    assert "1:N raw pixels: rank-1" in out and "1:N trained net: rank-1" in out
    assert set(summary["identification"]) == {"raw pixels", "trained net"}
    assert 0.0 <= summary["identification"]["trained net"]["tpir"]["0.01"] <= 1.0
    assert summary["train"]["final_step"] == 6
    for name in ("heldout.json", "heldout_roc.png", "heldout_scatter.png"):
        assert (model_dir / "eval" / name).exists()
    export = summary["export_path"]
    assert os.path.exists(os.path.join(export, "saved_model.pb"))
    assert -1.0 <= summary["threshold"] <= 1.0
    assert os.listdir(model_dir / "train"), "no TensorBoard events"
    # The run records how it was made and keeps the trained embedding model.
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["run"]["steps"] == 6 and saved["objective"]["mining"] == "semihard"
    assert (model_dir / "embedding_model.keras").is_file()
    beats = summary["beats_raw_pixels"]
    assert beats == (
        summary["results"]["trained net"]["accuracy_mean"]
        > summary["results"]["raw pixels"]["accuracy_mean"]
    )
    assert ("WARNING: the trained net does not beat the raw-pixel baseline" in out) != beats
    # A rerun of the finished run does nothing and exports no second version.
    versions = sorted(os.listdir(os.path.dirname(export)))
    again = _run([*TINY, "--loss=triplet", "--steps=6", f"--model_dir={model_dir}"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished at step 6" in again.stdout
    assert "Exported SavedModel" not in again.stdout
    assert sorted(os.listdir(os.path.dirname(export))) == versions


def _checkpoint_values(model_dir):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints"))
    values = {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith(("data/", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH")):
            continue
        values[name] = reader.get_tensor(name)
    return values


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_matches_uninterrupted(tmp_path):
    args = [
        *TINY,
        "--loss=triplet",
        "--steps=30",
        "--checkpoint_every=4",
        "--evaluate=false",
        "--export=false",
        "--deterministic",
    ]
    model_dir = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train.py"), *args, f"--model_dir={model_dir}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt_dir = model_dir / "checkpoints"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt_dir.exists() and any(f.endswith(".index") for f in os.listdir(ckpt_dir)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    resumed = _run([*args, f"--model_dir={model_dir}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    line = next(x for x in resumed.stdout.splitlines() if x.startswith("Resumed from"))
    start = int(line.split(" at step ")[1].split("/")[0])
    assert 0 < start < 30
    assert "step 30/30" in resumed.stdout

    straight = _run([*args, f"--model_dir={tmp_path / 'straight'}"])
    assert straight.returncode == 0, straight.stderr[-3000:]
    a, b = _checkpoint_values(model_dir), _checkpoint_values(tmp_path / "straight")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "path", sorted(p for p in os.listdir(os.path.join(REPO, "experiments")) if p.endswith(".cfg"))
)
def test_experiment_configs_parse_and_validate(path):
    full = os.path.join(REPO, "experiments", path)
    with open(full) as f:
        assert f.readline().startswith("# Command: python train.py --flagfile=experiments/")
    with flagsaver.flagsaver():
        flags.FLAGS(["train.py", f"--flagfile={full}"])
        config = train.config_from_flags()
    assert config.loss in path
