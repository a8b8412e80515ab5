"""The work the photo commands share (detect, embed, enroll, identify): a `Recognizer` built
from the flags, and the loop over photos that skips, and records, what it cannot use.

A skipped file is `{"path": ..., "reason": ...}`; commands list them after their table (or
under "skipped" in JSON) and count them. TensorFlow loads when `recognizer` is called.
"""

import os

import numpy as np

from tfface.cli.output import progress
from tfface.recognition.face import MultipleFacesError
from tfface.recognition.image_input import ImageInputError
from tfface.recognition.image_input import load_image

NO_FACE = "no face found"


def recognizer(args, with_model=True):
    """The `Recognizer` the flags describe (`with_model=False`: detection only)."""
    from tfface.align.face_detector import FaceDetector
    from tfface.recognition.recognizer import Recognizer

    return Recognizer(
        args.model if with_model else None,
        FaceDetector(min_face_size=args.min_face_size),
        min_confidence=args.min_confidence,
        threshold=getattr(args, "threshold", None),
        max_detect_side=args.max_detect_side,
    )


def _read(path, skipped):
    try:
        return load_image(path)
    except ImageInputError as e:
        skipped.append({"path": path, "reason": str(e).removeprefix(f"{path}: ")})
        return None


def photo_faces(recognizer, paths, args, desc, on_faces):
    """Runs `recognizer.faces` on each readable photo, calling on_faces(path, image, faces);
    returns the unreadable files as skipped entries."""
    skipped = []
    for path in progress(paths, args, desc):
        image = _read(path, skipped)
        if image is not None:
            on_faces(path, image, recognizer.faces(image))
    return skipped


def embed_items(recognizer, args, paths, desc):
    """[(path, face dict or None, embedding)] with one face per photo (`--policy`) or all
    faces (`--all_faces`), or one crop per file (`--aligned`); plus the skipped files
    (unreadable, no face, several faces under `--policy single`)."""
    items, skipped = [], []
    if args.aligned:
        for path in progress(paths, args, desc):
            crop = _read(path, skipped)
            if crop is not None:
                items.append((path, None, recognizer.embed(crop[None])[0]))
        return items, skipped

    def on_faces(path, image, faces):
        if not faces:
            skipped.append({"path": path, "reason": NO_FACE})
            return
        if getattr(args, "all_faces", False):
            chosen = faces
        elif len(faces) > 1 and args.policy == "single":
            error = MultipleFacesError(f"{len(faces)} faces (--policy single)", len(faces))
            skipped.append({"path": path, "reason": str(error)})
            return
        else:
            chosen = [max(faces, key=lambda f: f.area)]
        for face in chosen:
            items.append((path, face.to_dict(), np.asarray(face.embedding)))

    skipped += photo_faces(recognizer, paths, args, desc, on_faces)
    return items, skipped


def describe_skipped(skipped):
    """One clause for an error message: the file and its reason, or how many were skipped."""
    if len(skipped) == 1:
        return f"{skipped[0]['path']}: {skipped[0]['reason']}"
    return f"all {len(skipped)} files were skipped (listed with their reasons)"


def draw_path(args, path, n_images):
    """Where `--draw` writes the drawing of `path`: the file itself for one photo, else
    FOLDER/<stem>.png."""
    if n_images == 1:
        return args.draw
    os.makedirs(args.draw, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(args.draw, f"{stem}.png")
