"""One labelled face and the result of loading a dataset."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from core.errors import InputError
from core.meta import POINT_NAMES

# iBUG-68 indices of the four project landmarks (see shared/data/README.md)
IBUG_RIGHT_EYE = range(36, 42)
IBUG_LEFT_EYE = range(42, 48)
IBUG_NOSE_TIP = 30
IBUG_MOUTH = range(48, 68)

# skip reasons, counted by every reader
SKIP_MISSING_IMAGE = "missing_image"
SKIP_UNREADABLE_IMAGE = "unreadable_image"
SKIP_BAD_VALUES = "wrong_number_of_values"
SKIP_NAN = "nan_value"
SKIP_MISSING_POINT = "required_point_missing"
SKIP_OUTSIDE = "points_outside_image"
SKIP_MULTI_FACE = "multi_face_image"
SKIP_BAD_IMAGE_FORMAT = "unsupported_image"


class DatasetError(InputError):
    """A path that cannot be read as a dataset at all."""


# Point conventions: which definition of "eye", "nose" and "mouth centre" a set's four points follow
# (shared/data/README.md). The tracker outputs CONVENTION_IBUG68.
CONVENTION_IBUG68 = "ibug68"  # eye = mean of its 6 outline points, nose = point 30, mouth = mean of 20 points
CONVENTION_MTFL = "mtfl"  # eye = pupil point, nose = "nose" point, mouth = mean of the two corners
CONVENTION_CALTECH = "caltech"  # eye = pupil point, nose = "nose" point, mouth = a hand-placed centre
CONVENTIONS = (CONVENTION_IBUG68, CONVENTION_MTFL, CONVENTION_CALTECH)


@dataclass(eq=False)
class FaceSample:
    """One labelled face: four points (POINT_NAMES order) and a box, in image pixels.

    `identity` keeps faces of one person or photo on one side of every split; `source` is the dataset
    format, `subset` a part of it with its own look (MTFL's "lfw", "net", "aflw"; empty otherwise);
    `convention` says which definition of the four points the annotation follows (CONVENTIONS);
    `attributes` holds what the annotation adds (MTFL: gender, smile, glasses, pose codes); the
    68-point sets keep their full annotation in `points68_px` (to measure the conventions against).
    """

    image_path: str
    points_px: np.ndarray  # (4, 2) float32
    box_xyxy: np.ndarray  # (4,) float32
    identity: str  # who or which photo: splits never share one
    source: str  # dataset format
    image_size: tuple[int, int]  # (width, height)
    convention: str = CONVENTION_IBUG68
    subset: str = ""
    attributes: dict = field(default_factory=dict)
    points68_px: np.ndarray | None = None  # (68, 2) float32 iBUG points where the set gives them

    @property
    def group(self) -> str:
        """Where the face comes from, for per-source reports: 'mtfl/aflw', 'ytf-csv', ..."""
        return f"{self.source}/{self.subset}" if self.subset else self.source

    @property
    def iod(self) -> float:
        """Inter-ocular distance in pixels."""
        return float(np.linalg.norm(self.points_px[1] - self.points_px[0]))


@dataclass
class LoadResult:
    """Faces read from a dataset plus what was skipped and why."""

    format: str
    root: str
    samples: list[FaceSample] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    @property
    def images(self) -> int:
        return len({s.image_path for s in self.samples})


def four_points_from_68(points68: np.ndarray) -> np.ndarray:
    """The project's four points (right eye, left eye, nose tip, mouth centre) from iBUG-68."""
    p = np.asarray(points68, dtype=np.float32).reshape(68, 2)
    return np.stack([
        p[list(IBUG_RIGHT_EYE)].mean(axis=0),
        p[list(IBUG_LEFT_EYE)].mean(axis=0),
        p[IBUG_NOSE_TIP],
        p[list(IBUG_MOUTH)].mean(axis=0),
    ]).astype(np.float32)


def points_outside(points_px: np.ndarray, width: int, height: int, tolerance: float = 0.1) -> bool:
    """True when a point lies further outside the image than `tolerance` x its size."""
    p = np.asarray(points_px).reshape(-1, 2)
    tx, ty = tolerance * width, tolerance * height
    return bool(((p[:, 0] < -tx) | (p[:, 0] > width + tx) | (p[:, 1] < -ty) | (p[:, 1] > height + ty)).any())


__all__ = ["CONVENTIONS", "POINT_NAMES", "FaceSample", "LoadResult", "DatasetError", "four_points_from_68",
           "points_outside"]
