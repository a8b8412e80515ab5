"""`Face`: one detected face with everything a caller may want, and the results built on it."""

import dataclasses

import numpy as np


class NoFaceError(ValueError):
    """A single-face call found no face; the message names the input."""


class MultipleFacesError(ValueError):
    """A single-face call with `policy="single"` found several faces; `count` says how many."""

    def __init__(self, message, count):
        super().__init__(message)
        self.count = count


@dataclasses.dataclass
class Face:
    """One face of a photo.

    Attributes:
        box: float32 [4] (x1, y1, x2, y2) in the original image's pixels.
        score: detector confidence in [0, 1].
        landmarks: float32 [5, 2] (x, y): left eye, right eye, nose, left and right mouth
            corners ("left" = the image's left), in the original image's pixels.
        crop: uint8 [S, S, 3], the face aligned on the model's template at its crop size.
        embedding: float32 [D] unit vector.
        quality: {"detector_score": float, "face_size_px": float (the box's shorter side in
            original pixels), "interocular_px": float}. Faces under ~40 px give unreliable
            embeddings even when detected.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    crop: np.ndarray
    embedding: np.ndarray
    quality: dict

    @property
    def area(self):
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))

    def to_dict(self, embedding=False):
        """JSON-ready dict (no crop; the embedding only if asked)."""
        out = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "quality": {k: round(float(v), 3) for k, v in self.quality.items()},
        }
        if embedding:
            out["embedding"] = [float(v) for v in self.embedding]
        return out


@dataclasses.dataclass
class Verification:
    """Result of `Recognizer.verify`.

    `same_person` is None when no threshold is known (an uncalibrated model and none given).
    """

    similarity: float
    same_person: bool | None
    threshold: float | None
    face_a: Face | None
    face_b: Face | None

    def to_dict(self):
        return {
            "similarity": round(self.similarity, 6),
            "same_person": self.same_person,
            "threshold": self.threshold,
            "face_a": None if self.face_a is None else self.face_a.to_dict(),
            "face_b": None if self.face_b is None else self.face_b.to_dict(),
        }


@dataclasses.dataclass
class Identification:
    """One face of `Recognizer.identify`: its top-k gallery matches and the decision.

    `identity` is the best match's name when its similarity reaches `threshold`, else
    "unknown" (also "unknown" for an empty gallery). With no threshold known, the best
    match is reported as-is and `threshold` is None.
    """

    face: Face
    matches: list
    identity: str
    similarity: float | None
    threshold: float | None

    def to_dict(self):
        return {
            "identity": self.identity,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "threshold": self.threshold,
            "matches": [
                {"name": m.name, "similarity": round(float(m.similarity), 6)} for m in self.matches
            ],
            "face": self.face.to_dict(),
        }


UNKNOWN = "unknown"
