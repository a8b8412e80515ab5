"""The renderer's fast paths against a plain whole-grid reference.

`SyntheticFaces` evaluates the small features (nose, mouth, eyes) only in a window around
each, renders images in the order of their blur level and resamples contiguous runs, and
writes the uint8 layout channel by channel. None of this may move a pixel: the training
data, and with it every figure in BENCHMARKS.md, stays what it was. The reference below is
the renderer before those changes, written out: every region on the whole grid,
resampling level by level through gathers, one transposing copy.
"""

import numpy as np
import pytest

from tfface.data.synthetic import HELDOUT_ID_OFFSET
from tfface.data.synthetic import SyntheticFaces
from tfface.data.synthetic import renderer as S


def paint(label_map, mask, index):
    np.maximum(label_map, mask.view(np.int8) * np.int8(index), out=label_map)


def whole_grid_labels(faces, p, v):
    """`SyntheticFaces._rasterise` before its windows: every region on the whole grid."""
    n = v["roll"].shape[0]
    g = faces._grid
    col = lambda a: a.reshape(n, 1, 1).astype(np.float32)
    centre, cos, sin, scale = faces._pose(v)
    dx = g[None, None, :] - col(centre[:, 0])
    dy = g[None, :, None] - col(centre[:, 1])
    inv = col(1 / scale)
    cs, sn = col(cos) * inv, col(sin) * inv
    # Face-frame coordinates: inverse similarity transform of every pixel.
    u = cs * dx + sn * dy
    w = cs * dy - sn * dx
    yaw = col(v["yaw"])
    squeeze = 1 - 0.18 * np.abs(yaw)
    # Features slide and compress towards the turned-away side (a yaw proxy); the
    # outline moves less, the protruding nose more.
    uf = (u - 0.05 * yaw) / squeeze
    ua = np.abs(uf)
    uo = u - 0.015 * yaw

    lab = np.zeros((n, faces.render_size, faces.render_size), np.int8)
    fw, top, jh = col(p["face_w"]), col(p["face_top"]), col(p["jaw_h"])

    # Clothes and neck first, everything else paints over them.
    shoulders = w > 0.28 + 0.9 * uo * uo
    paint(lab, shoulders, S._CLOTHES)
    paint(lab, (np.abs(uo) < 0.55 * fw) & (w > 0.1), S._NECK)

    # Hair behind the head (volume above, optional long hair down the sides).
    vol = col(p["hair_volume"])
    hr_w = fw + 0.03 + vol
    hr_h = top + 0.02 + vol
    back = (uo / hr_w) ** 2 + ((w + 0.02) / hr_h) ** 2 < 1
    long_ = col(p["hair_long"])
    back |= (np.abs(uo) < fw + 0.04 + 0.5 * vol) & (w > -0.05) & (w < long_)
    back &= (w < 0) | (long_ > 0)
    paint(lab, back, S._HAIR_BACK)

    # Ears.
    ear = col(p["ear"])
    paint(lab, ((np.abs(uo) - fw) / ear) ** 2 + ((w + 0.06) / (1.6 * ear)) ** 2 < 1, S._EAR)

    # Face: an upper half-ellipse and a tapered jaw.
    wn = np.clip(w / jh, 0, 1)
    half_w = np.where(w > 0, fw * (1 - col(p["jaw_taper"]) * wn * wn), fw)
    half_h = np.where(w > 0, jh, top)
    face_r = (uo / half_w) ** 2 + (w / half_h) ** 2
    face = face_r < 1
    paint(lab, face, S._SKIN)

    # Hairline with a side part (a tilted, curved edge), over the forehead.
    edge = -top + col(p["hairline"]) + col(p["hair_part"]) * 0.12 * uo - 0.8 * uo * uo
    fringe = face & (w < edge) & (col(p["hair_volume"]) > 0)
    paint(lab, fringe, S._HAIR)

    # Beard: the lower face below the nose, around the mouth.
    beard = face & (w > col(p["nose_y"]) + 0.045) & (col(p["beard"]) > 0)
    paint(lab, beard, S._BEARD)

    # Nose: a soft triangle from between the eyes to the tip, then nostrils.
    un = u - 0.085 * yaw
    ey, ny, nw = col(p["eye_y"]), col(p["nose_y"]), col(p["nose_w"])
    tt = (w - ey - 0.02) / (ny - ey - 0.02)
    nose = (tt > 0) & (tt < 1.05) & (np.abs(un) < nw * (0.35 + 0.65 * tt))
    paint(lab, nose & (un * yaw >= 0), S._NOSE)
    nostrils = ((np.abs(un) - 0.55 * nw) / (0.3 * nw)) ** 2 + ((w - ny) / 0.011) ** 2 < 1
    paint(lab, nostrils, S._NOSTRIL)

    # Mouth: lips on a smile curve; an open mouth shows a dark interior.
    mw, mt = col(p["mouth_w"]), col(p["mouth_th"])
    smile, open_ = col(v["smile"]), col(v["mouth_open"])
    mwidth = mw * (1 + 0.15 * np.maximum(smile, 0))
    cy = col(p["mouth_y"]) - 0.02 * smile * ((ua / mwidth) ** 2 - 0.3)
    lips_h = mt + 0.03 * open_
    paint(lab, (ua / mwidth) ** 2 + ((w - cy) / lips_h) ** 2 < 1, S._LIPS)
    inner = (ua / (0.8 * mwidth)) ** 2 + ((w - cy) / (0.028 * open_ + 1e-4)) ** 2 < 1
    paint(lab, inner & (open_ > 0.05), S._MOUTH)

    # Eyes: sclera ellipse, iris and pupil; a blink flattens the eye.
    ex, ew = col(p["eye_x"]), col(p["eye_w"])
    eh = ew * col(p["eye_h"]) * (1 - col(v["blink"]))
    de = ua - ex
    dw = w - ey
    sclera = (de / ew) ** 2 + (dw / eh) ** 2 < 1
    paint(lab, sclera, S._SCLERA)
    di = de - col(v["gaze_x"]) * np.sign(uf)
    ir = 0.55 * ew * (0.6 + 0.4 * col(p["eye_h"]))
    r_iris = di * di + dw * dw
    paint(lab, sclera & (r_iris < ir * ir), S._IRIS)
    paint(lab, sclera & (r_iris < 0.2 * ir * ir), S._PUPIL)

    # Brows: slanted ellipses above the eyes, raised by expression.
    bw = ew * col(p["brow_len"])
    by = ey - col(p["brow_gap"]) - col(v["brow_raise"])
    bc = w - by + col(p["brow_tilt"]) * 0.25 * de
    paint(lab, (de / bw) ** 2 + (bc / col(p["brow_th"])) ** 2 < 1, S._BROW)

    # Glasses: elliptic rims and a bridge.
    gl = col(p["glasses"]) > 0
    rim = (de / (1.45 * ew)) ** 2 + (dw / (1.05 * ew)) ** 2
    frame = gl & (rim > 1) & (rim < 1.35)
    frame |= gl & (ua < ex - 1.3 * ew) & (np.abs(dw + 0.01) < 0.007)
    paint(lab, frame, S._FRAME)

    # Occluder: an axis-aligned patch in image coordinates.
    ox, oy = col(v["occ_x"]), col(v["occ_y"])
    occ = (np.abs(g[None, None, :] - ox) < col(v["occ_w"])) & (
        np.abs(g[None, :, None] - oy) < col(v["occ_h"])
    )
    paint(lab, occ, S._OCCLUDER)
    return lab, face_r


