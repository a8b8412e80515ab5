"""The synthetic world's parameters: what every identity and every image of it looks like.

Nothing here draws from a random-number generator with state. An identity's 40 uniforms
come from a counter-based hash (SplitMix64) of `(seed, identity_id)`, an image's 48 from
`(seed, identity_id, variation_seed)`, so any identity or image can be drawn on its own, in
any order or batch (random access). `identity_params` and `variation_params` map them to
the named, float32 [N] parameters the renderer (`renderer.py`) draws.
"""

import numpy as np

_U64 = np.uint64
_MASK53 = float(2**-53)

_HAIR_COLOURS = np.array(
    [
        [0.07, 0.06, 0.06],  # black
        [0.22, 0.13, 0.07],  # dark brown
        [0.45, 0.30, 0.16],  # brown
        [0.86, 0.72, 0.45],  # blond
        [0.62, 0.27, 0.10],  # red
        [0.70, 0.70, 0.70],  # grey
    ],
    dtype=np.float32,
)
_EYE_COLOURS = np.array(
    [
        [0.30, 0.17, 0.08],  # brown
        [0.25, 0.45, 0.80],  # blue
        [0.30, 0.55, 0.28],  # green
        [0.50, 0.55, 0.60],  # grey
        [0.55, 0.42, 0.18],  # hazel
    ],
    dtype=np.float32,
)
_SKIN_DARK = np.array([0.33, 0.20, 0.13], dtype=np.float32)
_SKIN_LIGHT = np.array([0.97, 0.82, 0.71], dtype=np.float32)

# Identity parameter columns (uniform draws in [0, 1), mapped to ranges in `identity_params`).
_NUM_IDENTITY_PARAMS = 40
# Variation parameter columns.
_NUM_VARIATION_PARAMS = 48
# Sensor-noise images in the renderer's bank; an image's `noise_index` picks one.
NOISE_BANK = 8


def _splitmix64(z):
    z = z + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def hash_uniform(keys, num):
    """Counter-based uniform draws in [0, 1): float64 [N, num] from uint64 keys [N].

    Each row depends only on its key, so any identity or image can be drawn on its own.
    """
    keys = np.asarray(keys, dtype=np.uint64).reshape(-1, 1)
    counters = np.arange(num, dtype=np.uint64).reshape(1, -1)
    with np.errstate(over="ignore"):
        z = _splitmix64(_splitmix64(keys) ^ (counters * _U64(0xD1B54A32D192ED03)))
    return (z >> _U64(11)).astype(np.float64) * _MASK53


def _key(*parts):
    """Folds int arrays/scalars into one uint64 key per row (broadcast)."""
    arrays = np.broadcast_arrays(*[np.asarray(p, dtype=np.int64) for p in parts])
    with np.errstate(over="ignore"):
        key = np.full(arrays[0].shape, 0x243F6A8885A308D3, dtype=np.uint64)
        for a in arrays:
            key = _splitmix64(key ^ a.astype(np.uint64))
    return key


def _lerp(t, lo, hi):
    return (lo + (hi - lo) * t).astype(np.float32)


def _pick(palette, t, jitter, amount):
    """Palette colour chosen by t in [0, 1), with per-channel jitter in ±amount."""
    idx = np.minimum((t * len(palette)).astype(np.int64), len(palette) - 1)
    return np.clip(palette[idx] + (jitter - 0.5) * 2 * amount, 0, 1).astype(np.float32)


def identity_params(seed, identity_ids):
    """Dict of float32 [N] identity parameters (shape, colours, features).

    Args:
        seed: int, the world seed.
        identity_ids: int array [N].
    """
    ids = np.asarray(identity_ids, dtype=np.int64).reshape(-1)
    u = hash_uniform(_key(seed, ids, 1), _NUM_IDENTITY_PARAMS)
    p = {}
    p["face_w"] = _lerp(u[:, 0], 0.26, 0.37)
    p["face_top"] = _lerp(u[:, 1], 0.38, 0.50)
    p["jaw_h"] = _lerp(u[:, 2], 0.31, 0.42)
    p["jaw_taper"] = _lerp(u[:, 3], 0.0, 0.45)
    tone = u[:, 4:5] ** 0.8
    skin = _SKIN_DARK + (_SKIN_LIGHT - _SKIN_DARK) * tone
    skin = skin * (1 + (u[:, 5:8] - 0.5) * 0.16)
    p["skin"] = np.clip(skin, 0, 1).astype(np.float32)
    p["eye_x"] = _lerp(u[:, 8], 0.125, 0.19)
    p["eye_y"] = _lerp(u[:, 9], -0.165, -0.115)
    p["eye_w"] = _lerp(u[:, 10], 0.042, 0.072)
    p["eye_h"] = _lerp(u[:, 11], 0.35, 0.65)  # fraction of eye_w
    p["iris"] = _pick(_EYE_COLOURS, u[:, 12], u[:, 13:16], 0.08)
    p["brow_th"] = _lerp(u[:, 16], 0.010, 0.032)
    p["brow_tilt"] = _lerp(u[:, 17], -0.45, 0.45)
    p["brow_gap"] = _lerp(u[:, 18], 0.035, 0.085)
    p["brow_len"] = _lerp(u[:, 19], 0.9, 1.5)  # fraction of eye_w
    p["nose_y"] = _lerp(u[:, 20], 0.015, 0.07)
    p["nose_w"] = _lerp(u[:, 21], 0.028, 0.07)
    p["mouth_w"] = _lerp(u[:, 22], 0.095, 0.165)
    p["mouth_th"] = _lerp(u[:, 23], 0.010, 0.032)
    p["mouth_y"] = _lerp(u[:, 24], 0.195, 0.255)
    p["hair"] = _pick(_HAIR_COLOURS, u[:, 25], u[:, 26:29], 0.07)
    p["hairline"] = _lerp(u[:, 29], 0.06, 0.26)  # below the top of the face
    p["hair_part"] = _lerp(u[:, 30], -0.5, 0.5)
    p["hair_volume"] = _lerp(u[:, 31], 0.0, 0.09) * (u[:, 32] > 0.1)  # 10% bald
    p["hair_long"] = (u[:, 33] < 0.35).astype(np.float32) * _lerp(u[:, 34], 0.15, 0.6)
    p["glasses"] = (u[:, 35] < 0.25).astype(np.float32)
    p["beard"] = (u[:, 36] < 0.2).astype(np.float32)
    p["ear"] = _lerp(u[:, 37], 0.035, 0.065)
    p["lip_tint"] = _lerp(u[:, 38], 0.55, 0.85)
    p["frame_dark"] = _lerp(u[:, 39], 0.05, 0.6)
    return p


