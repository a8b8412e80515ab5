"""Reference embeddings for tfface's FaceNet / insightface converters, run in .venv-torch-ref.

Never imported by tfface: tests start it with the .venv-torch-ref interpreter (torch 2.13.0
CPU, onnx, onnxruntime, insightface 2.1, facenet-pytorch 2.6.0 installed --no-deps).

  run --out DIR --seed S --cases facenet,iresnet50,... --pixels112 A.npy --pixels160 B.npy

For every case it builds the reference network with random weights (every parameter drawn
at random, BN statistics then measured on the test images and their mirrors, so no layer can
be silently skipped and the embeddings still depend on the input), writes the files a user
would convert, and the reference embeddings of the same pixels (float32 NHWC RGB, 0–255):

  facenet:     facenet-pytorch's own `InceptionResnetV1` (its models/inception_resnet_v1.py,
               loaded by file path because the package __init__ imports torchvision), eval
               mode, on facenet-pytorch's `fixed_image_standardization` (x − 127.5) / 128.
               Writes facenet.pt (zip format), facenet_legacy.pt (pre-1.6 format) and
               facenet_ref.npy (its L2-normalised output); then, with every BN scale set
               to 1 (facenet's TF1 BNs have none), facenet_tf1_state.npz (its tensors, from
               which the test writes a TF1 checkpoint) and facenet_tf1_ref.npy.
  iresnet50, iresnet100, mbf, mbf_s2:
               arcface_torch's IResNet / MobileFaceNet, transcribed below from
               deepinsight/insightface recognition/arcface_torch/backbones/{iresnet,
               mobilefacenet}.py (no PyPI package ships them). Writes ARCH.pth
               (`torch.save(model.state_dict())`, as arcface_torch saves model.pt),
               ARCH.onnx (`torch.onnx.export(..., dynamo=False)`: the TorchScript exporter,
               as the model-zoo files were made, input "input.1" 1×3×112×112, Conv+BN fused
               by constant folding) and ARCH_dynamo.onnx (the torch 2.13 default exporter,
               BN kept). Embeddings: ARCH_torch.npy (the torch module on (x − 127.5) /
               127.5), ARCH_ort.npy (onnxruntime on ARCH.onnx), ARCH_insightface.npy
               (insightface's own `ArcFaceONNX(ARCH.onnx).forward`, which applies its
               input_mean / input_std itself), ARCH_dynamo_ort.npy (skipped for the archs
               in --no_dynamo). Raw (unnormalised) features.

A manifest.json lists the files and the input mean/std ArcFaceONNX chose.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import sys
import types

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(2)


# === facenet-pytorch, loaded from its own file ===


def load_facenet_pytorch_module():
    """facenet_pytorch.models.inception_resnet_v1 without running the package __init__."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        raise SystemExit("facenet-pytorch is not installed in this venv")
    root = pathlib.Path(spec.submodule_search_locations[0])
    # Empty parent packages let the file's relative import (.utils.download) resolve
    # without importing facenet_pytorch/__init__.py (which needs torchvision).
    for name, path in (("facenet_pytorch", root), ("facenet_pytorch.models", root / "models")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules.setdefault(name, pkg)
    name = "facenet_pytorch.models.inception_resnet_v1"
    file_spec = importlib.util.spec_from_file_location(
        name, root / "models" / "inception_resnet_v1.py"
    )
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    file_spec.loader.exec_module(module)
    return module


# === arcface_torch backbones (transcribed from deepinsight/insightface) ===


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return out


class IResNet(nn.Module):
    fc_scale = 7 * 7

    def __init__(self, layers, dropout=0, num_features=512):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0], stride=2)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-05),
            )
        layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(IBasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class ConvBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(
                in_c, out_c, kernel, groups=groups, stride=stride, padding=padding, bias=False
            ),
            nn.BatchNorm2d(num_features=out_c),
            nn.PReLU(num_parameters=out_c),
        )

    def forward(self, x):
        return self.layers(x)


class LinearBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(num_features=out_c),
        )

    def forward(self, x):
        return self.layers(x)


