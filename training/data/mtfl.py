"""MTFL (Zhang, Luo, Loy, Tang, ECCV 2014): `training.txt` / `testing.txt` beside the image folders.

One face per line: `path x1 x2 x3 x4 x5 y1 y2 y3 y4 y5 gender smile glasses pose`; CRLF line ends,
every record but the first preceded by a space, `\\` or `/` in paths. The five points are the eye on
the image's left (the subject's right eye), the other eye, the nose, and the two mouth corners in the
same order. Our four points: right eye = point 1, left eye = point 2, nose tip = point 3, mouth centre
= mean of the corners (the MTFL convention: `CONVENTION_MTFL`; the 68-point sets define them
differently). The attribute codes are kept on the sample: gender 1 male / 2 female, smile and glasses
1 yes / 2 no, pose 1 left profile .. 3 frontal .. 5 right profile (the release's readme.txt).

Identity: LFW photos (`lfw_5590/Name_Surname_0001.jpg`) by the person's name; web photos (`net_7876/`)
one per photo; AFLW crops (`AFLW/0002-image04733.jpg`) by the AFLW image they were cut from
(`image04733`), so crops of one photo stay together. MTFL gives no box: the box is the face square
of the four points (`box_from_four_points`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from training.data import common
from training.data.samples import CONVENTION_MTFL, LoadResult

FORMAT = "mtfl"
ANNOTATION_FILES = ("training.txt", "testing.txt")
ATTRIBUTES = ("gender", "smile", "glasses", "pose")
FIELDS = 1 + 10 + len(ATTRIBUTES)
_LFW_NAME = re.compile(r"^(.*)_\d{4}$")
_AFLW_IMAGE = re.compile(r"^\d+-(image\d+)$")


def annotation_files(root: Path) -> list[Path]:
    """The MTFL annotation files of a folder (or the file itself)."""
    if root.is_file():
        return [root]
    return [root / name for name in ANNOTATION_FILES if (root / name).is_file()]


def looks_like_mtfl(path: Path) -> bool:
    """True when the first record has MTFL's 15 fields (a path, 10 numbers, 4 codes)."""
    first = common.first_tokens(path)
    return len(first) == FIELDS and not isinstance(common.parse_floats(first[1:]), str)


def subset_of(rel_path: str) -> str:
    """'lfw', 'net', 'aflw' from the image's folder (empty for another layout)."""
    folder = rel_path.split("/", 1)[0].lower() if "/" in rel_path else ""
    return {"lfw_5590": "lfw", "net_7876": "net", "aflw": "aflw"}.get(folder, "")


def identity_of(rel_path: str) -> str:
    """The person (LFW), the source photo (AFLW crops) or the photo itself (web photos)."""
    stem = Path(rel_path).stem
    subset = subset_of(rel_path)
    if subset == "lfw":
        m = _LFW_NAME.match(stem)
        return "lfw:" + (m.group(1) if m else stem)
    if subset == "aflw":
        m = _AFLW_IMAGE.match(stem)
        return "aflw:" + (m.group(1) if m else stem)
    return f"{subset or 'photo'}:{rel_path}"


def four_points_from_mtfl(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(4, 2) right eye, left eye, nose, mouth centre (mean of the corners) from MTFL's 5 x and 5 y."""
    p = np.stack([xs, ys], axis=1).astype(np.float32)
    return np.stack([p[0], p[1], p[2], (p[3] + p[4]) / 2]).astype(np.float32)


def load(root: Path) -> LoadResult:
    """Read `training.txt` and `testing.txt` (whichever exist); bad rows are skipped and counted."""
    files = annotation_files(root)
    result = common.start_load(root, FORMAT, files, "MTFL training.txt or testing.txt")
    for path in files:
        _read(path, result)
    return result


def _read(path: Path, result: LoadResult) -> None:
    base = path.parent
    for tokens, values in common.annotation_rows(path, FIELDS, result):
        rel = tokens[0].replace("\\", "/")
        image = base / rel
        size = common.image_size(image)
        if isinstance(size, str):
            result.skipped[size] += 1
            continue
        points = four_points_from_mtfl(values[0:5], values[5:10])
        attributes = {name: int(v) for name, v in zip(ATTRIBUTES, values[10:])}
        box = common.box_from_four_points(points)
        sample = common.make_sample(image, points, box, identity_of(rel), FORMAT, size, convention=CONVENTION_MTFL,
                                    subset=subset_of(rel), attributes=attributes)
        if isinstance(sample, str):
            result.skipped[sample] += 1
        else:
            result.samples.append(sample)
