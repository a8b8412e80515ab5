"""The synthetic face renderer: parameters in, uint8 images and five landmarks out.

`SyntheticFaces.render` draws each image's parameters (`parameters.py`), rasterises a
label map of 18 face regions on a coarse grid in face-frame coordinates (the inverse pose
of each pixel), colours it (palette, background, shading, exposure, sensor noise),
resamples it to the output size with the image's blur folded into a Gaussian kernel, and
writes the uint8 [N, S, S, 3] layout. Work runs in chunks of 32 images with vectorised
NumPy over [N, H, W] grids.

Process settings. The first render of at least one image in a process limits NumPy's BLAS
to one thread and sets glibc's malloc thresholds, for the whole process
(`process_tuning.py`; `disable_process_tuning()` before the first render keeps them off).
"""

import numpy as np

from tfface.data.synthetic import parameters
from tfface.data.synthetic.parameters import NOISE_BANK
from tfface.data.synthetic.process_tuning import tune_process_for_rendering

# Face-frame origin in normalised image coordinates: the template points are expressed
# relative to it, so pose (roll, scale, shift) is a similarity transform about this point.
_ORIGIN = np.array([0.5, 0.6], dtype=np.float32)


# Region indices of the label map, in painting order: a region painted later has a larger
# index, so painting is `max(label, mask·index)`, far cheaper than masked assignment.
(
    _BG,
    _CLOTHES,
    _NECK,
    _HAIR_BACK,
    _EAR,
    _SKIN,
    _HAIR,
    _BEARD,
    _NOSE,
    _NOSTRIL,
    _LIPS,
    _MOUTH,
    _SCLERA,
    _IRIS,
    _PUPIL,
    _BROW,
    _FRAME,
    _OCCLUDER,
) = range(18)
_NUM_REGIONS = 18

# Images rasterised and resampled together: the float working set of a chunk stays in cache.
_CHUNK = 32
# Blur levels, each with its own resampling kernel.
_BLUR_LEVELS = 5


def _paint(label_map, mask, index):
    # Regions are numbered in painting order, so "later wins" is a max: one branch-free
    # pass, faster than np.copyto(where=mask) (BUILD_NOTES.md, "Input overlap: the
    # renderer's arithmetic").
    np.maximum(label_map, mask.view(np.int8) * np.int8(index), out=label_map)


class _Frame:
    """Face-frame coordinates (u right, w down) of grid pixels: each image's inverse pose.

    `coordinates()` covers the whole grid; `paint_window` evaluates a feature only on a
    per-image rectangle of pixels that holds everything the feature can paint.
    """

    def __init__(self, grid, pose, col):
        centre, cos, sin, scale = pose
        self.grid = grid
        self.cx, self.cy = col(centre[:, 0]), col(centre[:, 1])
        inv = col(1 / scale)
        self.cs, self.sn = col(cos) * inv, col(sin) * inv
        self._pose64 = [np.asarray(a, np.float64) for a in (centre, cos, sin, scale)]
        self._whole = None

    def coordinates(self, ys=None, xs=None):
        """(u, w) float32 at pixel rows `ys` [N, h] × columns `xs` [N, w], or the grid."""
        if ys is None and self._whole is not None:
            return self._whole
        g = self.grid
        dx = (g[None, None, :] if xs is None else g[xs][:, None, :]) - self.cx
        dy = (g[None, :, None] if ys is None else g[ys][:, :, None]) - self.cy
        uw = self.cs * dx + self.sn * dy, self.cs * dy - self.sn * dx
        if ys is None:
            self._whole = uw
        return uw

    def windows(self, boxes):
        """Per box: pixel rows [N, h] and columns [N, w] covering it, or (None, None).

        Each box is (u_lo, u_hi, w_lo, w_hi) per image. Its image is a rotated rectangle;
        the bounding pixels plus one pixel of margin (float32 rounding moves an edge by
        ~1e-5 pixel) form each image's window, padded to the chunk's largest window and
        moved inside the grid. (None, None) means the whole grid: the box is not finite,
        or the windows would cover most of it.
        """
        centre, cos, sin, scale = self._pose64
        u_lo, u_hi, w_lo, w_hi = np.asarray(boxes, np.float64).transpose(1, 0, 2)  # [B, N]
        uc, hu, wc, hw = (u_lo + u_hi) / 2, (u_hi - u_lo) / 2, (w_lo + w_hi) / 2, (w_hi - w_lo) / 2
        k, ac, as_ = np.abs(scale), np.abs(cos), np.abs(sin)
        r = self.grid.shape[0]
        # Pixel i sits at (i + 0.5) / r.
        ranges = []
        for mid, half in (
            (centre[:, 1] + scale * (sin * uc + cos * wc), k * (as_ * hu + ac * hw)),
            (centre[:, 0] + scale * (cos * uc - sin * wc), k * (ac * hu + as_ * hw)),
        ):
            lo = np.floor((mid - half) * r - 0.5) - 1
            size = np.minimum(np.max(np.ceil((mid + half) * r - 0.5) + 2 - lo, axis=1), r)
            ranges.append((lo, size))
        area = ranges[0][1] * ranges[1][1]
        out = []
        for b in range(len(boxes)):
            if not (
                np.all(np.isfinite(ranges[0][0][b] + ranges[1][0][b])) and area[b] <= 0.6 * r * r
            ):
                out.append((None, None))
                continue
            out.append(
                tuple(
                    np.clip(lo[b], 0, r - size[b]).astype(np.intp)[:, None]
                    + np.arange(int(size[b]), dtype=np.intp)
                    for lo, size in ranges
                )
            )
        return out

    def paint_window(self, label_map, window, paint, *args):
        """Runs `paint(labels, u, w, *args)` on each image's `window` (see `windows`)."""
        ys, xs = window
        if ys is None:
            paint(label_map, *self.coordinates(), *args)
            return
        n, r = label_map.shape[:2]
        flat = (np.arange(n, dtype=np.intp) * (r * r))[:, None, None] + (
            ys[:, :, None] * r + xs[:, None, :]
        )
        labels = np.take(label_map, flat, mode="clip")
        paint(labels, *self.coordinates(ys, xs), *args)
        np.put(label_map, flat, labels, mode="clip")


