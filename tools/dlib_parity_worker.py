"""Runs dlib itself (the `dlib-bin` wheel, inside .venv-dlib) for tfface's dlib checks.

Never imported by tfface: tests and benchmarks start it with the .venv-dlib interpreter and
pass it the weight files of the `face-recognition-models` package.

  descriptors --model RESNET.dat IN.npz OUT.npz
      IN holds `chips` uint8 [N, 150, 150, 3] (RGB). OUT gets `descriptors` float64
      [N, 128]: dlib's `face_recognition_model_v1.compute_face_descriptor` of each chip
      (the overload for already-aligned 150×150 chips, num_jitters=0).

  pipeline --model RESNET.dat --predictor SHAPE5.dat IN.npz OUT.npz
      IN holds `image_{i}` uint8 [H, W, 3] RGB photos. For every face dlib finds (HOG
      frontal face detector, one upsampling), OUT gets `image` [F] int, `boxes` [F, 4]
      (left, top, right, bottom), `parts` [F, 5, 2] float64 (the 5-point predictor's
      x, y), `chips` uint8 [F, 150, 150, 3] (`get_face_chip`, size 150, padding 0.25) and
      `descriptors` [F, 128] (`compute_face_descriptor(image, shape)`: the whole pipeline),
      and `chip_rects` [F, 4] (left, top, right, bottom) / `chip_angles` [F] of
      `get_face_chip_details(shape, 150, 0.25)`.

  landmarks --predictor SHAPE5.dat IN.npz OUT.npz
      IN holds `image_{i}` uint8 [H, W, 3] RGB photos and `rects_{i}` int [R, 4] (left, top,
      right, bottom). OUT gets, for every rect in order, `image` [F], `parts` [F, 5, 2]
      (the 5-point predictor run on that rect), `chips` uint8 [F, 150, 150, 3]
      (`get_face_chip` of those parts) and `chip_rects` / `chip_angles` as above.
"""

import argparse
import sys

import dlib
import numpy as np


def descriptors(model_path, in_path, out_path):
    net = dlib.face_recognition_model_v1(model_path)
    chips = np.load(in_path)["chips"]
    if chips.ndim != 4 or chips.shape[1:] != (150, 150, 3) or chips.dtype != np.uint8:
        raise SystemExit(f"chips must be uint8 [N, 150, 150, 3]; got {chips.dtype} {chips.shape}")
    out = [np.array(net.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips]
    np.savez(out_path, descriptors=np.stack(out).astype(np.float64))


def pipeline(model_path, predictor_path, in_path, out_path):
    net = dlib.face_recognition_model_v1(model_path)
    predictor = dlib.shape_predictor(predictor_path)
    detector = dlib.get_frontal_face_detector()
    data = np.load(in_path)
    names = sorted((k for k in data.files if k.startswith("image_")), key=lambda k: int(k[6:]))
    result = {k: [] for k in ("image", "boxes", "parts", "chips", "descriptors")}
    result.update(chip_rects=[], chip_angles=[])
    for name in names:
        image = np.ascontiguousarray(data[name])
        for box in detector(image, 1):
            shape = predictor(image, box)
            result["image"].append(int(name[6:]))
            result["boxes"].append([box.left(), box.top(), box.right(), box.bottom()])
            _add_shape(result, image, shape)
            result["descriptors"].append(np.array(net.compute_face_descriptor(image, shape)))
    np.savez(out_path, **_arrays(result))


def _add_shape(result, image, shape):
    result["parts"].append([[p.x, p.y] for p in shape.parts()])
    result["chips"].append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
    details = dlib.get_face_chip_details(shape, size=150, padding=0.25)
    r = details.rect
    result["chip_rects"].append([r.left(), r.top(), r.right(), r.bottom()])
    result["chip_angles"].append(details.angle)


def _arrays(result):
    out = {
        "image": np.asarray(result["image"], np.int64),
        "parts": np.asarray(result["parts"], np.float64).reshape(-1, 5, 2),
        "chips": np.asarray(result["chips"], np.uint8).reshape(-1, 150, 150, 3),
        "chip_rects": np.asarray(result["chip_rects"], np.float64).reshape(-1, 4),
        "chip_angles": np.asarray(result["chip_angles"], np.float64),
    }
    if "boxes" in result:
        out["boxes"] = np.asarray(result["boxes"], np.int64).reshape(-1, 4)
        out["descriptors"] = np.asarray(result["descriptors"], np.float64).reshape(-1, 128)
    return out


def landmarks(predictor_path, in_path, out_path):
    predictor = dlib.shape_predictor(predictor_path)
    data = np.load(in_path)
    names = sorted((k for k in data.files if k.startswith("image_")), key=lambda k: int(k[6:]))
    result = {k: [] for k in ("image", "parts", "chips", "chip_rects", "chip_angles")}
    for name in names:
        image = np.ascontiguousarray(data[name])
        for left, top, right, bottom in data["rects_" + name[6:]].reshape(-1, 4):
            box = dlib.rectangle(int(left), int(top), int(right), int(bottom))
            result["image"].append(int(name[6:]))
            _add_shape(result, image, predictor(image, box))
    np.savez(out_path, **_arrays(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("descriptors")
    d.add_argument("--model", required=True)
    d.add_argument("inputs")
    d.add_argument("outputs")
    p = sub.add_parser("pipeline")
    p.add_argument("--model", required=True)
    p.add_argument("--predictor", required=True)
    p.add_argument("inputs")
    p.add_argument("outputs")
    lm = sub.add_parser("landmarks")
    lm.add_argument("--predictor", required=True)
    lm.add_argument("inputs")
    lm.add_argument("outputs")
    args = parser.parse_args(argv)
    if args.command == "descriptors":
        descriptors(args.model, args.inputs, args.outputs)
    elif args.command == "landmarks":
        landmarks(args.predictor, args.inputs, args.outputs)
    else:
        pipeline(args.model, args.predictor, args.inputs, args.outputs)


if __name__ == "__main__":
    sys.exit(main())
