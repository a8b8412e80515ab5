"""insightface converter: model-zoo style ONNX files and arcface_torch state dicts.

Parity (marked `parity`, run by `make parity`): no PyPI package ships arcface_torch's
networks, so tools/torch_ref_worker.py transcribes `IResNet` and `MobileFaceNet` from
deepinsight/insightface recognition/arcface_torch/backbones/, draws random weights, saves the
state dict as arcface_torch does (`torch.save(model.state_dict())`) and exports it with
torch 2.13's TorchScript exporter (as the zoo files were made: input "input.1", Conv+BN
fused) and with its default dynamo exporter (different node and initializer names, the
embedding BN fused into the Gemm). The references are the torch module itself,
onnxruntime on the exported file, and insightface 2.1's own `ArcFaceONNX(...).forward`,
which applies its input mean/std (127.5/127.5 for PyTorch-exported graphs) outside the
graph. `mbf` is arcface_torch's MobileFaceNet at scale 1 (= tfface's mobilefacenet),
`mbf_s2` at scale 2 (the zoo's w600k_mbf network). Unchecked: the real zoo files themselves
(their exact opset and node order may differ; the converter reads structure, not names),
MXNet-converted graphs (refused), and mbf_large (scale 4: built by the same code as scale 2,
not run here).
"""

import json

import numpy as np
import pytest

from tests.models.convert_reference import check_close
from tests.models.convert_reference import run_worker
from tests.models.convert_reference import sample_pixels
from tests.models.convert_reference import unit
from tfface.models.converters.insightface import convert_insightface

ARCHS = ("iresnet50", "iresnet100", "mbf", "mbf_s2")
TFFACE_NAMES = {
    "iresnet50": "iresnet50",
    "iresnet100": "iresnet100",
    "mbf": "mobilefacenet",
    "mbf_s2": "arcface_mobilefacenet_s2",
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    # iresnet100 (the glintr100 network) is checked on the .pth and the zoo-style .onnx only,
    # to keep `make parity` within its time.
    return run_worker(tmp_path_factory, "insightface_ref", list(ARCHS), no_dynamo=["iresnet100"])


@pytest.mark.parity
@pytest.mark.parametrize("arch", ARCHS)
def test_reference_runners_agree(reference, arch):
    """onnxruntime and insightface's ArcFaceONNX run the exported files like torch does."""
    manifest = json.loads((reference / "manifest.json").read_text())[arch]
    assert manifest["onnx_input_name"] == "input.1"
    assert (manifest["insightface_input_mean"], manifest["insightface_input_std"]) == (127.5, 127.5)
    torch_emb = unit(np.load(reference / f"{arch}_torch.npy"))
    runners = ["ort", "insightface"] + (["dynamo_ort"] if arch != "iresnet100" else [])
    for runner in runners:
        other = unit(np.load(reference / f"{arch}_{runner}.npy"))
        diff = np.abs(other - torch_emb).max()
        print(f"{arch}: {runner} vs torch module: max|Δembedding| = {diff:.2e}")
        assert diff <= 1e-4, runner


@pytest.mark.parity
@pytest.mark.parametrize("source", ["pth", "onnx", "dynamo.onnx"])
@pytest.mark.parametrize("arch", ARCHS)
def test_insightface_parity(reference, arch, source):
    if arch == "iresnet100" and source == "dynamo.onnx":
        pytest.skip("iresnet100 is checked on the .pth and the zoo-style .onnx (parity time)")
    filename = f"{arch}.{source}" if source != "dynamo.onnx" else f"{arch}_dynamo.onnx"
    model = convert_insightface(reference / filename)
    assert model.layers[2].name == TFFACE_NAMES[arch]
    ours = model(sample_pixels(112), training=False).numpy()
    # The zoo's runner is the reference for ONNX files; the torch module for state dicts.
    runner = "insightface" if source == "onnx" else "torch"
    check_close(ours, unit(np.load(reference / f"{arch}_{runner}.npy")), f"{filename} vs {runner}")


def test_rejects_unknown_files(tmp_path):
    with pytest.raises(ValueError, match="existing .onnx or .pth"):
        convert_insightface(tmp_path / "missing.onnx")
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\0")
    with pytest.raises(ValueError, match="must end in"):
        convert_insightface(bad)
    broken = tmp_path / "w600k_r50.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match="w600k_r50.onnx"):
        convert_insightface(broken)


def test_rejects_graph_that_normalises_its_input(tmp_path):
    """MXNet-converted zoo models subtract/scale inside the graph: refused with a reason."""
    import onnx
    from onnx import TensorProto
    from onnx import helper

    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["data", "mean"], ["x"], name="_minusscalar0"),
            helper.make_node("Mul", ["x", "scale"], ["y"], name="_mulscalar0"),
        ],
        "mxnet",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 112, 112])],
        [
            helper.make_tensor("mean", TensorProto.FLOAT, [], [127.5]),
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.0078125]),
        ],
    )
    path = tmp_path / "arcface_r100_v1.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ValueError, match="normalises its input"):
        convert_insightface(path)


@pytest.mark.parity
def test_cli_convert_writes_a_loadable_model(reference, tmp_path):
    import keras

    import tfface  # noqa: F401  (registers tfface layers for loading)
    from tfface import model_metadata
    from tfface.models.__main__ import main

    dst = tmp_path / "mbf.keras"
    assert main(["convert", str(reference / "mbf.onnx"), str(dst), "--from", "insightface"]) == 0
    loaded = keras.saving.load_model(dst)
    ours = loaded(sample_pixels(112), training=False).numpy()
    check_close(ours, unit(np.load(reference / "mbf_insightface.npy")), "CLI mbf.keras")
    metadata = model_metadata.read_keras_metadata(dst)
    assert metadata["name"] == "insightface_mobilefacenet"
    assert metadata["image_size"] == 112 and metadata["threshold"] is None


@pytest.mark.parametrize("fmt", ["facenet", "insightface"])
def test_cli_reports_unreadable_files(tmp_path, capsys, fmt):
    from tfface.models.__main__ import main

    src = tmp_path / ("model.pt" if fmt == "facenet" else "model.onnx")
    src.write_bytes(b"\x80\x02junk")
    assert main(["convert", str(src), str(tmp_path / "o.keras"), "--from", fmt]) == 1
    assert "cannot convert" in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()
