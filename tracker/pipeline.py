"""One frame in, one result out: `Tracker.step(frame) -> FrameResult`, the unit every runtime mode uses.

While a face is tracked (`Track`), its landmark crop comes from the previous frame's points (turned by
their roll, so the eyes are level) and the box model runs only every `detect_every` frames. The track
is lost (and the box model runs on the same frame) when the points leave their crop, their geometry is
implausible or their quality (models with a quality output) falls below `min_quality`; on a box-model
frame, a presence score below `min_presence` means no face, and the landmarks come from the box path
of `tracker.locate` (first pass, then the de-rolled crop of its points). With a landmark model that
outputs a face quality, a box scoring at least `CHECKED_MIN_PRESENCE` is enough for a candidate: the
landmark model's quality then decides (it sees the face de-rolled, where the box model saw it turned),
and a box below `min_presence` needs a quality of at least `DOUBTFUL_BOX_MIN_QUALITY`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from core.frame import Detection, Frame, FrameResult
from core.geometry import (
    apply_affine,
    box_from_square,
    box_iou,
    box_through,
    clip_box,
    face_square_from_points,
    inter_ocular,
    quarter_turn_angle,
    roll_deg,
    turn_image,
    unturn_matrix,
)
from core.meta import POINT_NAMES, MetadataError
from core.postprocess import box_detection, points_inside
from core.preprocess import box_input, to_batch
from tracker.backends import Backend, Log, open_models
from tracker.locate import DEFAULT_MIN_QUALITY, DEFAULT_PASSES, Crop, Landmarks, Locator, check_min_quality
from tracker.smoothing import FaceSmoother

STAGES = ("preprocess", "box_model", "landmark_model", "postprocess")
MODES = ("image", "video", "live")  # image: every frame on its own; video/live: track between frames
DEFAULT_DETECT_EVERY = 10
# Presence needed on box-model frames. Measured with the shipped box model: every test-split face scores
# >= 0.987 while background crops of other photos reach 0.90 (docs/experiments.md).
DEFAULT_MIN_PRESENCE = 0.95
# With a quality model, boxes down to this presence are candidates that the landmark quality confirms or
# rejects: the shipped box model gives a face turned 90 degrees 0.86 (shared/field-cases/rolled).
CHECKED_MIN_PRESENCE = 0.5
# ...and such a doubtful box needs this quality: a face cut in half by the border of
# shared/field-cases/half-outside scored presence 0.93 and quality 0.56 with points 32 % off.
DOUBTFUL_BOX_MIN_QUALITY = 0.9
# With a quality model, the points of a box-model frame must also fit the box they came from: their face
# crop (`Landmarks.box_agreement`) within this centre shift (face-square sides) and side ratio of the box's
# crop. From validation photos (scripts/measure_box_agreement.py, 599 single-face photos of the all-sets
# val split, docs/experiments.md): with the resnet-all run, answers within 10 % NME reached a shift of 0.28
# and a ratio of 1.39 at their 99.5th percentile, and these limits kept 99.5 % of them and rejected 87 % of
# the answers beyond 25 %; with the shipped resnet-simcc (three passes) they keep 98.2 % and reject 95 %.
MAX_BOX_SHIFT = 0.3
MAX_BOX_SIDE_RATIO = 1.5
MIN_IOD_PX = 4.0  # eyes closer than this cannot be tracked reliably
MAX_FACE_PER_FRAME = 3.0  # a face square this many times the frame's longer side is nonsense
REANCHOR_IOU = 0.5  # on a box-model frame, keep the landmark crop while the box agrees this well


@dataclass(frozen=True)
class Track:
    """The face followed between frames: the last frame's points, the face square they imply, and
    their roll (the next landmark crop is turned by it, so the eyes come out level)."""

    points_px: np.ndarray  # (P, 2) float32 frame pixels, POINT_NAMES order
    center_px: np.ndarray  # (2,) float32 centre of the face square (core.geometry.face_square_from_points)
    side_px: float  # side of that face square; the next landmark crop is meta.crop_scale x this
    angle_deg: float = 0.0  # roll of the points (core.geometry.roll_deg), degrees

    @classmethod
    def from_points(cls, points_px: np.ndarray, square: tuple[np.ndarray, float] | None = None) -> "Track":
        """The track of these points; `square` is their face square when already computed."""
        center, side = face_square_from_points(points_px) if square is None else square
        return cls(points_px, center, side, roll_deg(points_px))

    def crop(self, crop_scale: float) -> Crop:
        """The next frame's landmark crop: the face square x `crop_scale`, turned by the roll."""
        return Crop(self.center_px, self.side_px * crop_scale, self.angle_deg)

    def box_xyxy(self) -> np.ndarray:
        """The face square as an xyxy box in frame pixels, (4,) float32."""
        return box_from_square(self.center_px, self.side_px)


