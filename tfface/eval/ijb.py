"""IJB-B / IJB-C 1:1 template verification, following insightface's evaluation.

Pipeline (insightface `recognition/_evaluation_/ijb/ijb_11.py`, `ijb_evals.py`):

1. every loose crop is aligned with its five points to the ArcFace template (similarity
   transform, bilinear warp, black outside the crop) at the model's input size, and
   embedded together with its mirror image: raw model outputs, not normalised
   (`embed_loose_crops`);
2. images → media → templates (`template_pooling`: flip test, norm weighting and detector
   score weighting are the F1/N1/D1 switches, all on by default as in ijb_11.py);
3. cosine similarity of the unit template features of every protocol pair;
4. ROC over all pairs; TAR at FAR 1e-6 … 1e-1 under two rules (`verification.tar_at_far`):
   "at_most", the highest TAR whose FAR does not exceed the target (the headline figure),
   and "insightface", the operating point nearest the target on sklearn's ROC, as
   insightface's scripts print it. A target below 1/#impostors is reported unreachable.

`embed_fn` maps float32 [N, S, S, 3] 0–255 RGB images to [N, D] (as everywhere in
`tfface.eval`). A tfface embedding model ends with `L2Normalize`, so its norms carry no
information and norm weighting changes nothing; insightface's numbers use backbones with
unnormalised outputs.
"""

import collections
import concurrent.futures
import dataclasses
import json
import math
import os
import sys

import numpy as np

from tfface.eval import embed
from tfface.eval import template_pooling
from tfface.eval import verification

# ROC points kept in the JSON report and drawn in the PNG: the curve's upper envelope at this
# many log-spaced FARs (IJB-C has 15.6M pairs, too many to write out).
_ROC_POINTS = 400


def load_aligned(path, landmarks, image_size):
    """The loose crop at `path` aligned by its five `landmarks` to the ArcFace template:
    uint8 [S, S, 3] RGB."""
    # tfface.align's package imports the detector (Keras); only embedding needs it.
    from tfface.align.align_face import align_face

    image = embed.decode_image(path, source=path)
    return align_face(image, landmarks, image_size=image_size)


def _prepare(paths, landmarks, image_size, indices):
    images, ok, failed = [], [], []
    for i in indices:
        try:
            images.append(load_aligned(paths[i], landmarks[i], image_size))
            ok.append(i)
        except (OSError, ValueError) as e:
            failed.append((int(i), f"{paths[i]}: {e}"))
    return ok, images, failed