def reference_resample(faces, img, v):
    n, r, s = img.shape[0], faces.render_size, faces.image_size
    out = np.empty((n, s, 3, s), np.float32)
    level = np.minimum(np.rint(v["blur"] / faces._blur_step).astype(np.int64), 4)
    for lv in np.unique(level):
        idx = np.nonzero(level == lv)[0]
        k = faces._kernels[lv]
        sub, m = img[idx], idx.shape[0]
        xs = (sub.reshape(m * r * 3, r) @ k).reshape(m, r, 3 * s)
        out[idx] = np.matmul(k.T[None], xs).reshape(m, s, 3, s)
    return out


def reference_render(faces, ids, var):
    """Images of `faces.render(ids, var)`, 32 at a time in the given order."""
    p, v = faces.identity_params(ids), faces.variation_params(ids, var)
    images = []
    for start in range(0, len(ids), 32):
        pc = {k: a[start : start + 32] for k, a in p.items()}
        vc = {k: a[start : start + 32] for k, a in v.items()}
        lab, face_r = whole_grid_labels(faces, pc, vc)
        img = reference_resample(faces, faces._colour(lab, face_r, pc, vc), vc)
        np.clip(img, 0, 255, out=img)
        images.append(np.ascontiguousarray(img.astype(np.uint8).transpose(0, 1, 3, 2)))
    return np.concatenate(images)