def _feature_u(u, yaw):
    # Eyes and mouth slide and compress towards the turned-away side (a yaw proxy); the
    # outline moves less (`uo`), the protruding nose more (`un`). `_squeeze` bounds it.
    return (u - 0.05 * yaw) / (1 - 0.18 * np.abs(yaw))


# Face-frame boxes (u_lo, u_hi, w_lo, w_hi) per image that hold every pixel a feature can
# paint; each bound is read off the feature's inequalities in `SyntheticFaces._paint_*`.
def _squeeze(v):
    return np.abs(1 - 0.18 * np.abs(v["yaw"].astype(np.float64)))


def _nose_box(p, v):
    yaw = v["yaw"].astype(np.float64)
    ey, ny = p["eye_y"].astype(np.float64), p["nose_y"].astype(np.float64)
    half = 1.0325 * p["nose_w"]  # |un| < nw·(0.35 + 0.65·1.05) and nostrils' 0.85·nw
    span = 1.05 * (ny - ey - 0.02)  # 0 < tt < 1.05
    top, bottom = ey + 0.02 + np.minimum(span, 0), ey + 0.02 + np.maximum(span, 0)
    return (
        0.085 * yaw - half,
        0.085 * yaw + half,
        np.minimum(top, ny - 0.011),
        np.maximum(bottom, ny + 0.011),
    )


def _mouth_box(p, v):
    yaw, smile = v["yaw"].astype(np.float64), v["smile"].astype(np.float64)
    half = p["mouth_w"] * (1 + 0.15 * np.maximum(smile, 0)) * _squeeze(v)  # ua < mwidth
    open_ = v["mouth_open"].astype(np.float64)
    # The smile curve moves the lips' centre by at most 0.02·|smile|·0.7.
    height = 0.014 * np.abs(smile) + np.maximum(p["mouth_th"] + 0.03 * open_, 0.028 * open_ + 1e-4)
    y = p["mouth_y"].astype(np.float64)
    return 0.05 * yaw - half, 0.05 * yaw + half, y - height, y + height