def embed_loose_crops(
    embed_fn,
    paths,
    landmarks,
    image_size,
    batch_size=64,
    workers=4,
    progress=False,
    on_batch=None,
):
    """Aligns and embeds loose crops and their mirror images (raw model outputs).

    Decoding and warping run in `workers` threads, a few batches ahead of the model. An
    image that cannot be read or decoded does not stop the run: it is listed in the
    returned failures (with its path and the reason) and its rows are NaN.

    Args:
        embed_fn: float32 [N, S, S, 3] (0–255) → [N, D].
        paths: [N] image files; landmarks: [N, 5, 2] in their pixels.
        image_size: crop side S.
        batch_size: crops per `embed_fn` call (each call gets the crops and their mirrors,
            2 × batch_size images).
        workers: threads that decode and align.
        progress: show a tqdm bar on stderr.
        on_batch: called as `on_batch(indices, embeddings, flip_embeddings)` after every
            batch (the CLI adds them to its cache).

    Returns:
        (embeddings float32 [N, D], flip_embeddings float32 [N, D], failures: list of
        (index, message)).
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if workers < 1:
        raise ValueError(f"`workers` must be >= 1. Received: workers={workers}")
    from tqdm import tqdm

    n = len(paths)
    batches = [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    out = flips = None
    failures = []
    bar = tqdm(total=n, desc="embed", unit="img", file=sys.stderr, disable=not progress)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        queued = iter(batches)
        try:
            for batch in queued:
                pending.append(pool.submit(_prepare, paths, landmarks, image_size, batch))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                ok, images, failed = pending.popleft().result()
                batch = next(queued, None)
                if batch is not None:
                    pending.append(pool.submit(_prepare, paths, landmarks, image_size, batch))
                failures.extend(failed)
                if images:
                    x = np.stack(images).astype(np.float32)
                    y = np.asarray(embed_fn(np.concatenate([x, x[:, :, ::-1, :]])))
                    if y.ndim != 2 or y.shape[0] != 2 * x.shape[0]:
                        raise ValueError(
                            "`embed_fn` must map [N, S, S, 3] images to [N, D] embeddings. "
                            f"Received output shape {y.shape} for input shape "
                            f"{(2 * x.shape[0], *x.shape[1:])}"
                        )
                    if not np.all(np.isfinite(y)):
                        raise ValueError(
                            f"`embed_fn` returned NaN or inf for images {ok[:10]} (first: "
                            f"{paths[ok[0]]})."
                        )
                    if out is None:
                        out = np.full((n, y.shape[1]), np.nan, dtype=np.float32)
                        flips = np.full((n, y.shape[1]), np.nan, dtype=np.float32)
                    out[ok] = y[: len(ok)]
                    flips[ok] = y[len(ok) :]
                    if on_batch is not None:
                        on_batch(np.asarray(ok), out[ok], flips[ok])
                bar.update(len(ok) + len(failed))
        finally:
            for future in pending:
                future.cancel()
            bar.close()
    if out is None:
        out = flips = np.zeros((n, 0), np.float32)
    return out, flips, failures


@dataclasses.dataclass(frozen=True)
class IJBResult:
    """Everything `evaluate_ijb` measures; `to_dict()` is JSON-ready (NaN → None).

    `tar_at_far` uses the "at_most" rule (FAR never above the target) and
    `tar_at_far_insightface` insightface's nearest-point rule; each entry is
    {"far", "tar", "threshold", "far_actual", "resolvable"}. Thresholds are cosine
    similarities of template features. `roc_far`/`roc_tar` are the ROC's upper envelope at
    log-spaced FARs (exact at those FARs), not every point.
    """

    dataset: str
    model: str
    image_size: int
    flip: bool
    norm_score: bool
    detector_score: bool
    num_images: int
    num_unused_images: int
    num_templates: int
    num_media: int
    num_zero_templates: int
    num_pairs: int
    num_genuine: int
    num_impostor: int
    subset: dict
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: tuple
    tar_at_far_insightface: tuple
    roc_far: np.ndarray = dataclasses.field(repr=False)
    roc_tar: np.ndarray = dataclasses.field(repr=False)

    @property
    def mode(self):
        """insightface's name of the pooling options, e.g. "N1D1F1"."""
        return f"N{int(self.norm_score)}D{int(self.detector_score)}F{int(self.flip)}"

    def to_dict(self):
        d = {"mode": self.mode}
        for field in dataclasses.fields(self):
            d[field.name] = verification._jsonable(getattr(self, field.name))
        return d


def _roc_envelope(fpr, tpr, num_impostor, num=_ROC_POINTS):
    """The ROC's best TAR at `num` log-spaced FARs from 1/#impostors to 1 (plus FAR 0)."""
    grid = np.logspace(math.log10(1.0 / num_impostor), 0.0, num)
    k = np.searchsorted(fpr, np.concatenate([[0.0], grid]), side="right") - 1
    k = np.unique(k)
    return fpr[k], tpr[k]


