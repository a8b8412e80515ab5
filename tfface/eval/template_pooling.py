"""Template features for the IJB-B/C 1:1 protocol: images → media → templates, as insightface.

insightface (`recognition/_evaluation_/ijb/ijb_11.py`, `ijb_evals.py`,
`arcface_torch/eval_ijbc.py`) builds one feature per template from the raw (unnormalised)
model outputs of its images:

1. image feature F = e + e_flip with the flip test (e_flip: the embedding of the mirrored
   crop), else F = e;
2. `norm_score` off: F ← F / ‖F‖, so every image counts the same. On (insightface's
   default, "N1" in ijb_11.py; ijb_evals.py names the same choice `use_norm_score=False`):
   the norm stays, so images the network is unsure about (small ‖F‖) weigh less;
3. `detector_score` on (default, "D1"): F ← s · F, s the detector's faceness score;
4. media feature: the mean of F over the template's images of one media (the frames of one
   video, or one still image);
5. template feature: the mean of its media features, then L2-normalised. insightface sums
   the media features instead; the sum and the mean differ by a positive factor, which the
   normalisation removes.

A template whose pooled feature is exactly zero (all its images had detector score 0) stays
zero, as sklearn's `normalize` leaves it in insightface's code, so its pairs score 0; such
templates are counted (`PooledTemplates.num_zero`) and reported. An image feature of norm 0
stays 0 in step 2 for the same reason.
"""

import dataclasses

import numpy as np

# Values per chunk of pooling's float64 working arrays (16 MB): cache-sized chunks measured
# ~5× faster than 65,536-row ones (BUILD_NOTES.md), and never a float64 copy of all of IJB's
# 227k+ × 512 embeddings at once.
_CHUNK_VALUES = 2**21
# Pair scoring computes F[a] @ F.T blocks of this many values (32 MB) when that is cheaper
# than gathering both rows of every pair.
_GEMM_BLOCK_VALUES = 2**22


