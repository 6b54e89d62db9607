"""Caltech 10k WebFaces (Angelova, Abu-Mostafa, Perona, CVPR 2005): `WebFaces_GroundThruth.txt`.

One face per line: `picNNNNN.jpg x y x y x y x y` (the eye on the image's left, i.e. the subject's
right eye, the other eye, the nose, the mouth centre; numbers as `%.6e` or plain integers, each
followed by a space); photos in `Caltech_WebFaces/` (or beside the file). A photo may hold several
labelled faces, and not every face in it is labelled. The points follow `CONVENTION_CALTECH` (pupil
eyes, a hand-placed mouth centre). Identity is the photo: all its faces land in one split. No box
is given: it is the face square of the four points (`box_from_four_points`).
"""

from __future__ import annotations

from pathlib import Path

from training.data import common
from training.data.samples import CONVENTION_CALTECH, DatasetError, LoadResult

FORMAT = "caltech"
GROUND_TRUTH = "WebFaces_GroundThruth.txt"
IMAGE_FOLDER = "Caltech_WebFaces"


def ground_truth_file(root: Path) -> Path:
    """The ground-truth file of a Caltech WebFaces folder (or the file itself)."""
    path = root if root.is_file() else root / GROUND_TRUTH
    if not path.is_file():
        raise DatasetError(f"{root}: no {GROUND_TRUTH} found")
    return path


def looks_like_caltech(path: Path) -> bool:
    """True when the first line is a name and eight numbers."""
    first = common.first_tokens(path)
    return len(first) == 9 and not isinstance(common.parse_floats(first[1:]), str)


def load(root: Path) -> LoadResult:
    """Read the ground truth; bad rows are skipped and counted."""
    path = ground_truth_file(root)
    folder = path.parent / IMAGE_FOLDER
    images = folder if folder.is_dir() else path.parent
    result = LoadResult(FORMAT, str(root))
    for tokens, values in common.annotation_rows(path, 9, result):
        image = images / tokens[0]
        size = common.image_size(image)
        if isinstance(size, str):
            result.skipped[size] += 1
            continue
        points = values.reshape(4, 2) - common.ONE_BASED_SHIFT_PX  # 1-based (common.ONE_BASED_SHIFT_PX)
        box = common.box_from_four_points(points)
        sample = common.make_sample(image, points, box, f"photo:{tokens[0]}", FORMAT, size,
                                    convention=CONVENTION_CALTECH)
        if isinstance(sample, str):
            result.skipped[sample] += 1
        else:
            result.samples.append(sample)
    return result
