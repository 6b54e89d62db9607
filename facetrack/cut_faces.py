"""Faces cut by the image border, made from labelled photos (`facetrack eval --cut`).

A face half outside the frame is common in video (someone walks out of shot) and in cropped photos. The
field case `../shared/field-cases/half-outside` has two such faces; this measures the same on every face
of a split, so the model can be judged on faces nobody tuned on. Each upright face's photo is cut, by
plain cropping, through the face between two of its features, one side at a time (`CUT_SIDES`):

- "left": the image's left edge runs half-way between the eye on the image's left and the nose tip
  (that eye is outside, as in `cut_left.jpg`); "right" the same on the other side;
- "bottom": the bottom edge runs half-way between the nose tip and the mouth centre (the mouth is
  outside, as in `cut_bottom.jpg`); "top": the top edge half-way between the eyes' midpoint and the nose
  tip (both eyes outside);
- "left-near", "right-near": the edge runs NEAR_MARGIN_IOD inter-ocular distances beyond the eye on that
  side: both eyes are in, the face is at the border (a face the tool should still report).

The face box the runtime starts from is the true box clipped to the cut image (what a detector can see);
the points come from the runtime's box path (`tracker.locate.Locator.in_box`). The field cases' rule
decides (README there): a face passes when the tool reports no face (quality below `--min-quality`, or an
answered eye outside the cut image, which the tracker never reports: `tracker.pipeline.eyes_in_frame`) or
when every point inside the cut image is within `MAX_IN_FRAME_ERROR_IOD` inter-ocular distances of the
truth. A "confident wrong" face is one reported with an in-frame point further off than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.geometry import points_in_window, roll_deg
from core.meta import POINT_NAMES
from core.metrics import nme_per_point
from tracker.locate import Locator
from tracker.pipeline import eyes_in_frame
from training.data.samples import FaceSample

CUT_SIDES = ("left", "right", "top", "bottom", "left-near", "right-near")
NEAR_MARGIN_IOD = 0.25  # "left-near" / "right-near": the border this far beyond the outer eye (both eyes in)
MAX_ROLL_DEG = 20.0  # only faces this close to upright are cut: the cut runs along an image axis
MAX_IN_FRAME_ERROR_IOD = 0.10  # ../shared/field-cases/README.md, half-outside: in-frame points within 10 %
MIN_KEPT_PX = 16  # a cut that leaves less of the image than this (either side) is not made

_EYES, _NOSE, _MOUTH = (0, 1), 2, 3


def cut_window(points_px: np.ndarray, image_wh: tuple[int, int], side: str) -> tuple[int, int, int, int] | None:
    """The part of a W x H image kept when a face with `points_px` (4, 2; POINT_NAMES order, image px) is
    cut at `side` (one of CUT_SIDES): (x0, y0, x1, y1) integer pixel bounds, x1 and y1 exclusive; None when
    the face is rolled by more than MAX_ROLL_DEG, a feature that must stay is already outside the image,
    or the cut would leave less than MIN_KEPT_PX or cut nothing, or it would not hide exactly what the side
    names (the eye on that side; both eyes; the mouth; nothing for the "-near" sides) while keeping the eye
    on the other side and the nose (a face turned in profile has its nose beyond the far eye). ValueError
    for an unknown side."""
    if side not in CUT_SIDES:
        raise ValueError(f"unknown cut side {side!r}; expected one of {', '.join(CUT_SIDES)}")
    pts = np.asarray(points_px, dtype=np.float64).reshape(len(POINT_NAMES), 2)
    w, h = image_wh
    if abs(roll_deg(pts)) > MAX_ROLL_DEG or not ((pts >= 0).all() and (pts[:, 0] < w).all() and (pts[:, 1] < h).all()):
        return None
    eyes_x = pts[list(_EYES), 0]
    nose, mouth = pts[_NOSE], pts[_MOUTH]
    x0, y0, x1, y1 = 0, 0, w, h
    iod = float(np.linalg.norm(pts[0] - pts[1]))
    if side == "left":
        x0 = math.ceil((eyes_x.min() + nose[0]) / 2)
        hidden = [int(np.argmin(eyes_x))]
    elif side == "right":
        x1 = math.floor((eyes_x.max() + nose[0]) / 2) + 1
        hidden = [int(np.argmax(eyes_x))]
    elif side == "left-near":
        x0 = math.ceil(eyes_x.min() - NEAR_MARGIN_IOD * iod)
        hidden = []
    elif side == "right-near":
        x1 = math.floor(eyes_x.max() + NEAR_MARGIN_IOD * iod) + 1
        hidden = []
    elif side == "top":
        y0 = math.ceil((pts[list(_EYES), 1].mean() + nose[1]) / 2)
        hidden = list(_EYES)
    else:
        y1 = math.floor((nose[1] + mouth[1]) / 2) + 1
        hidden = [_MOUTH]
    if x1 - x0 < MIN_KEPT_PX or y1 - y0 < MIN_KEPT_PX or (x0, y0, x1, y1) == (0, 0, w, h) or x0 < 0 or x1 > w:
        return None  # too little left, or nothing cut (the face already at the photo's edge)
    window = (x0, y0, x1, y1)
    inside = points_in_window(pts, window)
    kept = [i for i in range(len(pts)) if i not in hidden and (side in ("top", "bottom") or i != _MOUTH)]
    if inside[hidden].any() or not inside[kept].all():
        return None  # the face's pose puts no such cut between these features (a profile, a face rolled)
    return window


@dataclass
class CutAnswer:
    """The runtime's answer on one cut face: points (4, 2) in the uncut photo's pixels, its quality (NaN
    when the model gives none), the window kept, which true points lie in it, and (when known) the
    runtime's points (4, 2) and quality on the same face uncut, for the cost of the cut."""

    sample: FaceSample
    side: str
    window: tuple[int, int, int, int]
    points_px: np.ndarray
    quality: float
    visible: np.ndarray
    uncut_points_px: np.ndarray | None = None
    uncut_quality: float = math.nan
    eyes_in_frame: bool = True  # both answered eyes inside the cut image: else the tracker reports no face

    def visible_errors_iod(self, points_px: np.ndarray | None = None) -> np.ndarray:
        """(V,) the errors of the true points inside the window, in inter-ocular distances
        (`core.metrics.nme_per_point`), of `points_px` (4, 2; default: the answer's points)."""
        answer = self.points_px if points_px is None else points_px
        return nme_per_point(np.asarray(answer)[None], np.asarray(self.sample.points_px)[None])[0][self.visible] / 100

    def reported(self, min_quality: float) -> bool:
        """Whether the tracker would report this face: both eyes in the picture and (models with a quality
        output) a quality of at least `min_quality`."""
        return self.eyes_in_frame and (math.isnan(self.quality) or self.quality >= min_quality)