# (image size, nuisance, seed): the default run (64 px), the smallest and the largest
# render grids, no nuisance, and nuisance far beyond the default, where the yaw squeeze
# turns negative and the windows' bounds must still hold.
CASES = [(64, 1.0, 0), (32, 1.0, 1), (112, 1.0, 2), (160, 2.0, 3), (64, 0.0, 4), (64, 6.0, 5)]


@pytest.mark.parametrize("size,nuisance,seed", CASES)
def test_label_maps_equal_the_whole_grid_reference(size, nuisance, seed):
    faces = SyntheticFaces(image_size=size, seed=seed, nuisance=nuisance)
    for ids, var in [(np.arange(96), np.arange(96) % 7), (np.arange(64) * 997 + 5, np.arange(64))]:
        for start in range(0, len(ids), 32):
            p = faces.identity_params(ids[start : start + 32])
            v = faces.variation_params(ids[start : start + 32], var[start : start + 32])
            lab, face_r = faces._rasterise(p, v)
            ref_lab, ref_face_r = whole_grid_labels(faces, p, v)
            np.testing.assert_array_equal(lab, ref_lab)
            np.testing.assert_array_equal(face_r, ref_face_r)


@pytest.mark.parametrize("size,nuisance,seed", CASES)
def test_images_equal_the_reference_renderer(size, nuisance, seed):
    faces = SyntheticFaces(image_size=size, seed=seed, nuisance=nuisance)
    ids = np.concatenate([np.arange(40), HELDOUT_ID_OFFSET + np.arange(40) * 31])
    var = np.arange(80) % 11
    images, _ = faces.render(ids, var)
    np.testing.assert_array_equal(images, reference_render(faces, ids, var))
    # A single image renders alone as it does inside a batch (order and chunking).
    np.testing.assert_array_equal(faces.render(ids[7:8], var[7:8])[0], images[7:8])


def test_feature_windows_cover_a_fraction_of_the_grid():
    """What makes the features cheap, as a count: on the default run's images the three
    windows hold 8–25 % of the grid's pixels each (measured; 40 % is the bound here), so
    the features' arithmetic runs over about a sixth of the pixels it did."""
    faces = SyntheticFaces(image_size=64, seed=0)
    ids = np.arange(32) * 13
    p, v = faces.identity_params(ids), faces.variation_params(ids, ids % 20)
    col = lambda a: a.reshape(32, 1, 1).astype(np.float32)
    frame = S._Frame(faces._grid, faces._pose(v), col)
    r = faces.render_size
    for box in (S._nose_box, S._mouth_box, S._eyes_box):
        ys, xs = frame.windows([box(p, v)])[0]
        assert ys is not None, box.__name__
        assert ys.shape[1] * xs.shape[1] < 0.4 * r * r, box.__name__