class DepthWise(nn.Module):
    def __init__(
        self, in_c, out_c, residual=False, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=1
    ):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_c, out_c=groups, kernel=(1, 1), padding=(0, 0), stride=(1, 1)),
            ConvBlock(groups, groups, groups=groups, kernel=kernel, padding=padding, stride=stride),
            LinearBlock(groups, out_c, kernel=(1, 1), padding=(0, 0), stride=(1, 1)),
        )

    def forward(self, x):
        if self.residual:
            return x + self.layers(x)
        return self.layers(x)


class Residual(nn.Module):
    def __init__(self, c, num_block, groups, kernel=(3, 3), stride=(1, 1), padding=(1, 1)):
        super().__init__()
        self.layers = nn.Sequential(
            *[DepthWise(c, c, True, kernel, stride, padding, groups) for _ in range(num_block)]
        )

    def forward(self, x):
        return self.layers(x)


class GDC(nn.Module):
    def __init__(self, embedding_size):
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(512, 512, groups=512, kernel=(7, 7), stride=(1, 1), padding=(0, 0)),
            Flatten(),
            nn.Linear(512, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x):
        return self.layers(x)


class MobileFaceNet(nn.Module):
    def __init__(self, num_features=512, blocks=(1, 4, 6, 2), scale=2):
        super().__init__()
        self.layers = nn.ModuleList()
        self.layers.append(ConvBlock(3, 64 * scale, kernel=(3, 3), stride=(2, 2), padding=(1, 1)))
        if blocks[0] == 1:
            self.layers.append(
                ConvBlock(
                    64 * scale, 64 * scale, kernel=(3, 3), stride=(1, 1), padding=(1, 1), groups=64
                )
            )
        else:
            self.layers.append(Residual(64 * scale, num_block=blocks[0], groups=128))
        self.layers.extend(
            [
                DepthWise(64 * scale, 64 * scale, stride=(2, 2), groups=128),
                Residual(64 * scale, num_block=blocks[1], groups=128),
                DepthWise(64 * scale, 128 * scale, stride=(2, 2), groups=256),
                Residual(128 * scale, num_block=blocks[2], groups=256),
                DepthWise(128 * scale, 128 * scale, stride=(2, 2), groups=512),
                Residual(128 * scale, num_block=blocks[3], groups=256),
            ]
        )
        self.conv_sep = ConvBlock(128 * scale, 512, kernel=(1, 1), stride=(1, 1), padding=(0, 0))
        self.features = GDC(num_features)

    def forward(self, x):
        for func in self.layers:
            x = func(x)
        return self.features(self.conv_sep(x))


ARCHS = {
    "iresnet50": lambda dim: IResNet((3, 4, 14, 3), num_features=dim),
    "iresnet100": lambda dim: IResNet((3, 13, 30, 3), num_features=dim),
    # tfface's `mobilefacenet` is arcface_torch's MobileFaceNet at scale=1 (64-channel).
    "mbf": lambda dim: MobileFaceNet(num_features=dim, scale=1),
    # arcface_torch's get_mbf: the model zoo's w600k_mbf (buffalo_s / buffalo_sc).
    "mbf_s2": lambda dim: MobileFaceNet(num_features=dim, scale=2),
}


# === random weights ===


