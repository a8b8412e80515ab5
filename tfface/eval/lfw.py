"""LFW `pairs.txt` reading and writing.

Format (LFW view 2, `pairs.txt`): the first line is `<num_sets>\\t<pairs_per_set>`
(`10\\t300`); then, for each set, `pairs_per_set` matched lines `name\\tn1\\tn2` followed by
`pairs_per_set` mismatched lines `name1\\tn1\\tname2\\tn2`. View 1 files
(`pairsDevTrain.txt`) have a one-number header: one set. Image `n` of `name` is
`<images_dir>/<name>/<name>_<n:04d>.jpg`.

Each set is one fold of the protocol, in file order. A missing image raises an error that
lists every missing file: facenet skips pairs with missing images, which silently shifts
the fold boundaries and changes the protocol.
"""

import dataclasses
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class LFWPair:
    """One line of `pairs.txt`: image `index1` of `name1` against image `index2` of `name2`."""

    name1: str
    index1: int
    name2: str
    index2: int

    @property
    def issame(self):
        return self.name1 == self.name2


@dataclasses.dataclass(frozen=True)
class LFWPairs:
    """The content of a `pairs.txt`: pairs in file order and the set layout."""

    pairs: tuple
    num_sets: int
    pairs_per_set: int

    @property
    def issame(self):
        return np.array([p.issame for p in self.pairs], dtype=bool)

    def __len__(self):
        return len(self.pairs)


def image_path(images_dir, name, index, ext="jpg"):
    """`<images_dir>/<name>/<name>_<index:04d>.<ext>`."""
    return os.path.join(os.fspath(images_dir), name, f"{name}_{index:04d}.{ext}")


def _parse_int(token, path, line_no, what):
    try:
        value = int(token)
    except ValueError:
        raise ValueError(
            f"{path}:{line_no}: {what} must be an integer. Received: {token!r}"
        ) from None
    if value < 0:
        raise ValueError(f"{path}:{line_no}: {what} must be >= 0. Received: {value}")
    return value


def read_pairs(path):
    """Parses an LFW `pairs.txt` (tab or space separated) into `LFWPairs`.

    Raises:
        ValueError: naming the file and line, when the header, a line's field count, the
            matched/mismatched layout of a set or the number of lines is wrong.
    """
    path = os.fspath(path)
    with open(path) as f:
        lines = [(i + 1, line.split()) for i, line in enumerate(f)]
    lines = [(no, fields) for no, fields in lines if fields]
    if not lines:
        raise ValueError(f"{path}: empty file; expected a header line such as '10\\t300'.")
    header_no, header = lines[0]
    if len(header) == 1:
        num_sets, per_set = 1, _parse_int(header[0], path, header_no, "pairs per set")
    elif len(header) == 2:
        num_sets = _parse_int(header[0], path, header_no, "number of sets")
        per_set = _parse_int(header[1], path, header_no, "pairs per set")
    else:
        raise ValueError(
            f"{path}:{header_no}: header must be '<num_sets>\\t<pairs_per_set>' (e.g. "
            f"'10\\t300') or '<pairs_per_set>'. Received: {' '.join(header)!r}"
        )
    if num_sets < 1 or per_set < 1:
        raise ValueError(f"{path}:{header_no}: header counts must be >= 1. Received: {header}")
    body = lines[1:]
    expected = num_sets * 2 * per_set
    if len(body) != expected:
        raise ValueError(
            f"{path}: header says {num_sets} sets of {per_set} matched + {per_set} mismatched "
            f"pairs ({expected} lines) but the file has {len(body)} pair lines."
        )
    pairs = []
    for k, (no, fields) in enumerate(body):
        matched = (k % (2 * per_set)) < per_set
        if matched:
            if len(fields) != 3:
                raise ValueError(
                    f"{path}:{no}: set {k // (2 * per_set)} expects a matched line "
                    f"'name\\tn1\\tn2' here (lines {per_set} per set). Received: {fields}"
                )
            name = fields[0]
            pairs.append(
                LFWPair(
                    name,
                    _parse_int(fields[1], path, no, "n1"),
                    name,
                    _parse_int(fields[2], path, no, "n2"),
                )
            )
        else:
            if len(fields) != 4:
                raise ValueError(
                    f"{path}:{no}: set {k // (2 * per_set)} expects a mismatched line "
                    f"'name1\\tn1\\tname2\\tn2' here. Received: {fields}"
                )
            if fields[0] == fields[2]:
                raise ValueError(
                    f"{path}:{no}: a mismatched pair names the same person twice: {fields}"
                )
            pairs.append(
                LFWPair(
                    fields[0],
                    _parse_int(fields[1], path, no, "n1"),
                    fields[2],
                    _parse_int(fields[3], path, no, "n2"),
                )
            )
    return LFWPairs(tuple(pairs), num_sets, per_set)


def write_pairs(path, pairs, num_sets):
    """Writes `pairs` (LFWPair sequence, file order) as an LFW `pairs.txt`.

    Args:
        path: output file.
        pairs: `num_sets` × (`p` matched pairs then `p` mismatched pairs).
        num_sets: number of sets (LFW: 10).
    """
    pairs = list(pairs.pairs if isinstance(pairs, LFWPairs) else pairs)
    if num_sets < 1 or len(pairs) % (2 * num_sets):
        raise ValueError(
            f"{len(pairs)} pairs cannot form {num_sets} sets of equal matched and mismatched "
            f"halves. Received: num_sets={num_sets}"
        )
    per_set = len(pairs) // (2 * num_sets)
    lines = [f"{num_sets}\t{per_set}"]
    for k, p in enumerate(pairs):
        want_same = (k % (2 * per_set)) < per_set
        if p.issame != want_same:
            raise ValueError(
                f"Pair {k} ({p}) must be {'matched' if want_same else 'mismatched'}: each set "
                f"holds {per_set} matched pairs followed by {per_set} mismatched pairs."
            )
        for name in {p.name1, p.name2}:
            if not name or any(c.isspace() for c in name):
                raise ValueError(f"Pair {k}: names must be non-empty without spaces: {name!r}")
        if p.issame:
            lines.append(f"{p.name1}\t{p.index1}\t{p.index2}")
        else:
            lines.append(f"{p.name1}\t{p.index1}\t{p.name2}\t{p.index2}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def pair_paths(pairs, images_dir, ext="jpg"):
    """Image paths of every pair; raises if any image is missing.

    Returns:
        (paths1, paths2, issame): two lists of str and a bool array, in file order.

    Raises:
        FileNotFoundError: listing every missing image (none is skipped).
    """
    pairs = pairs.pairs if isinstance(pairs, LFWPairs) else tuple(pairs)
    paths1 = [image_path(images_dir, p.name1, p.index1, ext) for p in pairs]
    paths2 = [image_path(images_dir, p.name2, p.index2, ext) for p in pairs]
    missing = sorted({p for p in paths1 + paths2 if not os.path.isfile(p)})
    if missing:
        shown = "\n  ".join(missing[:50])
        more = f"\n  … and {len(missing) - 50} more" if len(missing) > 50 else ""
        raise FileNotFoundError(
            f"{len(missing)} images referenced by the pairs are missing under "
            f"{os.fspath(images_dir)!r} (pairs are never skipped, as that would shift the "
            f"folds):\n  {shown}{more}"
        )
    return paths1, paths2, np.array([p.issame for p in pairs], dtype=bool)