def variation_params(seed, nuisance, image_size, identity_ids, variation_seeds):
    """Dict of float32 [N] nuisance parameters of each (identity, variation) image.

    Args:
        seed: int, the world seed.
        nuisance: float >= 0, scales every nuisance factor (`SyntheticFaces`).
        image_size: int, output pixels: the blur is drawn in output pixels.
        identity_ids: int array [N].
        variation_seeds: int array [N].
    """
    ids = np.asarray(identity_ids, dtype=np.int64).reshape(-1)
    var = np.asarray(variation_seeds, dtype=np.int64).reshape(-1)
    u = hash_uniform(_key(seed, ids, var, 2), _NUM_VARIATION_PARAMS)
    a = nuisance
    c = lambda col, half: ((u[:, col] - 0.5) * 2 * half * a).astype(np.float32)
    v = {}
    v["roll"] = c(0, 0.30)
    v["yaw"] = c(1, 1.0)
    v["scale"] = np.exp(c(2, 0.16)).astype(np.float32)
    v["shift_x"] = c(3, 0.08)
    v["shift_y"] = c(4, 0.07)
    v["smile"] = c(5, 1.0)
    v["mouth_open"] = (np.maximum(u[:, 6] - 0.55, 0) / 0.45 * a).astype(np.float32)
    v["brow_raise"] = (u[:, 7] * 0.025 * a).astype(np.float32)
    v["blink"] = ((u[:, 8] < 0.12 * a) * 0.85).astype(np.float32)
    v["light_angle"] = (u[:, 9] * 2 * np.pi).astype(np.float32)
    v["light"] = (u[:, 10] * 0.9 * a).astype(np.float32)
    v["brightness"] = np.exp(c(11, 0.45)).astype(np.float32)
    v["contrast"] = np.exp(c(12, 0.35)).astype(np.float32)
    v["cast"] = np.exp((u[:, 13:16] - 0.5) * 2 * 0.22 * a).astype(np.float32)
    v["bg0"] = u[:, 16:19].astype(np.float32)
    # At nuisance 0 the background is one plain colour; at >= 1 a full two-colour mix.
    v["bg1"] = (u[:, 16:19] + (u[:, 19:22] - u[:, 16:19]) * min(a, 1.0)).astype(np.float32)
    v["bg_angle"] = (u[:, 22] * 2 * np.pi).astype(np.float32)
    v["bg_freq"] = _lerp(u[:, 23], 4.0, 30.0)
    v["bg_tex"] = (u[:, 24] * 0.6 * min(a, 1.0)).astype(np.float32)
    v["bg_phase"] = (u[:, 25] * 2 * np.pi).astype(np.float32)
    v["clothes"] = u[:, 26:29].astype(np.float32)
    occluded = u[:, 29] < 0.3 * min(a, 2.0)
    v["occ_x"] = _lerp(u[:, 30], 0.15, 0.85)
    v["occ_y"] = _lerp(u[:, 31], 0.2, 0.9)
    v["occ_w"] = (_lerp(u[:, 32], 0.06, 0.2) * occluded).astype(np.float32)
    v["occ_h"] = (_lerp(u[:, 33], 0.06, 0.2) * occluded).astype(np.float32)
    v["occ_colour"] = u[:, 34:37].astype(np.float32)
    v["blur"] = (u[:, 37] ** 2 * 1.6 * a * image_size / 112).astype(np.float32)
    v["noise"] = (u[:, 38] * 10.0 * a).astype(np.float32)
    v["noise_index"] = (u[:, 39] * NOISE_BANK).astype(np.int64)
    v["gaze_x"] = c(41, 0.012)
    v["bg_angle2"] = (u[:, 42] * 2 * np.pi).astype(np.float32)
    v["bg_freq2"] = _lerp(u[:, 43], 4.0, 30.0)
    return v
