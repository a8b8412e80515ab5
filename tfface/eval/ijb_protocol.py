"""IJB-B / IJB-C 1:1 verification metadata, read from the files of insightface's IJB release.

The release (insightface `recognition/_evaluation_/ijb/README.md`; read by `ijb_11.py`,
`ijb_evals.py` and `arcface_torch/eval_ijbc.py`) holds, for DATASET = IJBB or IJBC and
d = dataset.lower():

    DATASET/meta/{d}_face_tid_mid.txt          image_name template_id media_id
    DATASET/meta/{d}_template_pair_label.txt   template_id_1 template_id_2 label (1 same, 0 not)
    DATASET/meta/{d}_name_5pts_score.txt       image_name x1 y1 x2 y2 … x5 y5 faceness_score
    DATASET/loose_crop/<image_name>            the loose face crops the points refer to

The points are loose-crop pixels in the ArcFace template's order (left eye, right eye,
nose tip, left and right mouth corners; "left" = the image's left), and the faceness score
is the detector's confidence. Fields are separated by whitespace. Blank lines are skipped
(pandas' `read_csv`, insightface's reader, skips them too). Any other deviation raises
`IJBFormatError` naming `file:line`, what was expected and what was there.

insightface pairs the two image files row by row (it embeds the 5-point file's images in
order and takes template and media ids from the same row of the tid/mid file). When both
files list the same names in the same order that is what happens here; otherwise rows are
joined by image name (names must then be unique), so a reordered file cannot silently pair
an image with another image's template.
"""

import dataclasses
import math
import os

import numpy as np

DATASETS = ("IJBB", "IJBC")
_META = {
    "face_tid_mid": "{d}_face_tid_mid.txt",
    "template_pair_label": "{d}_template_pair_label.txt",
    "name_5pts_score": "{d}_name_5pts_score.txt",
}


class IJBFormatError(ValueError):
    """A metadata file that is not in the release's format; the message names file:line."""


def check_dataset(dataset):
    """`dataset` upper-cased ("ijbc" → "IJBC"); anything but IJBB/IJBC raises."""
    name = str(dataset).upper()
    if name not in DATASETS:
        raise ValueError(f"`dataset` must be one of {DATASETS}. Received: dataset={dataset!r}")
    return name


def meta_paths(root, dataset):
    """The files of `dataset` under `root`, which is the DATASET folder or its parent.

    Returns:
        dict with the dataset `directory`, the three meta files (`face_tid_mid`,
        `template_pair_label`, `name_5pts_score`) and `loose_crop`.

    Raises:
        FileNotFoundError naming every path that is missing (in the first layout tried that
        has a `meta/` folder, else in both layouts).
    """
    dataset = check_dataset(dataset)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--root {root!r} is not a directory.")
    candidates = [root, os.path.join(root, dataset)]
    layouts = []
    for directory in candidates:
        paths = {"directory": directory}
        for key, pattern in _META.items():
            paths[key] = os.path.join(directory, "meta", pattern.format(d=dataset.lower()))
        paths["loose_crop"] = os.path.join(directory, "loose_crop")
        missing = [
            p
            for key, p in paths.items()
            if key != "directory"
            and not (os.path.isdir(p) if key == "loose_crop" else os.path.isfile(p))
        ]
        if not missing:
            return paths
        layouts.append((directory, missing))
    with_meta = [x for x in layouts if os.path.isdir(os.path.join(x[0], "meta"))]
    shown = with_meta[:1] or layouts
    lines = "\n".join(f"  {p}" for _, missing in shown for p in missing)
    raise FileNotFoundError(
        f"--root {root!r} does not hold the {dataset} release (meta/ and loose_crop/ in "
        f"{root!r} or in {candidates[1]!r}). Missing:\n{lines}"
    )


