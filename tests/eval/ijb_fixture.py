"""A tiny IJB-B/C release, written in exactly the on-disk format of insightface's IJB files.

    ROOT/IJBC/meta/ijbc_face_tid_mid.txt          "<name> <template_id> <media_id>"
    ROOT/IJBC/meta/ijbc_template_pair_label.txt   "<template_id_1> <template_id_2> <label>"
    ROOT/IJBC/meta/ijbc_name_5pts_score.txt       "<name> x1 y1 … x5 y5 <score>" (3 decimals)
    ROOT/IJBC/loose_crop/<name>                   JPEG loose crops

Faces are `tfface.data.synthetic` renders (held-out identities) placed in a larger "loose
crop" by a random similarity transform (scale, rotation, shift), which moves their five
landmarks with them; so aligning a loose crop by its points undoes the transform.
"""

import dataclasses
import math

import numpy as np
from PIL import Image

from tfface.align.align_face import warp_affine
from tfface.data.synthetic import HELDOUT_ID_OFFSET
from tfface.data.synthetic import SyntheticFaces

FACE_SIZE = 64
LOOSE_SIZE = 96


@dataclasses.dataclass
class IJBTree:
    root: object  # the parent folder (holds DATASET/)
    directory: object  # ROOT/DATASET
    names: list  # image names, in file order
    identities: np.ndarray  # identity of each image
    templates: np.ndarray
    medias: np.ndarray
    landmarks: np.ndarray  # [N, 5, 2] in loose-crop pixels, as written (3 decimals)
    faceness: np.ndarray
    faces: np.ndarray  # the renders before placement, [N, FACE_SIZE, FACE_SIZE, 3]
    face_landmarks: np.ndarray  # their landmarks in render pixels
    pairs: np.ndarray  # [P, 3] template1, template2, label


def placement(rng):
    """A random similarity transform (3×3) from render pixels into the loose crop."""
    scale = rng.uniform(1.05, 1.3)
    angle = math.radians(rng.uniform(-20, 20))
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    centre = (FACE_SIZE - 1) / 2
    target = (LOOSE_SIZE - 1) / 2 + rng.uniform(-6, 6, size=2)
    return np.array(
        [
            [c, -s, target[0] - (c * centre - s * centre)],
            [s, c, target[1] - (s * centre + c * centre)],
            [0.0, 0.0, 1.0],
        ]
    )


def write_ijb_tree(
    root,
    dataset="IJBC",
    num_identities=4,
    templates_per_identity=2,
    seed=0,
    nuisance=0.0,
):
    """Writes the release under `root/dataset` and returns an `IJBTree` describing it.

    Each identity has `templates_per_identity` templates; a template has 1–3 media of 1–3
    images each (template ids start at 101 in steps of 7, media ids at 5001), and one media
    id is shared by the first two templates of identity 0, as IJB media can be. Pairs: every
    template pair, label 1 when both are of one identity. Detector scores are in [0.5, 1],
    except one image at 0.0.
    """
    rng = np.random.default_rng(seed)
    d = dataset.lower()
    directory = root / dataset
    (directory / "meta").mkdir(parents=True)
    (directory / "loose_crop").mkdir()
    identities, templates, medias = [], [], []
    template_ids, template_identity = [], []
    media_id = 5001
    for identity in range(num_identities):
        for _ in range(templates_per_identity):
            tid = 101 + 7 * len(template_ids)
            template_ids.append(tid)
            template_identity.append(identity)
            for _ in range(rng.integers(1, 4)):
                for _ in range(rng.integers(1, 4)):
                    identities.append(identity)
                    templates.append(tid)
                    medias.append(media_id)
                media_id += 1
    templates = np.array(templates)
    medias = np.array(medias)
    # Identity 0's first two templates share a media (a video seen in both).
    first, second = template_ids[0], template_ids[1]
    medias[templates == second] = np.where(
        np.arange(np.sum(templates == second)) == 0,
        medias[templates == first][0],
        medias[templates == second],
    )
    n = templates.size
    renderer = SyntheticFaces(image_size=FACE_SIZE, seed=seed, nuisance=nuisance)
    faces, face_points = renderer.render(
        HELDOUT_ID_OFFSET + np.array(identities), np.arange(n) + 1000 * seed
    )
    names, points = [], []
    for i in range(n):
        matrix = placement(rng)
        loose = warp_affine(faces[i], matrix, LOOSE_SIZE)
        name = f"{i + 1}.jpg"
        Image.fromarray(loose).save(directory / "loose_crop" / name, quality=95)
        moved = face_points[i] @ matrix[:2, :2].T + matrix[:2, 2]
        names.append(name)
        points.append(np.round(moved, 3))
    faceness = np.round(rng.uniform(0.5, 1.0, n), 3)
    faceness[n // 2] = 0.0
    with open(directory / "meta" / f"{d}_face_tid_mid.txt", "w") as f:
        for name, t, m in zip(names, templates, medias, strict=True):
            f.write(f"{name} {t} {m}\n")
    with open(directory / "meta" / f"{d}_name_5pts_score.txt", "w") as f:
        for name, p, s in zip(names, points, faceness, strict=True):
            coords = " ".join(f"{v:.3f}" for v in p.reshape(-1))
            f.write(f"{name} {coords} {s:.3f}\n")
    pairs = []
    for a in range(len(template_ids)):
        for b in range(a + 1, len(template_ids)):
            same = int(template_identity[a] == template_identity[b])
            pairs.append((template_ids[a], template_ids[b], same))
    pairs = np.array(pairs)
    with open(directory / "meta" / f"{d}_template_pair_label.txt", "w") as f:
        for t1, t2, label in pairs:
            f.write(f"{t1} {t2} {label}\n")
    return IJBTree(
        root=root,
        directory=directory,
        names=names,
        identities=np.array(identities),
        templates=templates,
        medias=medias,
        landmarks=np.array(points, dtype=np.float32),
        faceness=faceness.astype(np.float32),
        faces=faces,
        face_landmarks=face_points,
        pairs=pairs,
    )