def _eyes_box(p, v):
    yaw = v["yaw"].astype(np.float64)
    ex, ew, ey = (p[k].astype(np.float64) for k in ("eye_x", "eye_w", "eye_y"))
    bw = ew * p["brow_len"]
    # ua < ex + ew (sclera), ex + bw (brow), ex + 1.45·√1.35·ew (rims; the bridge is nearer).
    half = (ex + np.maximum(np.maximum(ew, bw), 1.6848 * ew)) * _squeeze(v)
    eh = ew * p["eye_h"] * (1 - v["blink"])
    # |dw| < eh (sclera), 1.05·√1.35·ew (rims), 0.017 (bridge).
    reach = np.maximum(np.maximum(eh, 1.2200 * ew), 0.017)
    by = ey - p["brow_gap"] - v["brow_raise"]
    brow = p["brow_th"] + np.abs(p["brow_tilt"]) * 0.25 * bw  # |bc| < brow_th, |de| < bw
    return (
        0.05 * yaw - half,
        0.05 * yaw + half,
        np.minimum(ey - reach, by - brow),
        np.maximum(ey + reach, by + brow),
    )


class SyntheticFaces:
    """Renders identity-labelled synthetic face images with five landmarks.

    Args:
        image_size: int, output height and width in pixels (>= 32).
        seed: int, the world seed: identity `i` looks the same for the same seed.
        nuisance: float >= 0, scales every nuisance factor (pose, expression, lighting,
            background, occlusion, blur, noise). 1.0 is the training/evaluation default;
            0.0 renders every identity frontal, neutral, evenly lit on a plain background
            of a random colour.

    The first render in a process limits NumPy's BLAS to one thread and sets glibc's
    malloc thresholds, process-wide (see `render`).

    Example:

    >>> faces = SyntheticFaces(image_size=112, seed=0)
    >>> images, landmarks = faces.render([0, 0, 1], [0, 1, 0])
    >>> images.shape, images.dtype, landmarks.shape
    ((3, 112, 112, 3), dtype('uint8'), (3, 5, 2))
    """

    def __init__(self, image_size=112, seed=0, nuisance=1.0):
        if not _is_int(image_size) or image_size < 32:
            raise ValueError(
                f"`image_size` must be an integer >= 32. Received: image_size={image_size!r}"
            )
        if not _is_int(seed):
            raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
        if not isinstance(nuisance, (int, float, np.number)) or not nuisance >= 0:
            raise ValueError(f"`nuisance` must be >= 0. Received: nuisance={nuisance!r}")
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.nuisance = float(nuisance)
        # Shapes are rasterised on a coarser grid and resampled (with per-image blur) to
        # the output size: this keeps the per-pixel work within the 2,000 images/s budget.
        self.render_size = int(min(self.image_size, max(56, self.image_size // 2)))
        r = self.render_size
        self._grid = ((np.arange(r, dtype=np.float32) + 0.5) / r).astype(np.float32)
        s = self.image_size
        self._out_grid = ((np.arange(s, dtype=np.float32) + 0.5) / s).astype(np.float32)
        # Sensor noise comes from a fixed bank of noise images: drawing fresh normals for
        # every pixel would cost more than the whole render.
        bank_rng = np.random.default_rng(0x5EED)
        self._noise_bank = bank_rng.standard_normal((NOISE_BANK, r, 3, r)).astype(np.float32)
        # Resampling kernels [R, S], one per blur level (Gaussian, rows of the transposed
        # kernel sum to 1 so constants and affine exposure changes are preserved).
        self._blur_step = 1.6 * s / 112 / (_BLUR_LEVELS - 1) + 1e-6
        d = self._out_grid[None, :] - self._grid[:, None]  # [R, S]
        self._kernels = []
        for lv in range(_BLUR_LEVELS):
            sigma = np.sqrt((0.55 / r) ** 2 + (lv * self._blur_step / s) ** 2)
            k = np.exp(-0.5 * (d / sigma) ** 2)
            k = (k / k.sum(0, keepdims=True)).astype(np.float32)
            # The Gaussian tails reach float32 denormals; on Intel cores each multiply by
            # one takes a microcode assist: resampling ran 12–21× slower on a Xeon than
            # with the tails flushed (AMD: no difference). Terms below 1e-30 cannot move a
            # sum of 0–255 pixels, so the images stay bit-identical (BUILD_NOTES.md).
            k[k < 1e-30] = 0
            self._kernels.append(k)

    # ------------------------------------------------------------------ parameters
    def identity_params(self, identity_ids):
        """Dict of float32 [N] identity parameters (shape, colours, features)."""
        return parameters.identity_params(self.seed, identity_ids)

    def variation_params(self, identity_ids, variation_seeds):
        """Dict of float32 [N] nuisance parameters of each (identity, variation) image."""
        return parameters.variation_params(
            self.seed, self.nuisance, self.image_size, identity_ids, variation_seeds
        )

    # ------------------------------------------------------------------ geometry
    def _landmarks_local(self, p, v):
        """Landmarks in face-frame coordinates [N, 5, 2] (before the pose transform)."""
        yaw = v["yaw"]
        squeeze = 1 - 0.18 * np.abs(yaw)
        feat_dx = 0.05 * yaw
        nose_dx = 0.085 * yaw
        ex = p["eye_x"] * squeeze
        mx = p["mouth_w"] * squeeze * (1 + 0.15 * np.maximum(v["smile"], 0))
        corner_y = p["mouth_y"] - 0.02 * v["smile"]
        pts = np.stack(
            [
                np.stack([feat_dx - ex, p["eye_y"]], -1),
                np.stack([feat_dx + ex, p["eye_y"]], -1),
                np.stack([nose_dx, p["nose_y"]], -1),
                np.stack([feat_dx - mx, corner_y], -1),
                np.stack([feat_dx + mx, corner_y], -1),
            ],
            axis=1,
        )
        return pts.astype(np.float32)

    def _pose(self, v):
        centre = np.stack([_ORIGIN[0] + v["shift_x"], _ORIGIN[1] + v["shift_y"]], -1)
        return centre.astype(np.float32), np.cos(v["roll"]), np.sin(v["roll"]), v["scale"]

    # ------------------------------------------------------------------ rendering
    def render(self, identity_ids, variation_seeds):
        """Renders images of `identity_ids`, image `variation_seeds` of each.

        Args:
            identity_ids: int array [N]: training ids are 0 … n-1, held-out ids start at
                `HELDOUT_ID_OFFSET`.
            variation_seeds: int array [N]: which image of the identity (any integer).

        Returns:
            (uint8 images [N, S, S, 3], float32 landmarks [N, 5, 2] in output pixels).

        The first call with at least one image in a process changes two process-wide
        settings, for the rest of the process: NumPy's BLAS is limited to one thread and
        glibc's malloc keeps freed memory mapped (`tune_process_for_rendering`;
        `disable_process_tuning()` before the first render keeps them off).
        """
        ids = np.asarray(identity_ids, dtype=np.int64).reshape(-1)
        var = np.asarray(variation_seeds, dtype=np.int64).reshape(-1)
        if ids.shape != var.shape:
            raise ValueError(
                "`identity_ids` and `variation_seeds` must have the same length. Received: "
                f"{ids.shape[0]} identity ids and {var.shape[0]} variation seeds"
            )
        n, s = ids.shape[0], self.image_size
        if n == 0:
            return np.zeros((0, s, s, 3), np.uint8), np.zeros((0, 5, 2), np.float32)
        # Process-wide, once per process: NumPy's BLAS on one thread, glibc's malloc
        # thresholds (process_tuning.py). A no-op after the first time or an opt-out.
        tune_process_for_rendering()
        p = self.identity_params(ids)
        v = self.variation_params(ids, var)
        # Images are rendered in the order of their blur level, so that each chunk's
        # resampling runs over contiguous blocks. Chunks keep the float working set in
        # cache. Every image's pixels depend only on its own parameters.
        order = np.argsort(self._blur_level(v), kind="stable")
        img = np.empty((n, s, s, 3), np.uint8)
        for start in range(0, n, _CHUNK):
            rows = order[start : start + _CHUNK]
            pc = {k: a[rows] for k, a in p.items()}
            vc = {k: a[rows] for k, a in v.items()}
            label_map, face_r = self._rasterise(pc, vc)
            chunk = self._resample(self._colour(label_map, face_r, pc, vc), vc)
            self._finish(chunk, out=img[start : start + _CHUNK])
        if np.any(order[1:] < order[:-1]):
            img[order] = img.copy()
        centre, cos, sin, scale = self._pose(v)
        local = self._landmarks_local(p, v)
        rot_x = cos[:, None] * local[..., 0] - sin[:, None] * local[..., 1]
        rot_y = sin[:, None] * local[..., 0] + cos[:, None] * local[..., 1]
        pts = np.stack(
            [
                centre[:, None, 0] + scale[:, None] * rot_x,
                centre[:, None, 1] + scale[:, None] * rot_y,
            ],
            -1,
        )
        return img, (pts * s).astype(np.float32)

    def _rasterise(self, p, v):
        """Label map int8 [N, R, R] of face regions, plus the face's elliptic radius².

        Regions that cover the head (clothes, neck, hair, ears, skin, beard) are evaluated
        on the whole grid. The small features (nose, mouth, eyes with brows and glasses)
        are evaluated only in a per-image window around them (`_Frame.windows`): the
        same float32 operations on the same pixels, so the label map is the one a
        whole-grid evaluation gives (tests/data/test_synthetic_reference.py checks it
        against a whole-grid reference), at about a fifth of those features' cost.
        """
        n = v["roll"].shape[0]
        col = lambda a: a.reshape(n, 1, 1).astype(np.float32)
        frame = _Frame(self._grid, self._pose(v), col)
        u, w = frame.coordinates()
        yaw = col(v["yaw"])
        uo = u - 0.015 * yaw

        lab = np.zeros((n, self.render_size, self.render_size), np.int8)
        fw, top, jh = col(p["face_w"]), col(p["face_top"]), col(p["jaw_h"])

        # Clothes and neck first, everything else paints over them.
        shoulders = w > 0.28 + 0.9 * uo * uo
        _paint(lab, shoulders, _CLOTHES)
        abs_uo = np.abs(uo)
        _paint(lab, (abs_uo < 0.55 * fw) & (w > 0.1), _NECK)

        # Hair behind the head (volume above, optional long hair down the sides).
        vol = col(p["hair_volume"])
        hr_w = fw + 0.03 + vol
        hr_h = top + 0.02 + vol
        back = (uo / hr_w) ** 2 + ((w + 0.02) / hr_h) ** 2 < 1
        long_ = col(p["hair_long"])
        back |= (abs_uo < fw + 0.04 + 0.5 * vol) & (w > -0.05) & (w < long_)
        back &= (w < 0) | (long_ > 0)
        _paint(lab, back, _HAIR_BACK)

        # Ears.
        ear = col(p["ear"])
        _paint(lab, ((abs_uo - fw) / ear) ** 2 + ((w + 0.06) / (1.6 * ear)) ** 2 < 1, _EAR)

        # Face: an upper half-ellipse and a tapered jaw.
        # Above the jaw (w <= 0) wn is 0, so the taper below is exactly fw there.
        wn = np.clip(w / jh, 0, 1)
        half_w = fw * (1 - col(p["jaw_taper"]) * wn * wn)
        half_h = np.where(w > 0, jh, top)
        face_r = (uo / half_w) ** 2 + (w / half_h) ** 2
        face = face_r < 1
        _paint(lab, face, _SKIN)

        # Hairline with a side part (a tilted, curved edge), over the forehead.
        edge = -top + col(p["hairline"]) + col(p["hair_part"]) * 0.12 * uo - 0.8 * uo * uo
        fringe = face & (w < edge) & (col(p["hair_volume"]) > 0)
        _paint(lab, fringe, _HAIR)

        # Beard: the lower face below the nose, around the mouth.
        beard = face & (w > col(p["nose_y"]) + 0.045) & (col(p["beard"]) > 0)
        _paint(lab, beard, _BEARD)

        # The features, in painting order, each in its window.
        paints = (self._paint_nose, self._paint_mouth, self._paint_eyes)
        windows = frame.windows([_nose_box(p, v), _mouth_box(p, v), _eyes_box(p, v)])
        for paint, window in zip(paints, windows, strict=True):
            frame.paint_window(lab, window, paint, p, v, col)

        # Occluder: an axis-aligned patch in image coordinates.
        g = self._grid
        ox, oy = col(v["occ_x"]), col(v["occ_y"])
        occ = (np.abs(g[None, None, :] - ox) < col(v["occ_w"])) & (
            np.abs(g[None, :, None] - oy) < col(v["occ_h"])
        )
        _paint(lab, occ, _OCCLUDER)
        return lab, face_r

    @staticmethod
    def _paint_nose(lab, u, w, p, v, col):
        """Nose: a soft triangle from between the eyes to the tip, then nostrils."""
        yaw = col(v["yaw"])
        un = u - 0.085 * yaw
        ey, ny, nw = col(p["eye_y"]), col(p["nose_y"]), col(p["nose_w"])
        tt = (w - ey - 0.02) / (ny - ey - 0.02)
        nose = (tt > 0) & (tt < 1.05) & (np.abs(un) < nw * (0.35 + 0.65 * tt))
        _paint(lab, nose & (un * yaw >= 0), _NOSE)
        nostrils = ((np.abs(un) - 0.55 * nw) / (0.3 * nw)) ** 2 + ((w - ny) / 0.011) ** 2 < 1
        _paint(lab, nostrils, _NOSTRIL)

    @staticmethod
    def _paint_mouth(lab, u, w, p, v, col):
        """Mouth: lips on a smile curve; an open mouth shows a dark interior."""
        ua = np.abs(_feature_u(u, col(v["yaw"])))
        mw, mt = col(p["mouth_w"]), col(p["mouth_th"])
        smile, open_ = col(v["smile"]), col(v["mouth_open"])
        mwidth = mw * (1 + 0.15 * np.maximum(smile, 0))
        cy = col(p["mouth_y"]) - 0.02 * smile * ((ua / mwidth) ** 2 - 0.3)
        lips_h = mt + 0.03 * open_
        _paint(lab, (ua / mwidth) ** 2 + ((w - cy) / lips_h) ** 2 < 1, _LIPS)
        inner = (ua / (0.8 * mwidth)) ** 2 + ((w - cy) / (0.028 * open_ + 1e-4)) ** 2 < 1
        _paint(lab, inner & (open_ > 0.05), _MOUTH)

    @staticmethod
    def _paint_eyes(lab, u, w, p, v, col):
        """Eyes (sclera, iris, pupil; a blink flattens them), brows and glasses."""
        uf = _feature_u(u, col(v["yaw"]))
        ua = np.abs(uf)
        ex, ew, ey = col(p["eye_x"]), col(p["eye_w"]), col(p["eye_y"])
        eh = ew * col(p["eye_h"]) * (1 - col(v["blink"]))
        de = ua - ex
        dw = w - ey
        sclera = (de / ew) ** 2 + (dw / eh) ** 2 < 1
        _paint(lab, sclera, _SCLERA)
        di = de - col(v["gaze_x"]) * np.sign(uf)
        ir = 0.55 * ew * (0.6 + 0.4 * col(p["eye_h"]))
        r_iris = di * di + dw * dw
        _paint(lab, sclera & (r_iris < ir * ir), _IRIS)
        _paint(lab, sclera & (r_iris < 0.2 * ir * ir), _PUPIL)

        # Brows: slanted ellipses above the eyes, raised by expression.
        bw = ew * col(p["brow_len"])
        by = ey - col(p["brow_gap"]) - col(v["brow_raise"])
        bc = w - by + col(p["brow_tilt"]) * 0.25 * de
        _paint(lab, (de / bw) ** 2 + (bc / col(p["brow_th"])) ** 2 < 1, _BROW)

        # Glasses: elliptic rims and a bridge.
        gl = col(p["glasses"]) > 0
        rim = (de / (1.45 * ew)) ** 2 + (dw / (1.05 * ew)) ** 2
        frame = gl & (rim > 1) & (rim < 1.35)
        frame |= gl & (ua < ex - 1.3 * ew) & (np.abs(dw + 0.01) < 0.007)
        _paint(lab, frame, _FRAME)

    def _colour(self, lab, face_r, p, v):
        """Palette lookup, background, shading and exposure: float32 [N, R(y), 3, R(x)]."""
        n = lab.shape[0]
        pal = np.empty((n, 3, _NUM_REGIONS), np.float32)
        skin, hair = p["skin"], p["hair"]
        pal[:, :, _BG] = v["bg0"]
        pal[:, :, _HAIR] = hair
        pal[:, :, _HAIR_BACK] = hair * 0.85
        pal[:, :, _EAR] = skin * 0.92
        pal[:, :, _SKIN] = skin
        pal[:, :, _NECK] = skin * 0.8
        pal[:, :, _CLOTHES] = v["clothes"]
        pal[:, :, _BEARD] = hair * 0.8 + skin * 0.1
        pal[:, :, _BROW] = hair * 0.7
        pal[:, :, _SCLERA] = np.array([0.93, 0.92, 0.88], np.float32)
        pal[:, :, _IRIS] = p["iris"]
        pal[:, :, _PUPIL] = 0.04
        pal[:, :, _FRAME] = p["frame_dark"][:, None]
        pal[:, :, _NOSE] = skin * 0.86
        pal[:, :, _NOSTRIL] = skin * 0.35
        lip = skin * np.array([1.0, 0.62, 0.62], np.float32) * p["lip_tint"][:, None]
        pal[:, :, _LIPS] = lip
        pal[:, :, _MOUTH] = np.array([0.25, 0.05, 0.06], np.float32)
        pal[:, :, _OCCLUDER] = v["occ_colour"]
        # Channel-major gather straight into the [N, y, C, x] layout the resampler wants.
        # intp indices: np.take converts any other index dtype first, which cost 6× the
        # gather itself.
        base = (np.arange(n, dtype=np.intp) * (3 * _NUM_REGIONS))[:, None, None, None]
        chan = (np.arange(3, dtype=np.intp) * _NUM_REGIONS)[None, None, :, None]
        flat = lab.astype(np.intp)[:, :, None, :] + (base + chan)
        img = np.take(pal.reshape(-1), flat)

        g = self._grid
        col = lambda a: a.reshape(n, 1, 1).astype(np.float32)
        x, y = g[None, None, :] - 0.5, g[None, :, None] - 0.5
        # Background: a two-colour gradient with a sinusoidal texture; sin(ax + by + c) is
        # expanded into 1-D factors so no transcendental runs per pixel.
        bga, bgb = col(v["bg_angle"]), col(v["bg_angle2"])
        grad = 0.5 + np.cos(bga) * x + np.sin(bga) * y
        fx = col(v["bg_freq"]) * np.cos(bgb) * x + col(v["bg_phase"])
        fy = col(v["bg_freq"]) * np.sin(bgb) * y
        tex = np.sin(fx) * np.cos(fy) + np.cos(fx) * np.sin(fy)
        t = np.clip(grad + col(v["bg_tex"]) * tex, 0, 1) * (lab == _BG)
        img += t[:, :, None, :] * (v["bg1"] - v["bg0"])[:, None, :, None]
        # Rounded-face shading (darker towards the outline) and directional light.
        la = col(v["light_angle"])
        shade = 1 + col(v["light"]) * (np.cos(la) * x + np.sin(la) * y)
        shade -= 0.22 * np.minimum(face_r, 1) * (face_r < 1)
        # Exposure: contrast about mid-grey and per-channel gain (brightness × colour
        # cast). Both are affine per image, so they commute with the resampling and are
        # cheaper here on the coarse grid.
        gain = 255.0 * v["brightness"][:, None] * v["cast"]  # [N, 3]
        contrast = v["contrast"][:, None]
        scale = (gain * contrast).astype(np.float32)[:, None, :, None]
        offset = (gain * 0.5 * (1 - contrast)).astype(np.float32)[:, None, :, None]
        img *= shade[:, :, None, :] * scale
        img += offset
        # Sensor noise on the coarse grid (the resampling makes it slightly correlated,
        # like compressed camera noise); a fixed bank avoids drawing normals per pixel.
        img += self._noise_bank[v["noise_index"]] * v["noise"][:, None, None, None]
        return img

    def _resample(self, img, v):
        """Gaussian resampling R → S: float32 [N, S(y), C, S(x)].

        The blur is folded into the kernel. Kernels are shared by all images of one blur
        level, so the x pass is one large matrix product per level.
        """
        n, r, s = img.shape[0], self.render_size, self.image_size
        out = np.empty((n, s, 3, s), np.float32)
        level = self._blur_level(v)
        # One pair of products per run of images with the same level (`render` sorts
        # the images by level).
        starts = [0, *(np.flatnonzero(np.diff(level)) + 1)]
        for a, b in zip(starts, [*starts[1:], n], strict=True):
            k, m = self._kernels[level[a]], b - a  # k: [R, S]
            xs = (img[a:b].reshape(m * r * 3, r) @ k).reshape(m, r, 3 * s)  # [m, y, C·Sx]
            np.matmul(k.T[None], xs, out=out[a:b].reshape(m, s, 3 * s))
        return out

    def _blur_level(self, v):
        return np.minimum(np.rint(v["blur"] / self._blur_step).astype(np.int64), _BLUR_LEVELS - 1)

    def _finish(self, img, out):
        """Clipping and the uint8 [N, S(y), S(x), C] layout, written into `out`."""
        np.clip(img, 0, 255, out=img)
        img = img.astype(np.uint8)
        # Three channel copies: a third of the time of one 4-D transposing copy.
        for c in range(3):
            out[..., c] = img[:, :, c, :]


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