def _data_lines(path):
    """(line number, stripped text) of every non-blank line of `path`."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise IJBFormatError(f"{path}:{number}: not UTF-8 text ({e.reason}).") from None
            if text:
                yield number, text


def _format_error(path, number, text, expected, problem):
    shown = text if len(text) <= 120 else text[:117] + "..."
    return IJBFormatError(f"{path}:{number}: expected {expected}; {problem}. Line: {shown!r}")


def _parse_named_rows(path, num_numbers, kinds, expected):
    """Rows `name n1 … nK` of a file with image names (at most ~470k lines: a Python loop).

    Returns:
        (names list, numbers float64 [N, K], line numbers int64 [N]).
    """
    names, numbers, line_numbers = [], [], []
    for number, text in _data_lines(path):
        fields = text.split()
        if len(fields) != 1 + num_numbers:
            raise _format_error(
                path, number, text, expected, f"found {len(fields)} fields, not {1 + num_numbers}"
            )
        row = []
        for k, (field, kind) in enumerate(zip(fields[1:], kinds, strict=True), start=2):
            try:
                value = int(field) if kind == "int" else float(field)
            except ValueError:
                raise _format_error(
                    path, number, text, expected, f"field {k} {field!r} is not {_kind_name(kind)}"
                ) from None
            if kind == "float" and not math.isfinite(value):
                raise _format_error(path, number, text, expected, f"field {k} is {field!r}")
            row.append(value)
        names.append(fields[0])
        numbers.append(row)
        line_numbers.append(number)
    if not names:
        raise IJBFormatError(f"{path}: holds no entries (expected lines of {expected}).")
    return names, np.asarray(numbers, dtype=np.float64), np.asarray(line_numbers, np.int64)


def _kind_name(kind):
    return "an integer" if kind == "int" else "a number"


def read_face_tid_mid(path):
    """Reads `{d}_face_tid_mid.txt`: `image_name template_id media_id` per line.

    Returns:
        (names: list of str [N], templates: int64 [N], medias: int64 [N], line numbers
        int64 [N]).
    """
    expected = "'image_name template_id media_id'"
    names, numbers, lines = _parse_named_rows(path, 2, ("int", "int"), expected)
    return names, numbers[:, 0].astype(np.int64), numbers[:, 1].astype(np.int64), lines


def read_name_5pts_score(path):
    """Reads `{d}_name_5pts_score.txt`: `image_name x1 y1 … x5 y5 faceness_score` per line.

    The coordinates and the score must be finite, and the score >= 0 (it weights the
    image's embedding).

    Returns:
        (names: list of str [N], landmarks: float32 [N, 5, 2], faceness: float32 [N], line
        numbers int64 [N]).
    """
    expected = "'image_name' then 10 landmark coordinates (x1 y1 … x5 y5) then a detector score"
    names, numbers, lines = _parse_named_rows(path, 11, ("float",) * 11, expected)
    negative = np.flatnonzero(numbers[:, 10] < 0)
    if negative.size:
        row = int(negative[0])
        raise IJBFormatError(
            f"{path}:{lines[row]}: the detector score must be >= 0 (it weights the image's "
            f"embedding). Received: {numbers[row, 10]!r}"
        )
    landmarks = numbers[:, :10].reshape(-1, 5, 2).astype(np.float32)
    return names, landmarks, numbers[:, 10].astype(np.float32), lines


def _row_line(path, row):
    """Line number of the `row`-th (0-based) non-blank line: how np.loadtxt counts rows."""
    for k, (number, _) in enumerate(_data_lines(path)):
        if k == row:
            return number
    raise AssertionError(f"{path} has no data row {row}")


def read_template_pair_label(path):
    """Reads `{d}_template_pair_label.txt`: `template_id_1 template_id_2 label` per line.

    IJB-C has 15.6M lines, so the file is parsed by NumPy's C reader; when that fails, a
    line-by-line pass finds the first bad line and names it.

    Returns:
        (template1: int64 [P], template2: int64 [P], labels: bool [P]).
    """
    expected = "'template_id_1 template_id_2 label' (three integers, label 0 or 1)"
    try:
        # comments=None: a '#' line is not part of the format, so it is an error, not skipped.
        table = np.loadtxt(path, dtype=np.int64, ndmin=2, comments=None, encoding="utf-8")
    except ValueError as e:
        _raise_first_bad_pair_line(path, expected)
        raise IJBFormatError(f"{path}: expected {expected}; {e}") from e
    if table.shape[0] == 0:
        raise IJBFormatError(f"{path}: holds no entries (expected lines of {expected}).")
    if table.shape[1] != 3:
        raise IJBFormatError(
            f"{path}:{_row_line(path, 0)}: expected {expected}; found {table.shape[1]} fields"
        )
    bad = np.flatnonzero((table[:, 2] != 0) & (table[:, 2] != 1))
    if bad.size:
        row = int(bad[0])
        raise IJBFormatError(
            f"{path}:{_row_line(path, row)}: expected {expected}; the label is "
            f"{int(table[row, 2])} ({bad.size} lines have a label other than 0 or 1)"
        )
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2] == 1


def _raise_first_bad_pair_line(path, expected):
    for number, text in _data_lines(path):
        fields = text.split()
        if len(fields) != 3:
            raise _format_error(path, number, text, expected, f"found {len(fields)} fields")
        for k, field in enumerate(fields, start=1):
            try:
                int(field)
            except ValueError:
                raise _format_error(
                    path, number, text, expected, f"field {k} {field!r} is not an integer"
                ) from None
            if not -(2**63) <= int(field) < 2**63:
                raise _format_error(
                    path, number, text, expected, f"field {k} does not fit in 64 bits"
                )


@dataclasses.dataclass(frozen=True)
class IJBProtocol:
    """The 1:1 protocol of IJB-B or IJB-C: images, their templates and media, template pairs.

    Images are in the order of the 5-point file, restricted to the templates that some
    pair uses (`num_unused_images` counts the others).

    Attributes:
        dataset: "IJBB" or "IJBC".
        directory: the dataset folder (holding meta/ and loose_crop/).
        image_names: str [N], names in loose_crop/.
        landmarks: float32 [N, 5, 2], loose-crop pixels.
        faceness: float32 [N], detector scores.
        templates, medias: int64 [N], each image's template and media id.
        template1, template2: int64 [P], the pairs; labels: bool [P] (True = same person).
        num_unused_images: images of the release whose template no pair uses.
        subset_info: None for the whole protocol, else how its pairs were sampled
            (`subset()`).
    """

    dataset: str
    directory: str
    image_names: np.ndarray
    landmarks: np.ndarray
    faceness: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    template1: np.ndarray
    template2: np.ndarray
    labels: np.ndarray
    num_unused_images: int = 0
    subset_info: dict = None

    @property
    def image_paths(self):
        loose = os.path.join(self.directory, "loose_crop")
        return [os.path.join(loose, name) for name in self.image_names]

    @property
    def num_genuine(self):
        return int(np.sum(self.labels))

    @property
    def num_impostor(self):
        return int(self.labels.size - np.sum(self.labels))

    def missing_images(self):
        """Image paths that are not files (every one, in order)."""
        return [p for p in self.image_paths if not os.path.isfile(p)]

    def subset(self, limit, seed=0):
        """A protocol of at most `limit` pairs for quick checks: half genuine, half impostor
        (or as many as there are), drawn without replacement by `seed`, kept in file order,
        with only the images of the templates they use.

        Low FARs need many impostors: TAR at FAR < 1/#impostors is reported unreachable.
        """
        if not isinstance(limit, (int, np.integer)) or limit < 2:
            raise ValueError(f"`limit` must be an integer >= 2. Received: limit={limit!r}")
        if limit >= self.labels.size:
            return self
        rng = np.random.default_rng(seed)
        genuine = np.flatnonzero(self.labels)
        impostor = np.flatnonzero(~self.labels)
        n_gen = min(genuine.size, limit // 2)
        n_imp = min(impostor.size, limit - n_gen)
        n_gen = min(genuine.size, limit - n_imp)
        keep = np.sort(
            np.concatenate(
                [
                    rng.choice(genuine, n_gen, replace=False),
                    rng.choice(impostor, n_imp, replace=False),
                ]
            )
        )
        info = {
            "limit": int(limit),
            "seed": int(seed),
            "pairs_in_protocol": int(self.labels.size),
            "genuine_in_protocol": self.num_genuine,
            "impostor_in_protocol": self.num_impostor,
        }
        return _restrict(
            self,
            self.template1[keep],
            self.template2[keep],
            self.labels[keep],
            subset_info=info,
        )


def _restrict(protocol, template1, template2, labels, subset_info):
    used = np.isin(protocol.templates, np.union1d(template1, template2))
    return dataclasses.replace(
        protocol,
        image_names=protocol.image_names[used],
        landmarks=protocol.landmarks[used],
        faceness=protocol.faceness[used],
        templates=protocol.templates[used],
        medias=protocol.medias[used],
        template1=template1,
        template2=template2,
        labels=labels,
        num_unused_images=protocol.num_unused_images + int(np.sum(~used)),
        subset_info=subset_info,
    )


def _join(tid_path, tid_names, tid_lines, pts_path, pts_names, pts_lines):
    """Row of the tid/mid file for each row of the 5-point file."""
    if tid_names == pts_names:
        return np.arange(len(pts_names))
    index = {}
    for name, line in zip(tid_names, tid_lines, strict=True):
        if name in index:
            raise IJBFormatError(
                f"{tid_path}:{line}: image {name!r} is listed again (first at line "
                f"{tid_lines[index[name]]}). The two image files do not list the same names "
                "in the same order, so they are joined by name, which must then be unique."
            )
        index[name] = len(index)
    rows = np.empty(len(pts_names), dtype=np.int64)
    seen = {}
    for k, (name, line) in enumerate(zip(pts_names, pts_lines, strict=True)):
        if name in seen:
            raise IJBFormatError(
                f"{pts_path}:{line}: image {name!r} is listed again (first at line {seen[name]})."
            )
        seen[name] = line
        if name not in index:
            missing = [n for n in pts_names if n not in index]
            raise IJBFormatError(
                f"{pts_path}:{line}: image {name!r} has no template in {tid_path} "
                f"({len(missing)} images of the 5-point file are not in it, e.g. "
                f"{missing[:5]})."
            )
        rows[k] = index[name]
    if len(seen) != len(index):
        absent = [n for n in tid_names if n not in seen]
        raise IJBFormatError(
            f"{tid_path}: {len(absent)} images have no landmarks in {pts_path}, e.g. {absent[:5]}."
        )
    return rows


def load_ijb_protocol(root, dataset):
    """Reads and checks the 1:1 protocol of `dataset` ("IJBB" or "IJBC") under `root`.

    Checks: the formats (file:line on error), that both image files list the same images,
    and that every template a pair names has images. Image files are not opened here
    (`IJBProtocol.missing_images()` lists absent ones).

    Returns:
        An `IJBProtocol`.
    """
    paths = meta_paths(root, dataset)
    dataset = check_dataset(dataset)
    tid_names, templates, medias, tid_lines = read_face_tid_mid(paths["face_tid_mid"])
    pts_names, landmarks, faceness, pts_lines = read_name_5pts_score(paths["name_5pts_score"])
    rows = _join(
        paths["face_tid_mid"],
        tid_names,
        tid_lines,
        paths["name_5pts_score"],
        pts_names,
        pts_lines,
    )
    template1, template2, labels = read_template_pair_label(paths["template_pair_label"])
    known = np.unique(templates)
    for column in (template1, template2):
        unknown = np.flatnonzero(~np.isin(column, known))
        if unknown.size:
            row = int(unknown[0])
            pair_path = paths["template_pair_label"]
            raise IJBFormatError(
                f"{pair_path}:{_row_line(pair_path, row)}: template {int(column[row])} has "
                f"no images in {paths['face_tid_mid']} ({unknown.size} pairs name such "
                "templates)."
            )
    if labels.all() or not labels.any():
        raise IJBFormatError(
            f"{paths['template_pair_label']}: every pair has label {int(labels[0])}; TAR at "
            "FAR needs genuine (1) and impostor (0) pairs."
        )
    protocol = IJBProtocol(
        dataset=dataset,
        directory=paths["directory"],
        image_names=np.asarray(pts_names),
        landmarks=landmarks,
        faceness=faceness,
        templates=templates[rows],
        medias=medias[rows],
        template1=template1,
        template2=template2,
        labels=labels,
    )
    return _restrict(protocol, template1, template2, labels, subset_info=None)