class _Look(NamedTuple):
    """One attempt at the face in a frame: the box model's detection (when it ran), the points found
    (None: none looked for, or their quality too low), whether they can seed the next crop, their face
    square, whether the crop came from the track, and the face quality (None: the model gives none)."""

    detection: Detection | None
    points_px: np.ndarray | None
    ok: bool
    square: tuple[np.ndarray, float] | None
    tracked: bool
    quality: float | None = None


class Tracker:
    """Single-face tracker around a box backend and a landmark backend.

    With `flip_test`, still images (`mode` "image") average each face's last landmark pass with the
    answer on its mirrored crop (`Locator.mirror_averaged`): one more landmark run per face.

    Raises MetadataError when a backend is not the kind of model its slot needs, InputError for
    `detect_every` < 1, `min_presence` or `min_quality` outside 0..1, `passes` other than 1 or 2 or an
    unknown `mode`.
    """

    def __init__(self, box_backend: Backend, landmark_backend: Backend, *, detect_every: int = DEFAULT_DETECT_EVERY,
                 min_presence: float = DEFAULT_MIN_PRESENCE, min_quality: float = DEFAULT_MIN_QUALITY,
                 smooth: bool = False, mode: str = "video", smoother: FaceSmoother | None = None,
                 passes: int = DEFAULT_PASSES, flip_test: bool = False) -> None:
        if box_backend.meta.kind != "box":
            raise MetadataError(f"{box_backend.name}: not a box model ({box_backend.meta.kind})")
        if landmark_backend.meta.kind != "landmarks":
            raise MetadataError(f"{landmark_backend.name}: not a landmark model ({landmark_backend.meta.kind})")
        if tuple(landmark_backend.meta.point_names) != POINT_NAMES:
            raise MetadataError(f"landmark model predicts {', '.join(landmark_backend.meta.point_names)}; "
                                f"this tracker needs {', '.join(POINT_NAMES)}")
        _check_options(detect_every, min_presence, min_quality)
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        self.box_backend = box_backend
        self.landmark_backend = landmark_backend
        self.locator = Locator(landmark_backend, passes=passes, min_quality=min_quality)
        self.detect_every = int(detect_every)
        self.min_presence = float(min_presence)
        self.min_quality = float(min_quality)
        self.mode = mode
        self.flip_test = bool(flip_test)
        self.smooth = bool(smooth)
        self.smoother = smoother or FaceSmoother()
        self.point_names = POINT_NAMES
        self.box_calls = 0
        self.frames = 0
        self.lost_reason = "no face yet"
        self.reset()

    @property
    def landmark_calls(self) -> int:
        """Landmark-model calls so far (a batch of turned crops is one call)."""
        return self.locator.calls

    def reset(self) -> None:
        """Forget the tracked face: the next frame runs the box model."""
        self.track: Track | None = None
        self._since_detect = 0
        self._score = 0.0
        self.smoother.reset()

    @property
    def tracking(self) -> bool:
        return self.track is not None

    def step(self, frame: Frame) -> FrameResult:
        """Find the face in `frame` (uint8 HxWx3 BGR): box model when needed, landmarks from the crop,
        optional One-Euro smoothing (`smooth`, not in image mode, on `frame.t_ms`).

        The box model runs in image mode, without a track, every `detect_every` frames, and again on
        the same frame when the tracked points are lost. On a box-model frame the landmarks come from
        `tracker.locate.Locator.in_box` (first pass on the box's crop, second on the de-rolled crop of
        its points), else from the track's crop, turned by the last roll. A face whose quality (models
        with a quality output) is below `min_quality` is no face. Returns a FrameResult: box and points
        in frame pixels (None when no face), quality, stage timings in ms. Updates the track, counters
        (`box_calls`, `landmark_calls`, `frames`) and `lost_reason`. Raises MetadataError when a
        model's output does not have the shape its metadata promises; a backend's own failure
        propagates unchanged.
        """
        t_start = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        image = frame.image
        detect = self.mode == "image" or self.track is None or self._since_detect >= self.detect_every
        look = self._look(image, detect, timings)
        if not look.ok and (not detect or look.tracked):
            # Lost in the track's crop: forget the track and look again through the box, same frame
            # (the box model runs unless it already did).
            self.track, detect = None, True
            look = self._look(image, True, timings, look.detection)
        self._since_detect = 1 if detect else self._since_detect + 1
        self.frames += 1

        t0 = time.perf_counter()
        detection, points = look.detection, look.points_px
        if detection is not None:
            self._score = detection.score
        if points is None:
            self.track = None
            self.smoother.reset()
            result = FrameResult(frame, None, None, timings, detect, False)
        else:
            keep = look.ok and self.mode != "image"
            self.track = Track.from_points(points, look.square) if keep else None
            center, face_side = look.square
            if detection is None:
                box = clip_box(box_from_square(center, face_side), frame.width, frame.height)
                detection = Detection(box, self._score, from_model=False)
            if self.smooth and self.mode != "image":
                points, box = self.smoother(points, detection.box_xyxy, frame.t_ms / 1000.0, face_side)
                detection = Detection(box, detection.score, detection.from_model)
            result = FrameResult(frame, detection, points, timings, detect, look.tracked, look.quality)
        timings["postprocess"] += (time.perf_counter() - t0) * 1000.0
        timings["total"] = (time.perf_counter() - t_start) * 1000.0
        return result

    def _look(self, image: np.ndarray, detect: bool, timings: dict[str, float],
              detection: Detection | None = None) -> _Look:
        """One attempt: the box model when `detect` (unless its `detection` is given), then the landmarks
        in the crop the track gives (while it agrees with the box) or the box path (`Locator.in_box`)."""
        if detect and detection is None:
            detection = self._detect(image, timings)
        if detect and detection is None:
            self.lost_reason = "presence below min_presence"
            return _Look(None, None, False, None, False)
        track = self.track
        tracked = track is not None and (
            detection is None or box_iou(track.box_xyxy(), detection.box_xyxy) >= REANCHOR_IOU)
        if tracked:
            found = self.locator.in_crop(image, track.crop(self.landmark_backend.meta.crop_scale), timings)
        else:
            found = self.locator.in_box(image, detection.box_xyxy, timings)
            if self.mode == "image" and found.quality is not None and self._rejects(detection, found) is not None:
                detection, found = self._search_turns(image, detection, found, timings)
            if self.flip_test and self.mode == "image":
                found = self.locator.mirror_averaged(image, found, timings)
        t0 = time.perf_counter()
        reason = self._rejects(None if tracked else detection, found, agreement=not tracked)
        if reason is not None:
            self.lost_reason = reason
            return _Look(detection, None, False, None, tracked, found.quality)
        # the face square is computed once here: the box, smoothing and next crop reuse it
        square = face_square_from_points(found.points_px)
        ok, reason = plausible(found.points_px, found.points_norm, image.shape[1], image.shape[0], square)
        if not ok:
            self.lost_reason = reason
        timings["postprocess"] += (time.perf_counter() - t0) * 1000.0
        return _Look(detection, found.points_px, ok, square, tracked, found.quality)

    def _rejects(self, detection: Detection | None, found: Landmarks, agreement: bool = True) -> str | None:
        """Why an answer is no face (None: it is one), for models with a quality output: a quality below
        `min_quality` (below DOUBTFUL_BOX_MIN_QUALITY for a `detection` under `min_presence`), or, with
        `agreement` (the box path), points whose face crop disagrees with the box's
        (`Landmarks.box_agreement` beyond MAX_BOX_SHIFT or MAX_BOX_SIDE_RATIO)."""
        if found.quality is None:
            return None
        needed = self.min_quality
        if detection is not None and detection.score < self.min_presence:
            needed = max(needed, DOUBTFUL_BOX_MIN_QUALITY)
        if found.quality < needed:
            return "face quality below min_quality"
        if not agreement:
            return None
        shift, ratio = found.box_agreement(self.landmark_backend.meta.crop_scale)
        if shift > MAX_BOX_SHIFT or not 1.0 / MAX_BOX_SIDE_RATIO <= ratio <= MAX_BOX_SIDE_RATIO:
            return "landmarks disagree with the face box"
        return None

    def _search_turns(self, image: np.ndarray, detection: Detection, found: Landmarks, timings: dict[str, float]
                      ) -> tuple[Detection, Landmarks]:
        """The box path again on the frame turned by 90, 180 and 270 degrees (the box model was trained
        on upright faces: on a face lying on its side or upside down its box is off). Still images only
        (`mode` "image"): it costs three more box-model runs and their landmark passes, and a video's
        track keeps a face once found, whatever its roll. Each turned
        frame's box becomes a crop of the frame turned alike (`core.geometry.quarter_turn_angle`), and
        the answer (`Locator.from_crop`) that `_rejects` accepts with the highest quality wins. When
        none is accepted, the upright answer stays (and is rejected)."""
        height, width = image.shape[:2]
        accepted = []
        for turns in (1, 2, 3):
            found_turned = self._detect(turn_image(image, turns), timings)
            if found_turned is None:
                continue
            back = unturn_matrix(turns, width, height)
            in_turned = Crop.around_box(found_turned.box_xyxy, self.landmark_backend.meta.crop_scale)
            crop = replace(in_turned, center_px=apply_affine(in_turned.center_px, back)[0],
                           angle_deg=quarter_turn_angle(turns))
            candidate = self.locator.from_crop(image, crop, timings)
            box = Detection(box_through(back, found_turned.box_xyxy).astype(np.float32), found_turned.score,
                            found_turned.from_model)
            if self._rejects(box, candidate) is None:
                accepted.append((box, candidate))
        if not accepted:
            return detection, found
        return max(accepted, key=lambda pair: pair[1].quality)

    def _detect(self, image: np.ndarray, timings: dict[str, float]) -> Detection | None:
        """Run the box model on the letterboxed frame; None when the presence score is below `min_presence`."""
        meta = self.box_backend.meta
        t0 = time.perf_counter()
        x, frame_to_letterbox = box_input(image, meta)
        batch = to_batch([x])
        t1 = time.perf_counter()
        out = self.box_backend.predict(batch)
        t2 = time.perf_counter()
        self.box_calls += 1
        if out.ndim != 2 or out.shape[1] != 5:
            raise MetadataError(f"{self.box_backend.name}: box model output {out.shape}, expected (B, 5)")
        detection = box_detection(out[0], frame_to_letterbox, meta.input_size, image.shape[1], image.shape[0])
        timings["preprocess"] += (t1 - t0) * 1000.0
        timings["box_model"] += (t2 - t1) * 1000.0
        timings["postprocess"] += (time.perf_counter() - t2) * 1000.0
        return detection if detection.score >= self.presence_needed else None

    @property
    def presence_needed(self) -> float:
        """The box presence a candidate needs: `min_presence`, or at most CHECKED_MIN_PRESENCE when the
        landmark model's quality output checks every candidate."""
        if self.landmark_backend.meta.quality:
            return min(self.min_presence, CHECKED_MIN_PRESENCE)
        return self.min_presence