def locate_cut(locator: Locator, image: np.ndarray, sample: FaceSample, side: str,
               flip_test: bool = False) -> CutAnswer | None:
    """The box path of the runtime on `sample`'s face in `image` (uint8 HxWx3 BGR) cut at `side`; None
    when `cut_window` makes no cut."""
    h, w = image.shape[:2]
    window = cut_window(sample.points_px, (w, h), side)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    shift = np.array([x0, y0, x0, y0], dtype=np.float32)
    box = np.asarray(sample.box_xyxy, dtype=np.float32) - shift
    box = np.clip(box, 0, [x1 - x0, y1 - y0, x1 - x0, y1 - y0]).astype(np.float32)
    cut = np.ascontiguousarray(image[y0:y1, x0:x1])
    found = locator.in_box(cut, box)
    if flip_test:
        found = locator.mirror_averaged(cut, found)
    points = found.points_px + np.array([x0, y0], dtype=np.float32)
    return CutAnswer(sample, side, window, points.astype(np.float32),
                     math.nan if found.quality is None else float(found.quality),
                     points_in_window(sample.points_px, window),
                     eyes_in_frame=eyes_in_frame(found.points_px, x1 - x0, y1 - y0))


def cut_rule() -> dict:
    """The settings of the cut and its pass rule, for reports."""
    return {"max_in_frame_error_iod": MAX_IN_FRAME_ERROR_IOD, "max_roll_deg": MAX_ROLL_DEG,
            "min_kept_px": MIN_KEPT_PX}


def score_cut(answers: list[CutAnswer], min_quality: float) -> dict:
    """Per side: faces cut, share reported as no face (quality below `min_quality`, or an eye outside: of
    these, "eye_outside"), mean in-frame error
    (% of the inter-ocular distance, mean over each reported face's in-frame points), share of reported
    faces whose worst in-frame point is off by more than MAX_IN_FRAME_ERROR_IOD ("confident_wrong", of
    all cut faces) and the pass share (no face, or every in-frame point within it); the same per source
    group under "per_group"; "uncut_pass": the pass share, by the same rule, of the same faces' same points
    on the uncut photos (answers with `uncut_points_px`). `answers` hold points in each set's own convention."""
    report: dict = {}
    for side in CUT_SIDES:
        rows = [a for a in answers if a.side == side]
        if not rows:
            continue
        report[side] = _side_stats(rows, min_quality)
        groups = sorted({a.sample.group for a in rows})
        report[side]["per_group"] = {g: _side_stats([a for a in rows if a.sample.group == g], min_quality)
                                     for g in groups}
    return report


def _side_stats(rows: list[CutAnswer], min_quality: float) -> dict:
    eye_outside = np.array([not a.eyes_in_frame for a in rows])
    no_face = np.array([not a.reported(min_quality) for a in rows])
    errors, worst, uncut = [], [], []
    for a in rows:
        e = a.visible_errors_iod()
        errors.append(float(e.mean()))
        worst.append(float(e.max()))
        if a.uncut_points_px is not None:
            uncut_no_face = not math.isnan(a.uncut_quality) and a.uncut_quality < min_quality
            uncut_worst = float(a.visible_errors_iod(a.uncut_points_px).max())
            uncut.append(uncut_no_face or uncut_worst <= MAX_IN_FRAME_ERROR_IOD)
    errors_a, worst_a = np.array(errors), np.array(worst)
    reported = ~no_face
    wrong = reported & (worst_a > MAX_IN_FRAME_ERROR_IOD)
    return {"faces": len(rows), "no_face": float(no_face.mean()), "eye_outside": float(eye_outside.mean()),
            "in_frame_nme_mean": float(100 * errors_a[reported].mean()) if reported.any() else None,
            "in_frame_worst_median": float(100 * np.median(worst_a[reported])) if reported.any() else None,
            "confident_wrong": float(wrong.mean()), "pass": float(1.0 - wrong.mean()),
            "uncut_pass": float(np.mean(uncut)) if uncut else None}