def image_features(
    embeddings,
    flip_embeddings=None,
    faceness=None,
    flip=True,
    norm_score=True,
    detector_score=True,
):
    """Steps 1–3 above for images [N]: float64 features [N, D].

    Args:
        embeddings: [N, D] raw model outputs of the aligned crops.
        flip_embeddings: [N, D] raw outputs of the mirrored crops (needed when `flip`).
        faceness: [N] detector scores (needed when `detector_score`).
        flip, norm_score, detector_score: insightface's F1, N1, D1 switches.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"`embeddings` must be [N, D]. Received shape {e.shape}")
    if flip:
        if flip_embeddings is None:
            raise ValueError("`flip=True` needs `flip_embeddings`.")
        f = np.asarray(flip_embeddings, dtype=np.float64)
        if f.shape != e.shape:
            raise ValueError(
                f"`flip_embeddings` must match `embeddings`. Received {f.shape} and {e.shape}"
            )
        e = e + f
    if not norm_score:
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        e = e / np.where(norms == 0, 1.0, norms)
    if detector_score:
        if faceness is None:
            raise ValueError("`detector_score=True` needs `faceness`.")
        s = np.asarray(faceness, dtype=np.float64).reshape(-1)
        if s.shape != (e.shape[0],):
            raise ValueError(
                f"`faceness` must hold one score per image. Received {s.shape[0]} scores "
                f"for {e.shape[0]} images"
            )
        e = e * s[:, None]
    return e


@dataclasses.dataclass(frozen=True)
class PooledTemplates:
    """Unit template features (zero rows for zero-norm templates).

    Attributes:
        template_ids: int64 [T], sorted.
        features: float64 [T, D].
        num_media: int64 [T], media per template.
        num_zero: templates whose pooled feature was zero.
    """

    template_ids: np.ndarray
    features: np.ndarray
    num_media: np.ndarray
    num_zero: int

    def rows(self, template_ids):
        """Rows of `template_ids` in `features`; unknown ids raise."""
        template_ids = np.asarray(template_ids)
        rows = np.searchsorted(self.template_ids, template_ids)
        rows = np.minimum(rows, self.template_ids.size - 1)
        bad = np.flatnonzero(self.template_ids[rows] != template_ids)
        if bad.size:
            raise ValueError(
                f"Templates {np.unique(template_ids[bad])[:10].tolist()} have no pooled "
                "feature (no images)."
            )
        return rows

    def scores(self, template1, template2, chunk=100_000):
        """Cosine similarity of template pairs (`template1[i]`, `template2[i]`): float64 [P].

        IJB pairs reuse few templates on one side (IJB-B: 1,845 distinct first templates
        for 8M pairs), so when it is cheaper the side with fewer distinct templates is
        multiplied against all features in blocks (F[a] @ Fᵀ, BLAS) and each pair's score
        read from the block; otherwise both rows of every pair are gathered, `chunk` pairs
        at a time.
        """
        r1 = self.rows(template1)
        r2 = self.rows(template2)
        out = np.empty(r1.size, dtype=np.float64)
        if r1.size == 0:
            return out
        num_templates = self.features.shape[0]
        u1 = np.flatnonzero(np.bincount(r1, minlength=num_templates))
        u2 = np.flatnonzero(np.bincount(r2, minlength=num_templates))
        if u2.size < u1.size:
            r1, r2, u1 = r2, r1, u2  # the cosine is symmetric
        if u1.size * num_templates <= 8 * r1.size:
            local = np.zeros(num_templates, dtype=np.int64)
            block = max(1, _GEMM_BLOCK_VALUES // num_templates)
            for start in range(0, u1.size, block):
                rows = u1[start : start + block]
                gram = self.features[rows] @ self.features.T  # [block, T]
                local[rows] = np.arange(rows.size)
                # u1 is sorted and holds every r1 value: this range is exactly the block.
                pairs = np.flatnonzero((r1 >= rows[0]) & (r1 <= rows[-1]))
                out[pairs] = gram[local[r1[pairs]], r2[pairs]]
            return out
        for start in range(0, r1.size, chunk):
            a = self.features[r1[start : start + chunk]]
            b = self.features[r2[start : start + chunk]]
            out[start : start + chunk] = np.einsum("ij,ij->i", a, b)
        return out


def pool_templates(
    embeddings,
    templates,
    medias,
    flip_embeddings=None,
    faceness=None,
    flip=True,
    norm_score=True,
    detector_score=True,
    chunk_rows=None,
):
    """Steps 1–5 above: the unit feature of every template.

    Args:
        embeddings, flip_embeddings, faceness: per image, see `image_features`.
        templates, medias: int [N], each image's template and media id. A media id is
            pooled within each template separately (a media shared by two templates is
            averaged once in each).
        flip, norm_score, detector_score: insightface's F1, N1, D1 switches.
        chunk_rows: images processed at once (whole templates per chunk; default about
            2M values).

    Returns:
        `PooledTemplates`.
    """
    templates = np.asarray(templates).reshape(-1)
    medias = np.asarray(medias).reshape(-1)
    n = templates.size
    if medias.size != n or np.shape(embeddings)[0] != n:
        raise ValueError(
            "`embeddings`, `templates` and `medias` must have one row per image. Received "
            f"{np.shape(embeddings)[0]}, {n} and {medias.size}"
        )
    if n == 0:
        raise ValueError("No images to pool.")
    order = np.lexsort((medias, templates))  # by template, then media
    t_sorted = templates[order]
    template_ids, t_start = np.unique(t_sorted, return_index=True)
    t_end = np.append(t_start[1:], n)
    dim = np.shape(embeddings)[1]
    chunk_rows = chunk_rows or max(1, _CHUNK_VALUES // max(1, dim))
    features = np.zeros((template_ids.size, dim), dtype=np.float64)
    num_media = np.zeros(template_ids.size, dtype=np.int64)
    a = 0
    while a < template_ids.size:
        # Whole templates only, at least one, about `chunk_rows` images.
        b = max(a + 1, int(np.searchsorted(t_end, t_start[a] + chunk_rows, side="right")))
        rows = order[t_start[a] : t_end[b - 1]]
        f = image_features(
            np.asarray(embeddings)[rows],
            None if flip_embeddings is None else np.asarray(flip_embeddings)[rows],
            None if faceness is None else np.asarray(faceness)[rows],
            flip=flip,
            norm_score=norm_score,
            detector_score=detector_score,
        )
        t, m = templates[rows], medias[rows]
        group = np.flatnonzero(np.concatenate([[True], (t[1:] != t[:-1]) | (m[1:] != m[:-1])]))
        sizes = np.diff(np.append(group, rows.size))
        media_means = np.add.reduceat(f, group, axis=0) / sizes[:, None]
        media_t = t[group]
        first = np.flatnonzero(np.concatenate([[True], media_t[1:] != media_t[:-1]]))
        counts = np.diff(np.append(first, group.size))
        features[a:b] = np.add.reduceat(media_means, first, axis=0) / counts[:, None]
        num_media[a:b] = counts
        a = b
    norms = np.linalg.norm(features, axis=1)
    zero = norms == 0
    features[~zero] /= norms[~zero, None]
    return PooledTemplates(template_ids, features, num_media, int(np.sum(zero)))