def plausible(points_px: np.ndarray, points_norm: np.ndarray, width: int, height: int,
              square: tuple[np.ndarray, float] | None = None) -> tuple[bool, str]:
    """Whether landmarks can seed the next frame's crop, and why not (`square`: their face square, if known)."""
    if not points_inside(points_norm):
        return False, "points left the crop"
    if inter_ocular(points_px) < MIN_IOD_PX:
        return False, "eyes too close together"
    center, side = square if square is not None else face_square_from_points(points_px)
    if side > MAX_FACE_PER_FRAME * max(width, height):
        return False, "face implausibly large"
    if not (0 <= center[0] <= width and 0 <= center[1] <= height):
        return False, "face centre left the frame"
    return True, ""


def _check_options(detect_every: int, min_presence: float, min_quality: float = DEFAULT_MIN_QUALITY) -> None:
    if detect_every < 1:
        raise InputError("--detect-every must be at least 1")
    if not 0.0 <= min_presence <= 1.0:
        raise InputError("--min-presence must lie in 0..1")
    check_min_quality(min_quality)


def build_tracker(weights_dir: str | Path, *, backend: str = "onnx", device: str = "auto",
                  landmark_model: str | None = None, detect_every: int = DEFAULT_DETECT_EVERY,
                  min_presence: float = DEFAULT_MIN_PRESENCE, min_quality: float = DEFAULT_MIN_QUALITY,
                  smooth: bool = False, mode: str = "video", threads: int | None = None,
                  log: Log | None = None, flip_test: bool = False) -> Tracker:
    """Load the weights folder's box and landmark models and wrap them in a Tracker (options checked first)."""
    _check_options(detect_every, min_presence, min_quality)
    box, landmarks = open_models(weights_dir, backend, device, landmark_model, threads, log)
    return Tracker(box, landmarks, detect_every=detect_every, min_presence=min_presence, min_quality=min_quality,
                   smooth=smooth, mode=mode, flip_test=flip_test)
