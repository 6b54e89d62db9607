"""The landmarks of one face from the landmark model: one pass on a square crop, and the path a face box
takes (the tracker's box-model frames, every still image, and `facetrack eval`, which scores this path):

    first pass: the level crop around the box (`meta.crop_scale` x its longer side)
      quality below `min_quality` (models with a quality output only): the same crop turned by 90, 180
      and 270 degrees as well, and the answer of the best quality kept: a face rolled by 90 or 180
      degrees gives the box model an upright-looking box but the landmark model a turned face
    second pass: the face crop of those points (their face square x `meta.crop_scale`, turned by
      their roll so the eyes are level); skipped when the first crop already was that crop

Points always map back to the frame through the inverse of the crop's own affine
(`core.postprocess.landmark_points`), so a turned crop gives frame coordinates like any other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from core.errors import InputError
from core.geometry import face_square_from_points, roll_deg, square_from_box
from core.meta import MetadataError, mirrored_order
from core.postprocess import landmark_point_scores, landmark_points, landmark_quality
from core.preprocess import landmark_input, to_batch
from tracker.backends import Backend

# Quality needed for a face (models with a quality output; 0..1). The shipped default.
DEFAULT_MIN_QUALITY = 0.5
PASSES = (1, 2, 3)
# Passes per box by default: on 599 single-face validation photos (scripts/measure_box_agreement.py
# --passes 2|3, the all-sets run), a third pass when the second moved the crop took the mean NME from
# 17.4 to 17.2 % and the share above 10 % from 32.1 to 31.2 % (whole photos, the box model's boxes).
DEFAULT_PASSES = 3
TURNS_DEG = (90.0, 180.0, 270.0)  # the first crop turned by these when its quality is low
# No refinement passes when the first crop (and its turns) score below this: no face is there (a false
# detection). On the 1,719 validation faces' true boxes the best first-pass quality was never below 0.2;
# the detector's false detections on the demo clip scored 0.001-0.03 and ran 6 crops each before.
NO_FACE_QUALITY = 0.1
# The second pass is skipped when the face crop of the first pass's points differs from the first crop
# by less than all of these: the second pass would see nearly the same pixels.
SKIP_ROLL_DEG = 3.0
SKIP_SHIFT = 0.03  # centre distance, in crop sides
SKIP_SCALE = 0.03  # relative difference of the sides


def check_min_quality(min_quality: float) -> None:
    """InputError unless `min_quality` lies in 0..1."""
    if not 0.0 <= min_quality <= 1.0:
        raise InputError("--min-quality must lie in 0..1")


@dataclass(frozen=True)
class Crop:
    """A square landmark crop: centre (2,) and side in frame pixels, turned by `angle_deg`
    (`core.geometry.crop_matrix`: a face of that roll comes out upright), mirrored when `flip`."""

    center_px: np.ndarray
    side_px: float
    angle_deg: float = 0.0
    flip: bool = False

    @classmethod
    def around_box(cls, box_xyxy: np.ndarray, crop_scale: float) -> Crop:
        """The level crop of a face box, `crop_scale` x its longer side (as training crops are made)."""
        center, side = square_from_box(box_xyxy, crop_scale)
        return cls(center, side)

    @classmethod
    def of_face(cls, points_px: np.ndarray, crop_scale: float,
                square: tuple[np.ndarray, float] | None = None) -> Crop:
        """The crop the four points imply: their face square (`core.geometry.face_square_from_points`,
        or `square` when already computed) x `crop_scale`, turned by their roll (eyes level)."""
        center, side = face_square_from_points(points_px) if square is None else square
        return cls(np.asarray(center, dtype=np.float32), side * crop_scale, roll_deg(points_px))

    def turned(self, angle_deg: float) -> Crop:
        """The same square turned by `angle_deg` more."""
        return replace(self, angle_deg=self.angle_deg + angle_deg)

    def close_to(self, other: Crop) -> bool:
        """Whether two crops see nearly the same pixels (within SKIP_ROLL_DEG, SKIP_SHIFT, SKIP_SCALE)."""
        turn = abs((self.angle_deg - other.angle_deg + 180.0) % 360.0 - 180.0)
        shift = float(np.linalg.norm(np.asarray(self.center_px) - np.asarray(other.center_px)))
        return (turn <= SKIP_ROLL_DEG and shift <= SKIP_SHIFT * self.side_px
                and abs(other.side_px / max(self.side_px, 1e-6) - 1.0) <= SKIP_SCALE)


@dataclass(frozen=True)
class Landmarks:
    """What one pass found: points (P, 2) float32 in frame pixels and in 0..1 of the crop, the face
    quality 0..1 (None for models without it), the crop, how many crops the model ran on for it, and
    the point scores (P,) 0..1 (None for models without them; `core.postprocess.landmark_point_scores`)."""

    points_px: np.ndarray
    points_norm: np.ndarray
    quality: float | None
    crop: Crop
    crops_run: int = 1
    box_crop: Crop | None = None  # the detector's crop this answer started from (`Locator.from_crop`)
    point_scores: np.ndarray | None = None

    def box_agreement(self, crop_scale: float) -> tuple[float, float]:
        """How well the points fit the detector's crop they came from: (centre shift, side ratio) of the
        face crop the points imply (`Crop.of_face`) against `box_crop`: the shift in face-square sides,
        the ratio box crop side / face crop side. (0, 1) when there is no `box_crop`."""
        if self.box_crop is None:
            return 0.0, 1.0
        center, side = face_square_from_points(self.points_px)
        shift = float(np.linalg.norm(np.asarray(center) - np.asarray(self.box_crop.center_px))) / max(side, 1e-6)
        return shift, float(self.box_crop.side_px) / max(side * crop_scale, 1e-6)


class Locator:
    """Runs a landmark backend on crops of a frame (uint8 HxWx3 BGR).

    `passes` 2 refines every box's answer on the face crop of its points, 3 (default) once more when
    that moved the crop; 1 stops after the first pass. `min_quality` is the quality below which the
    turned crops are tried. `calls` counts the backend calls. Raises InputError for `passes` other than
    1, 2 or 3 or `min_quality` outside 0..1;
    MetadataError when the model's output is not as wide as its metadata says
    (`ModelMeta.output_width`); a backend's own failure propagates unchanged.
    """

    def __init__(self, backend: Backend, *, passes: int = DEFAULT_PASSES,
                 min_quality: float = DEFAULT_MIN_QUALITY) -> None:
        if passes not in PASSES:
            raise InputError(f"--passes must be 1, 2 or 3, not {passes}")
        check_min_quality(min_quality)
        self.backend = backend
        self.meta = backend.meta
        self.passes = passes
        self.min_quality = float(min_quality)
        self.calls = 0

    def in_crops(self, image: np.ndarray, crops: list[Crop], timings: dict[str, float] | None = None
                 ) -> list[Landmarks]:
        """One backend call on a batch of crops; the answer in each. `timings` (ms) gains its
        preprocess, landmark_model and postprocess time."""
        meta = self.meta
        t0 = time.perf_counter()
        inputs, matrices = zip(*(landmark_input(image, c.center_px, c.side_px, meta, c.angle_deg, c.flip)
                                 for c in crops))
        batch = to_batch(list(inputs))
        t1 = time.perf_counter()
        out = self.backend.predict(batch)
        t2 = time.perf_counter()
        self.calls += 1
        if out.ndim != 2 or out.shape != (len(crops), meta.output_width):
            raise MetadataError(f"{self.backend.name}: landmark output {out.shape}, "
                                f"expected (B, {meta.output_width})")
        found = []
        width = 2 * len(meta.point_names)
        for row, crop, frame_to_crop in zip(out, crops, matrices):
            points_px, points_norm = landmark_points(row[:width], frame_to_crop, meta.input_size, meta.point_offsets)
            found.append(Landmarks(points_px, points_norm, landmark_quality(row, meta), crop,
                                   point_scores=landmark_point_scores(row, meta)))
        if timings is not None:
            timings["preprocess"] = timings.get("preprocess", 0.0) + (t1 - t0) * 1000.0
            timings["landmark_model"] = timings.get("landmark_model", 0.0) + (t2 - t1) * 1000.0
            timings["postprocess"] = timings.get("postprocess", 0.0) + (time.perf_counter() - t2) * 1000.0
        return found

    def in_crop(self, image: np.ndarray, crop: Crop, timings: dict[str, float] | None = None) -> Landmarks:
        """One pass on one crop."""
        return self.in_crops(image, [crop], timings)[0]

    def in_box(self, image: np.ndarray, box_xyxy: np.ndarray, timings: dict[str, float] | None = None
               ) -> Landmarks:
        """The landmarks of the face in a box (xyxy frame px): `from_crop` of its level crop."""
        return self.from_crop(image, Crop.around_box(box_xyxy, self.meta.crop_scale), timings)

    def from_crop(self, image: np.ndarray, box_crop: Crop, timings: dict[str, float] | None = None) -> Landmarks:
        """The landmarks of the face a detector put in `box_crop`: first pass on it (and on it turned
        when its quality is low), then up to `passes` - 1 more, each on the face crop of the previous
        pass's points, stopping once that is the same crop; none when the best first answer scores below
        NO_FACE_QUALITY (nothing there to refine). The result keeps `box_crop`;
        `crops_run` says how many crops the model saw."""
        first = self.in_crop(image, box_crop, timings)
        runs = 1
        if first.quality is not None and first.quality < self.min_quality:
            turned = self.in_crops(image, [first.crop.turned(a) for a in TURNS_DEG], timings)
            first = max([first, *turned], key=lambda found: found.quality)
            runs += len(TURNS_DEG)
        refine = first.quality is None or first.quality >= NO_FACE_QUALITY
        for _ in range(self.passes - 1 if refine else 0):
            crop = Crop.of_face(first.points_px, self.meta.crop_scale)
            if first.crop.close_to(crop):
                break
            first = self.in_crop(image, crop, timings)
            runs += 1
        return replace(first, crops_run=runs, box_crop=box_crop)

    def mirror_averaged(self, image: np.ndarray, found: Landmarks,
                        timings: dict[str, float] | None = None) -> Landmarks:
        """`found` averaged with the answer on its crop mirrored (test-time flip; the mirrored face's
        eyes swap back, `core.meta.mirrored_order`), quality and point scores averaged too."""
        mirrored = self.in_crop(image, replace(found.crop, flip=not found.crop.flip), timings)
        order = list(mirrored_order(tuple(self.meta.point_names)))
        points_px = (found.points_px + mirrored.points_px[order]) / 2
        quality = None if found.quality is None else (found.quality + mirrored.quality) / 2
        scores = None if found.point_scores is None else (found.point_scores + mirrored.point_scores[order]) / 2
        return replace(found, points_px=points_px.astype(np.float32), quality=quality, point_scores=scores,
                       crops_run=found.crops_run + 1)
