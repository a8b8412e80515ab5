"""Procedural, identity-labelled synthetic faces: the default training data of tfface.

Nothing has to be downloaded to train or evaluate: every identity is a point in a
continuous parameter space (face shape, jaw, skin tone, eye spacing/size/colour, brows,
nose, mouth, hair colour and style, ears, glasses, beard), drawn from a counter-based hash
of `(seed, identity_id)`. Every image of an identity draws its own nuisance parameters from
`(seed, identity_id, variation_seed)`: pose (roll, yaw-like squeeze and shift of the
features, scale, shift), expression (mouth open, smile, brow raise, blink), lighting
(directional gradient, brightness, contrast, colour cast), background (two colours, a
gradient and a texture), clothes, occlusion (a random patch), blur and sensor noise. Any
image is therefore reproducible on its own (random access), and a batch is rendered at once
with vectorised NumPy over [N, H, W] grids.

Splits. Training identities are ids `0 … num_identities-1`. Held-out identities are ids
`HELDOUT_ID_OFFSET + i` (10**6 + i) rendered with the same seed: their parameters come from
the same distribution but never coincide with a training id, so verification pairs built
from them measure generalisation to unseen people.

Landmarks. `render` also returns the 5 landmarks (left eye, right eye, nose tip, left mouth
corner, right mouth corner; "left" is the image left) in output pixels. At zero pose they
sit on the ArcFace 112×112 template scaled to the image size, moved only by the identity's
own proportions.

Process settings. The first render of at least one image in a process changes two
settings of the whole process, for the rest of it: NumPy's BLAS is limited to one thread
(`threadpoolctl`), and glibc's malloc keeps freed memory mapped (trim/mmap thresholds
256/32 MiB). With them a default training batch (128 images at 64 px) renders in
22.0–23.6 CPU-ms against 71–79 without; images do not depend on them. Call
`disable_process_tuning()` before the first render to keep both off (`process_tuning.py`
has the measurements).

Modules:
- `parameters`: the counter-based hash and the identity / image parameter tables;
- `renderer`: `SyntheticFaces`: rasteriser, colour, resampling, uint8 layout, landmarks;
- `process_tuning`: the process-wide settings above and their opt-out;
- `source`: `SyntheticSource` (the `synthetic` data spec), `heldout_images`,
  `HELDOUT_ID_OFFSET`.

Names load on first access: `parameters`, `renderer` and `process_tuning` are NumPy only,
`source` imports TensorFlow.
"""

from tfface._lazy import lazy_getattr

_EXPORTS = {
    "HELDOUT_ID_OFFSET": "source",
    "SyntheticFaces": "renderer",
    "SyntheticSource": "source",
    "disable_process_tuning": "process_tuning",
    "hash_uniform": "parameters",
    "heldout_images": "source",
    "tune_process_for_rendering": "process_tuning",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