def randomize(module, seed):
    """Draws every parameter and BN statistic so that activations stay O(1)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=gen) * (hi - lo) + lo

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(uniform(m.bias.shape, -0.1, 0.1))
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                sign = torch.where(uniform((n,), 0, 1) < 0.2, -1.0, 1.0)
                m.weight.copy_(uniform((n,), 0.5, 1.5) * sign)
                m.bias.copy_(uniform((n,), -0.2, 0.2))
                m.running_mean.copy_(torch.randn((n,), generator=gen) * 0.2)
                m.running_var.copy_(uniform((n,), 0.5, 2.0))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(uniform(m.weight.shape, 0.05, 0.4))
    return module.eval()


def calibrate(module, blob):
    """Sets every BN's running statistics to those of `blob` (and its mirror), as training
    would: with random statistics a deep random network maps every input to nearly the same
    embedding, which would make the comparison weak."""
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    module.train()
    torch.manual_seed(0)  # facenet's dropout is active in train mode: fixed masks
    with torch.no_grad():
        module(torch.cat([blob, blob.flip(3)]))
    return module.eval()


# === cases ===


def run_facenet(out, seed, pixels):
    module = load_facenet_pytorch_module()
    model = randomize(module.InceptionResnetV1(pretrained=None, classify=False), seed)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    model = calibrate(model, (x - 127.5) / 128.0)
    state = model.state_dict()
    torch.save(state, out / "facenet.pt")
    torch.save(state, out / "facenet_legacy.pt", _use_new_zipfile_serialization=False)
    with torch.no_grad():
        # facenet-pytorch's fixed_image_standardization (models/mtcnn.py).
        np.save(out / "facenet_ref.npy", model((x - 127.5) / 128.0).numpy())
        # facenet's slim BNs have no scale; facenet-pytorch's tensorflow2pytorch.py sets
        # every BN weight to 1 when it imports them. The TF1-checkpoint test needs that model.
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.fill_(1.0)
        state = model.state_dict()
        np.savez(out / "facenet_tf1_state.npz", **{k: v.numpy() for k, v in state.items()})
        np.save(out / "facenet_tf1_ref.npy", model((x - 127.5) / 128.0).numpy())
    return {"facenet": ["facenet.pt", "facenet_legacy.pt", "facenet_tf1_state.npz"]}


def _ort(path, blob):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    # One image per run: TorchScript exports of `x.view(x.size(0), -1)` may fix the batch at 1.
    return np.concatenate(
        [session.run(None, {name: blob[i : i + 1]})[0] for i in range(len(blob))]
    ), name


def run_arcface(out, seed, arch, pixels, dim=512, dynamo=True):
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    blob = ((x - 127.5) / 127.5).numpy()
    model = calibrate(randomize(ARCHS[arch](dim), seed), torch.from_numpy(blob))
    torch.save(model.state_dict(), out / f"{arch}.pth")
    with torch.no_grad():
        np.save(out / f"{arch}_torch.npy", model(torch.from_numpy(blob)).numpy())
    dummy = torch.zeros(1, 3, 112, 112)
    # As arcface_torch's torch2onnx.py: TorchScript exporter, no input names, eval mode,
    # constant folding.
    torch.onnx.export(
        model,
        dummy,
        str(out / f"{arch}.onnx"),
        dynamo=False,
        opset_version=11,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
    )
    files = [f"{arch}.pth", f"{arch}.onnx"]
    if dynamo:
        files.append(f"{arch}_dynamo.onnx")
        _export_dynamo(model, dummy, out / f"{arch}_dynamo.onnx")
        np.save(out / f"{arch}_dynamo_ort.npy", _ort(out / f"{arch}_dynamo.onnx", blob)[0])
    emb, input_name = _ort(out / f"{arch}.onnx", blob)
    np.save(out / f"{arch}_ort.npy", emb)

    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    runner = ArcFaceONNX(model_file=str(out / f"{arch}.onnx"))
    # ArcFaceONNX.forward takes NCHW pixels and applies (x − input_mean) / input_std itself.
    pix = x.numpy()
    feats = [runner.forward(pix[i : i + 1]) for i in range(len(pix))]
    np.save(out / f"{arch}_insightface.npy", np.concatenate(feats))
    return {
        arch: {
            "files": files,
            "onnx_input_name": input_name,
            "insightface_input_mean": runner.input_mean,
            "insightface_input_std": runner.input_std,
        }
    }


def _export_dynamo(model, dummy, path):
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        dynamo=True,
        external_data=False,
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
    )


def main(argv=None):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--cases", required=True)
    run.add_argument("--pixels112")
    run.add_argument("--pixels160")
    run.add_argument(
        "--no_dynamo", default="", help="comma-separated archs without ARCH_dynamo.onnx"
    )
    args = parser.parse_args(argv)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"torch": torch.__version__}
    for i, case in enumerate(args.cases.split(",")):
        if case == "facenet":
            manifest.update(run_facenet(out, args.seed + i, np.load(args.pixels160)))
        elif case in ARCHS:
            dynamo = case not in args.no_dynamo.split(",")
            manifest.update(
                run_arcface(out, args.seed + i, case, np.load(args.pixels112), dynamo=dynamo)
            )
        else:
            raise SystemExit(f"unknown case {case!r}; known: facenet, {', '.join(ARCHS)}")
        print(f"done {case}", flush=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