def evaluate_ijb(
    protocol,
    embeddings,
    flip_embeddings=None,
    flip=True,
    norm_score=True,
    detector_score=True,
    fars=verification.DEFAULT_TAR_FARS,
    model="",
    image_size=0,
):
    """Pools, scores and measures the 1:1 protocol from per-image raw embeddings.

    Args:
        protocol: an `IJBProtocol` (its images in the rows of `embeddings`).
        embeddings, flip_embeddings: [N, D] raw outputs for the aligned crops and their
            mirrors.
        flip, norm_score, detector_score: the pooling switches (`template_pooling`).
        fars: the TAR@FAR targets.
        model, image_size: recorded in the result.

    Returns:
        (`IJBResult`, scores float64 [P] in the protocol's pair order).
    """
    pooled = template_pooling.pool_templates(
        embeddings,
        protocol.templates,
        protocol.medias,
        flip_embeddings=flip_embeddings,
        faceness=protocol.faceness,
        flip=flip,
        norm_score=norm_score,
        detector_score=detector_score,
    )
    scores = pooled.scores(protocol.template1, protocol.template2)
    labels = protocol.labels
    roc = verification.roc_curve(scores, labels)
    fpr, tpr, _ = roc
    eer, eer_threshold = verification.equal_error_rate(scores, labels, roc=roc)
    roc_far, roc_tar = _roc_envelope(fpr, tpr, protocol.num_impostor)
    result = IJBResult(
        dataset=protocol.dataset,
        model=str(model),
        image_size=int(image_size),
        flip=bool(flip),
        norm_score=bool(norm_score),
        detector_score=bool(detector_score),
        num_images=int(protocol.templates.size),
        num_unused_images=int(protocol.num_unused_images),
        num_templates=int(pooled.template_ids.size),
        num_media=int(np.sum(pooled.num_media)),
        num_zero_templates=pooled.num_zero,
        num_pairs=int(labels.size),
        num_genuine=protocol.num_genuine,
        num_impostor=protocol.num_impostor,
        subset=protocol.subset_info,
        auc=float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)),
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far=tuple(verification.tar_at_far(scores, labels, fars, "at_most", roc)),
        tar_at_far_insightface=tuple(
            verification.tar_at_far(scores, labels, fars, "insightface", roc)
        ),
        roc_far=roc_far,
        roc_tar=roc_tar,
    )
    return result, scores


def _tar_text(entry):
    return f"{entry['tar']:.4f}" if entry["resolvable"] else "unreachable"


def format_ijb(result):
    """One-line summary: "IJBC 1:1 N1D1F1, 15658489 pairs: TAR@FAR 1e-6 0.8512, …, AUC …"."""
    tars = ", ".join(
        f"{verification._format_far(e['far'])} {_tar_text(e)}" for e in result.tar_at_far
    )
    subset = " (subset)" if result.subset else ""
    return (
        f"{result.dataset} 1:1 {result.mode}, {result.num_pairs} pairs{subset} "
        f"({result.num_genuine} genuine): TAR@FAR {tars}; AUC {result.auc:.4f}, "
        f"EER {result.eer:.4f}"
    )


def write_ijb_report(result, json_path, png_path=None, title=None, extra=None):
    """Writes `result` as JSON (with the one-line summary and the `extra` dict's entries) and
    the ROC as a PNG with a log FAR axis from 1/#impostors to 1 and the TAR@FAR points
    marked."""
    for path in (json_path, png_path):
        if path and os.path.dirname(os.fspath(path)):
            os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
    payload = {"summary": format_ijb(result), **result.to_dict(), **(extra or {})}
    with open(json_path, "w") as f:
        json.dump(payload, f, indent=1, allow_nan=False)
        f.write("\n")
    if png_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    floor = 1.0 / result.num_impostor
    fig, ax = plt.subplots(figsize=(6.4, 5), dpi=100)
    try:
        ax.step(
            np.maximum(result.roc_far, floor),
            result.roc_tar,
            where="post",
            label=f"ROC (AUC {result.auc:.4f})",
        )
        for entry in result.tar_at_far:
            if entry["resolvable"]:
                ax.plot(
                    [max(entry["far_actual"], floor)],
                    [entry["tar"]],
                    "o",
                    label=f"TAR@FAR={verification._format_far(entry['far'])}: {entry['tar']:.4f}",
                )
        unreachable = [e["far"] for e in result.tar_at_far if not e["resolvable"]]
        ax.set_xscale("log")
        ax.set_xlim(floor, 1.0)
        ax.set_ylim(0.0, 1.01)
        ax.set_xlabel(f"false accept rate (log; floor 1/{result.num_impostor} impostor pairs)")
        ax.set_ylabel("true accept rate")
        note = (
            f"\nunreachable: FAR {', '.join(verification._format_far(f) for f in unreachable)}"
            if unreachable
            else ""
        )
        ax.set_title(
            title
            or f"{result.dataset} 1:1 ({result.mode}), {result.num_pairs} template pairs, "
            f"{result.model}{note}",
            fontsize=9,
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(png_path)
    finally:
        plt.close(fig)
