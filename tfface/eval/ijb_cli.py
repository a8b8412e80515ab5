"""`python -m tfface.eval ijb`: IJB-B / IJB-C 1:1 verification from the release's own files.

    python -m tfface.eval ijb --root IJB_release/IJBC --dataset IJBC --model r50.keras --out eval/

Everything that can be checked without the model is checked before TensorFlow loads, and a
problem exits 2 with a message: the arguments, the release layout, every metadata line
(`file:line` on error), that every loose crop the protocol needs exists, and the embedding
cache (same model fingerprint, dataset and crop size). The model, and TensorFlow with it,
is loaded only when the cache lacks images. An image that cannot be decoded does not stop
the embedding: the others are embedded and cached, then the run exits 1 listing it.

Writes `OUT/NAME.json`, `OUT/NAME_roc.png` (and `OUT/NAME_scores.npz` with
`--save_scores`); NAME defaults to `<dataset>_<mode>` (e.g. `ijbc_N1D1F1`, insightface's
name of the pooling options), with `_limit<N>` for a subset. The cache defaults to
`OUT/<dataset>_embeddings.npz`, shared by every mode and subset.
"""

import os
import sys
import time

import numpy as np

from tfface.eval import embedding_cache
from tfface.eval import ijb
from tfface.eval import ijb_protocol

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A bad argument or input found before anything runs (exit 2)."""


def add_parser(subparsers):
    """Adds the `ijb` command to `python -m tfface.eval`'s subparsers."""
    p = subparsers.add_parser(
        "ijb",
        help="IJB-B / IJB-C 1:1 template verification (TAR at FAR 1e-6 … 1e-1)",
        description="IJB-B / IJB-C 1:1 template verification from insightface's release of "
        "the benchmark (meta/ files and loose crops); see tfface.eval.ijb_cli.",
    )
    p.add_argument(
        "--root",
        required=True,
        help="the dataset folder of insightface's IJB release (holding meta/ and "
        "loose_crop/), or its parent",
    )
    p.add_argument("--dataset", required=True, type=str.upper, choices=ijb_protocol.DATASETS)
    p.add_argument("--model", required=True, help=".keras file or SavedModel directory")
    p.add_argument("--out", required=True, help="output directory for the JSON, PNG and cache")
    p.add_argument("--name", default=None, help="report file stem (default: <dataset>_<mode>)")
    p.add_argument(
        "--image_size",
        "--image-size",
        type=int,
        default=None,
        help="crop side (default: the model's)",
    )
    p.add_argument("--batch_size", "--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=4, help="threads that decode and align crops")
    p.add_argument(
        "--no_flip",
        "--no-flip",
        action="store_true",
        help="pool f(x) only, not f(x) + f(flip(x)) (insightface F0)",
    )
    p.add_argument(
        "--no_norm_score",
        "--no-norm-score",
        action="store_true",
        help="L2-normalise each image's feature before pooling (insightface N0); by default "
        "the raw norm weighs the image",
    )
    p.add_argument(
        "--no_detector_score",
        "--no-detector-score",
        action="store_true",
        help="do not weigh images by their detector score (insightface D0)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="quick check: a seeded sample of at most N pairs, half genuine (low FARs become "
        "unreachable)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    p.add_argument(
        "--cache", default=None, help="embedding cache .npz (default: OUT/<dataset>_embeddings.npz)"
    )
    p.add_argument(
        "--no_cache", "--no-cache", action="store_true", help="neither read nor write a cache"
    )
    p.add_argument(
        "--save_scores",
        "--save-scores",
        action="store_true",
        help="also write every pair's score and label to OUT/NAME_scores.npz",
    )
    p.add_argument("--no_progress", "--no-progress", action="store_true")
    return p


def _check_model_path(model):
    model = os.fspath(model)
    if model.endswith(".keras"):
        if not os.path.isfile(model):
            raise UsageError(f"--model: no such .keras file: {model!r}")
        return
    if os.path.isfile(os.path.join(model, "saved_model.pb")):
        return
    raise UsageError(
        "--model must be a .keras file or a SavedModel directory (with saved_model.pb). "
        f"Received: {model!r}" + ("" if os.path.exists(model) else " (no such path)")
    )


def _mode(args):
    flags = (not args.no_norm_score, not args.no_detector_score, not args.no_flip)
    return "N{:d}D{:d}F{:d}".format(*flags)


def check(args):
    """Every check that needs no model (no TensorFlow). Raises `UsageError`,
    `FileNotFoundError`, `IJBFormatError` or `CacheMismatchError`.

    Returns:
        dict: protocol (subset applied), cache (or None), name, out.
    """
    for flag in ("batch_size", "workers"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1. Received: {getattr(args, flag)}")
    if args.image_size is not None and args.image_size < 8:
        raise UsageError(f"--image_size must be >= 8. Received: {args.image_size}")
    if args.limit is not None and args.limit < 2:
        raise UsageError(f"--limit must be >= 2 pairs. Received: {args.limit}")
    if args.no_cache and args.cache:
        raise UsageError("--cache and --no_cache contradict each other.")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} exists and is not a directory.")
    _check_model_path(args.model)
    protocol = ijb_protocol.load_ijb_protocol(args.root, args.dataset)
    if args.limit is not None:
        protocol = protocol.subset(args.limit, args.seed)
    missing = protocol.missing_images()
    if missing:
        shown = "\n".join(f"  {p}" for p in missing[:20])
        more = f"\n  … and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise FileNotFoundError(
            f"{len(missing)} of the {len(protocol.image_names)} loose crops the protocol "
            f"needs are missing:\n{shown}{more}"
        )
    cache = None
    if not args.no_cache:
        path = args.cache or os.path.join(args.out, f"{args.dataset.lower()}_embeddings.npz")
        cache = embedding_cache.EmbeddingCache.open(
            path,
            args.dataset,
            embedding_cache.model_fingerprint(args.model),
            model=args.model,
        )
        if args.image_size is not None and len(cache):
            cache.set_image_size(args.image_size)
    name = args.name or f"{args.dataset.lower()}_{_mode(args)}" + (
        f"_limit{args.limit}" if args.limit is not None else ""
    )
    return {"protocol": protocol, "cache": cache, "name": name}


def _load_model(args):
    # cli imports this module: imported here, not at the top.
    from tfface.eval import cli

    embed_fn, model_size = cli.load_embed_fn(args.model)
    return embed_fn, cli._image_size(args, model_size)


def _embeddings(args, protocol, cache):
    """Per-image raw embeddings, from the cache where it has them, else from the model.

    Returns:
        (embeddings, flip_embeddings, image_size, counts dict, failures).
    """
    names, landmarks = protocol.image_names, protocol.landmarks
    n = names.size
    rows = cache.lookup(names, landmarks) if cache is not None else np.full(n, -1)
    todo = np.flatnonzero(rows < 0)
    counts = {"from_cache": int(n - todo.size), "embedded": 0, "seconds": 0.0}
    if todo.size == 0:
        e, f = cache.get(rows)
        return e, f, cache.image_size, counts, []
    print(
        f"{protocol.dataset}: embedding {todo.size} of {n} loose crops "
        f"({n - todo.size} cached); loading {args.model}",
        file=sys.stderr,
    )
    embed_fn, image_size = _load_model(args)
    if cache is not None:
        cache.set_image_size(image_size)
    paths = protocol.image_paths
    start = time.perf_counter()

    def on_batch(indices, emb, flips):
        if cache is not None:
            picked = todo[indices]
            cache.add(names[picked], landmarks[picked], emb, flips)

    try:
        new_e, new_f, failures = ijb.embed_loose_crops(
            embed_fn,
            [paths[i] for i in todo],
            landmarks[todo],
            image_size,
            batch_size=args.batch_size,
            workers=args.workers,
            progress=not args.no_progress,
            on_batch=on_batch,
        )
    finally:
        # Also on Ctrl-C or a model error: what was embedded is kept for the next run.
        if cache is not None:
            cache.save()
    counts["seconds"] = round(time.perf_counter() - start, 2)
    counts["embedded"] = int(todo.size - len(failures))
    if failures:
        return None, None, image_size, counts, failures
    dim = new_e.shape[1]
    e = np.empty((n, dim), np.float32)
    f = np.empty((n, dim), np.float32)
    have = np.flatnonzero(rows >= 0)
    if have.size:
        e[have], f[have] = cache.get(rows[have])
    e[todo], f[todo] = new_e, new_f
    return e, f, image_size, counts, failures


def main(args):
    """Runs `python -m tfface.eval ijb` on parsed `args`; returns the exit status."""
    prefix = "tfface.eval ijb: error:"
    try:
        plan = check(args)
    except (
        UsageError,
        FileNotFoundError,
        ijb_protocol.IJBFormatError,
        embedding_cache.CacheMismatchError,
    ) as e:
        print(f"{prefix} {e}", file=sys.stderr)
        return EXIT_USAGE
    protocol, cache, name = plan["protocol"], plan["cache"], plan["name"]
    print(
        f"{protocol.dataset}: {protocol.labels.size} pairs ({protocol.num_genuine} genuine), "
        f"{np.unique(protocol.templates).size} templates, {protocol.image_names.size} images"
        + (" (subset)" if protocol.subset_info else ""),
        file=sys.stderr,
    )
    try:
        e, f, image_size, counts, failures = _embeddings(args, protocol, cache)
    except embedding_cache.CacheMismatchError as err:
        print(f"{prefix} {err}", file=sys.stderr)
        return EXIT_USAGE
    if failures:
        shown = "\n".join(f"  {message}" for _, message in failures[:20])
        more = f"\n  … and {len(failures) - 20} more" if len(failures) > 20 else ""
        print(
            f"{prefix} {len(failures)} loose crops could not be read; the protocol needs "
            f"every one (the others are cached):\n{shown}{more}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    result, scores = ijb.evaluate_ijb(
        protocol,
        e,
        f,
        flip=not args.no_flip,
        norm_score=not args.no_norm_score,
        detector_score=not args.no_detector_score,
        model=args.model,
        image_size=image_size,
    )
    json_path = os.path.join(args.out, f"{name}.json")
    png_path = os.path.join(args.out, f"{name}_roc.png")
    extra = {"embeddings": {**counts, "cache": None if cache is None else cache.path}}
    ijb.write_ijb_report(result, json_path, png_path, extra=extra)
    written = [json_path, png_path]
    if args.save_scores:
        scores_path = os.path.join(args.out, f"{name}_scores.npz")
        np.savez(
            scores_path,
            template1=protocol.template1,
            template2=protocol.template2,
            labels=protocol.labels,
            scores=scores,
        )
        written.append(scores_path)
    if result.num_zero_templates:
        print(
            f"warning: {result.num_zero_templates} templates pooled to a zero feature (all "
            "their images have detector score 0); their pairs score 0, as in insightface.",
            file=sys.stderr,
        )
    print(
        f"embeddings: {counts['from_cache']} from the cache, {counts['embedded']} embedded "
        f"in {counts['seconds']} s",
        file=sys.stderr,
    )
    print(f"{name}: {ijb.format_ijb(result)}")
    print(f"wrote {', '.join(written)}", file=sys.stderr)
    return EXIT_OK
