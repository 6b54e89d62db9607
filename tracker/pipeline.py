"""One frame in, one result out: `Tracker.step(frame) -> FrameResult`, the unit every runtime mode uses.

Every face in view is followed by its own `Track`, with an id that stays with the face (1, 2, 3, ... per
Tracker; an id is never given to another face). Between detector frames a track's landmark crop comes
from its previous points (their face square, turned by their roll so the eyes are level), and the
landmark model runs once per frame on the crops of all tracks as one batch.

The face detector (`tracker.detect`) runs on the first frame, every `detect_every` frames, without any
track, on every still image, and again on the same frame when a track is lost. Its faces are matched to
the tracks by box IoU (`associate`: Hungarian, at least MATCH_MIN_IOU):
- a matched track keeps its own crop while its box and the detection agree (IoU >= REANCHOR_IOU); else it
  is re-anchored on the detection through the box path, keeping its id;
- an unmatched detection starts a new track through the box path, best first, while fewer than
  `max_faces` faces are in view;
- an unmatched track goes on from its points while its quality and plausibility hold.
A single-face detector (the course project's box regressor) speaks for the one face: its box belongs to
the track whatever their IoU, and a detector frame without a box ends the track.

A track ends when its quality (models with a quality output) falls below `min_quality`, an eye leaves
the frame (`eyes_in_frame`: no face is reported with an eye outside the frame), its points are
implausible (`plausible`: they left their crop, eyes too close, face too large) or its face centre left
the frame. Lost in its own crop, a face is looked for through the detector on the same frame (the
detector runs unless it already did); a detection where the lost track was keeps the track's id. Two
faces whose face boxes overlap more than MERGE_IOU are one: the older id stays.

The box path (`tracker.locate.Locator.from_crop`) starts from the detection's crop (the crop of its
coarse points, turned by their roll, when the detector gives points), then the de-rolled crops of the
points found. With a landmark model that outputs a face quality, a detection scoring at least
`CHECKED_MIN_PRESENCE` is enough for a candidate: the landmark model's quality then decides (it sees
the face de-rolled, where the detector saw it turned), a detection below `min_presence` needs a quality
of at least `DOUBTFUL_BOX_MIN_QUALITY`, and the points must agree with the box they came from. Still
images (`mode` "image") also try the frame turned by 90, 180 and 270 degrees for a face the upright
detection does not explain, and may average each face with its mirrored crop (`flip_test`).

The reported box is one thing on every frame: the face square of the points (smoothed, when smoothing),
never the detector's box, which only seeds crops; so the box does not jump when the detector runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from core.frame import Detection, FaceResult, Frame, FrameResult
from core.geometry import (
    apply_affine,
    box_from_square,
    box_iou,
    box_through,
    clip_box,
    face_square_from_points,
    inter_ocular,
    iou_matrix,
    points_in_window,
    quarter_turn_angle,
    roll_deg,
    turn_image,
    unturn_matrix,
)
from core.meta import POINT_NAMES, MetadataError
from core.postprocess import points_inside
from tracker.backends import Backend, Log, open_models
from tracker.detect import FaceDetector, default_min_score, make_detector
from tracker.locate import DEFAULT_MIN_QUALITY, DEFAULT_PASSES, Crop, Landmarks, Locator, check_min_quality
from tracker.smoothing import FaceSmoother

STAGES = ("preprocess", "box_model", "landmark_model", "postprocess")  # box_model: the face detector
MODES = ("image", "video", "live")  # image: every frame on its own; video/live: track between frames
DEFAULT_DETECT_EVERY = 10
# Faces followed at once on live sources by default (each costs a crop per frame; files and images: no limit).
DEFAULT_LIVE_MAX_FACES = 4
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
REANCHOR_IOU = 0.5  # on a detector frame, a track keeps its own crop while its box agrees this well
# A detection and a track (or a turned frame's detection and an upright one) whose boxes overlap less
# are different faces. The face square of the points and a detector's box of the same face overlap
# 0.5-0.8; two neighbouring faces' boxes barely touch.
MATCH_MIN_IOU = 0.3
MERGE_IOU = 0.5  # two faces whose face boxes overlap more than this are one face


@dataclass(frozen=True)
class Track:
    """One face followed between frames: its id, the last frame's points, the face square they imply,
    their roll (the next landmark crop is turned by it, so the eyes come out level) and the detector's
    last score for it."""

    points_px: np.ndarray  # (P, 2) float32 frame pixels, POINT_NAMES order
    center_px: np.ndarray  # (2,) float32 centre of the face square (core.geometry.face_square_from_points)
    side_px: float  # side of that face square; the next landmark crop is meta.crop_scale x this
    angle_deg: float = 0.0  # roll of the points (core.geometry.roll_deg), degrees
    id: int = 0  # 1, 2, 3, ... per Tracker
    score: float = 0.0  # the detector's score for this face when it last saw it, 0..1

    @classmethod
    def from_points(cls, points_px: np.ndarray, square: tuple[np.ndarray, float] | None = None, *,
                    id: int = 0, score: float = 0.0) -> "Track":
        """The track of these points; `square` is their face square when already computed."""
        center, side = face_square_from_points(points_px) if square is None else square
        return cls(points_px, center, side, roll_deg(points_px), id, score)

    def crop(self, crop_scale: float) -> Crop:
        """The next frame's landmark crop: the face square x `crop_scale`, turned by the roll."""
        return Crop(self.center_px, self.side_px * crop_scale, self.angle_deg)

    def box_xyxy(self) -> np.ndarray:
        """The face square as an xyxy box in frame pixels, (4,) float32."""
        return box_from_square(self.center_px, self.side_px)


class _Look(NamedTuple):
    """One attempt at one face in a frame: the track it continues (None: a face new to the tracker), the
    detection it started from or that confirmed its crop (None: none), the points found (None: their
    quality too low or they disagree with their box), whether they can seed the next crop, their face
    square, whether the crop came from the track, the face quality and the point scores (None: the
    model gives none)."""

    track: Track | None
    detection: Detection | None
    points_px: np.ndarray | None
    ok: bool
    square: tuple[np.ndarray, float] | None
    tracked: bool
    quality: float | None = None
    point_scores: np.ndarray | None = None

    @property
    def found(self) -> bool:
        return self.points_px is not None

    def box_xyxy(self) -> np.ndarray:
        """The face square of the points as an xyxy box, (4,) float32 frame pixels (only when `found`)."""
        return box_from_square(*self.square)


def associate(track_boxes_xyxy: np.ndarray, detection_boxes_xyxy: np.ndarray, min_iou: float
              ) -> tuple[list[tuple[int, int, float]], list[int]]:
    """Detections to tracks by box overlap: the one-to-one pairing of largest total IoU (Hungarian,
    `scipy.optimize.linear_sum_assignment`) over (N, 4) and (M, 4) xyxy boxes, keeping the pairs whose
    IoU is at least `min_iou`. Returns ([(track index, detection index, IoU)], the unpaired detection
    indices in ascending order). With one track or one detection the pairing is the pair of largest IoU,
    found without scipy (importing `scipy.optimize` costs 0.2-0.5 s of CPU, a one-face video's whole start)."""
    n, m = len(track_boxes_xyxy), len(detection_boxes_xyxy)
    pairs: list[tuple[int, int, float]] = []
    if n and m:
        iou = iou_matrix(np.asarray(track_boxes_xyxy), np.asarray(detection_boxes_xyxy))
        if min(n, m) == 1:
            best = np.unravel_index(int(np.argmax(iou)), iou.shape)
            rows, cols = [best[0]], [best[1]]
        else:
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(iou, maximize=True)
        pairs = [(int(i), int(j), float(iou[i, j])) for i, j in zip(rows, cols) if iou[i, j] >= min_iou]
    paired = {j for _, j, _ in pairs}
    return pairs, [j for j in range(m) if j not in paired]


def _boxes(items) -> np.ndarray:
    """(N, 4) float32 xyxy boxes of Tracks, _Looks or Detections."""
    rows = [item.box_xyxy if isinstance(item, Detection) else item.box_xyxy() for item in items]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


class Tracker:
    """Multi-face tracker around a face detector and a landmark backend (the module docstring has the rules).

    `detector` is a `tracker.detect.FaceDetector`, or a face-finding model's backend (kind "detector" or
    "box"), which `tracker.detect.make_detector` wraps with `presence_needed` as its score threshold and
    `max_faces`. Detections scoring below `presence_needed` are ignored either way. `min_presence` None
    is the detector's own threshold (a FaceDetector's `min_score`; a backend's
    `tracker.detect.default_min_score`: its "min_score" metadata, 0.95 for the box
    regressor). `max_faces` (None: no limit) caps the faces followed and reported at once: the older
    tracks stay, new faces wait.

    With `flip_test`, still images (`mode` "image") average each face's last landmark pass with the
    answer on its mirrored crop (`Locator.mirror_averaged`): one more landmark run per face.

    Raises MetadataError when a backend is not the kind of model its slot needs, InputError for
    `detect_every` < 1, `min_presence` or `min_quality` outside 0..1, `max_faces` < 1, `passes` other
    than 1, 2 or 3 or an unknown `mode`.
    """

    def __init__(self, detector: FaceDetector | Backend, landmark_backend: Backend, *,
                 detect_every: int = DEFAULT_DETECT_EVERY, min_presence: float | None = None,
                 min_quality: float = DEFAULT_MIN_QUALITY, smooth: bool = False, mode: str = "video",
                 passes: int = DEFAULT_PASSES, flip_test: bool = False, max_faces: int | None = None) -> None:
        if landmark_backend.meta.kind != "landmarks":
            raise MetadataError(f"{landmark_backend.name}: not a landmark model ({landmark_backend.meta.kind})")
        if tuple(landmark_backend.meta.point_names) != POINT_NAMES:
            raise MetadataError(f"landmark model predicts {', '.join(landmark_backend.meta.point_names)}; "
                                f"this tracker needs {', '.join(POINT_NAMES)}")
        _check_options(detect_every, min_presence, min_quality, max_faces)
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if mode == "live" and (max_faces is None or max_faces > 1):
            # `associate` pairs several faces with scipy: a live run loads it with the models, not mid-run
            # (a 0.2-0.5 s stall when a second face comes); files and images load it when first needed
            import scipy.optimize  # noqa: F401

        given = hasattr(detector, "detect")  # a FaceDetector, else a model backend to wrap
        if min_presence is None:
            min_presence = detector.min_score if given else default_min_score(detector.meta)
        self.landmark_backend = landmark_backend
        self.min_presence = float(min_presence)
        self.min_quality = float(min_quality)
        self.max_faces = max_faces
        self.detector: FaceDetector = detector if given else make_detector(detector, self.presence_needed, max_faces)
        self.locator = Locator(landmark_backend, passes=passes, min_quality=min_quality)
        self.detect_every = int(detect_every)
        self.mode = mode
        self.flip_test = bool(flip_test)
        self.smooth = bool(smooth)
        self.point_names = POINT_NAMES
        self.frames = 0
        self.lost_reason = "no face yet"  # why the last face was rejected or its track lost
        self._next_id = 1
        self.reset()

    @property
    def box_backend(self) -> Backend:
        """The face detector's model backend."""
        return self.detector.backend

    @property
    def models(self) -> tuple[Backend, Backend]:
        """The (face detector, landmark) backends, to share with another Tracker (`build_tracker(models=...)`)."""
        return self.detector.backend, self.landmark_backend

    @property
    def box_calls(self) -> int:
        """Face-detector runs so far (the turned frames of still images each count)."""
        return self.detector.calls

    @property
    def landmark_calls(self) -> int:
        """Landmark-model calls so far (a batch of crops is one call)."""
        return self.locator.calls

    @property
    def presence_needed(self) -> float:
        """The detector score a candidate needs: `min_presence`, or at most CHECKED_MIN_PRESENCE when the
        landmark model's quality output checks every candidate."""
        if self.landmark_backend.meta.quality:
            return min(self.min_presence, CHECKED_MIN_PRESENCE)
        return self.min_presence

    def reset(self) -> None:
        """Forget every tracked face: the next frame runs the detector. Ids already given stay used."""
        self.tracks: list[Track] = []
        self._since_detect = 0
        self._smoothers: dict[int, FaceSmoother] = {}

    @property
    def tracking(self) -> bool:
        return bool(self.tracks)

    def step(self, frame: Frame) -> FrameResult:
        """Find every face in `frame` (uint8 HxWx3 BGR): detector when needed, landmarks from the crops,
        optional One-Euro smoothing per face (`smooth`, not in image mode, on `frame.t_ms`).

        Returns a FrameResult: for each face its id, box (the face square of its points, clipped) and
        detector score, points in frame pixels, quality and whether its crop came from its track;
        stage timings in ms. Updates the tracks, counters (`box_calls`, `landmark_calls`, `frames`) and
        `lost_reason`. In image mode each frame is on its own and its faces are numbered from 1. Raises
        MetadataError when a model's output does not have the shape its metadata promises; a backend's
        own failure propagates unchanged.

        Takes a `core.frame.Frame` only: anything else (a numpy image) is an InputError pointing to
        `tracker.FaceTracker`, whose `step(image)` and `ft(image)` take numpy images.
        """
        if not isinstance(frame, Frame):
            raise InputError(f"Tracker.step takes a core.frame.Frame, not {type(frame).__name__}; for numpy images "
                             "use tracker.FaceTracker: ft.step(image) for video frames, ft(image) for stills")
        t_start = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        if self.mode == "image":
            self.reset()
            self._next_id = 1
        detect = self.mode == "image" or not self.tracks or self._since_detect >= self.detect_every
        looks, detect = self._looks(frame.image, detect, timings)
        self._since_detect = 1 if detect else self._since_detect + 1
        self.frames += 1
        t0 = time.perf_counter()
        faces = self._conclude(looks, frame)
        timings["postprocess"] += (time.perf_counter() - t0) * 1000.0
        timings["total"] = (time.perf_counter() - t_start) * 1000.0
        return FrameResult(frame, faces, timings, detect)

    def _looks(self, image: np.ndarray, detect: bool, timings: dict[str, float]) -> tuple[list[_Look], bool]:
        """Every face of the frame: the tracks in their own crops (one batch), then the box path for
        re-anchored and lost tracks and for new faces. Returns (looks, whether the detector ran)."""
        turned: dict[int, list[Detection]] = {}  # still images: the turned frames' detections, once per frame
        detections = self._detect_in_frame(image, timings) if detect else None
        follow, reanchor, new = self._plan(detections)
        looks = self._follow(image, follow, timings)
        kept = [look for look in looks if look.ok]
        lost = [look for look in looks if not look.ok]
        retry = [(look.track, look.detection) for look in lost if look.detection is not None]
        if lost and detections is None:
            # Lost in its own crop: look again through the detector on the same frame.
            detections, detect = self._detect_in_frame(image, timings), True
            retry, new = self._refind([look.track for look in lost], kept, detections)
        looks = kept + [self._find(image, detection, timings, turned, track) for track, detection in reanchor + retry]
        looks += self._new_faces(image, new, looks, timings, turned)
        if self.mode == "image" and self.detector.multi_face and not any(look.found for look in looks):
            looks += self._turned_faces(image, timings, turned)
        return looks, detect

    def _turned_faces(self, image: np.ndarray, timings: dict[str, float], turned: dict[int, list[Detection]]
                      ) -> list[_Look]:
        """Still images where the multi-face detector found no face upright: the faces it finds on the frame
        turned by 90, 180 and 270 degrees (a face lying on its side or upside down), each through the box
        path on a crop of the frame turned alike; accepted answers only, one per face (the best quality)."""
        candidates = self._turned_answers(image, timings, turned)
        looks: list[_Look] = []
        for box, candidate in sorted(candidates, key=lambda pair: -pair[1].quality):
            look = self._judge(image, candidate, None, box, False, timings)
            if look.found and not _overlaps(look, looks):
                looks.append(look)
        return looks[:self.max_faces]

    def _turned_answers(self, image: np.ndarray, timings: dict[str, float], turned: dict[int, list[Detection]],
                        near: np.ndarray | None = None) -> list[tuple[Detection, Landmarks]]:
        """The accepted answers (`_rejects`) of the detections on the frame turned by 90, 180 and 270
        degrees (`turned` caches each turn's detections for the image), each through the box path on a
        crop of the frame turned alike, as (detection in upright pixels, answer); with `near` (an xyxy
        box), only detections overlapping it by MATCH_MIN_IOU."""
        height, width = image.shape[:2]
        accepted = []
        for turns in (1, 2, 3):
            if turns not in turned:
                turned[turns] = self._detect(turn_image(image, turns), timings)
            back = unturn_matrix(turns, width, height)
            for in_turned_frame in turned[turns]:
                box = _mapped_back(in_turned_frame, back)
                if near is not None and box_iou(box.box_xyxy, near) < MATCH_MIN_IOU:
                    continue
                candidate = self.locator.from_crop(image, self._turned_crop(in_turned_frame, turns, back), timings)
                if self._rejects(box, candidate, (width, height)) is None:
                    accepted.append((box, candidate))
        return accepted

    def _turned_crop(self, in_turned_frame: Detection, turns: int, back: np.ndarray) -> Crop:
        """The first landmark crop of a detection on the frame turned by `turns` quarter turns, as a crop
        of the upright frame turned alike (`back`: turned -> upright pixels)."""
        in_turned = Crop.around_box(in_turned_frame.box_xyxy, self.landmark_backend.meta.crop_scale)
        return replace(in_turned, center_px=apply_affine(in_turned.center_px, back)[0],
                       angle_deg=quarter_turn_angle(turns))

    def _plan(self, detections: list[Detection] | None
              ) -> tuple[list[tuple[Track, Detection | None]], list[tuple[Track, Detection]], list[Detection]]:
        """What each track does on this frame, given the detector's faces (None: it did not run):
        (tracks that follow their own crop, with the detection that matched them or None; tracks
        re-anchored on their detection; detections of new faces, best first)."""
        if detections is None:
            return [(track, None) for track in self.tracks], [], []
        pairs, unmatched = associate(_boxes(self.tracks), _boxes(detections), self._match_min_iou)
        matched = {i: (detections[j], iou) for i, j, iou in pairs}
        follow, reanchor = [], []
        for i, track in enumerate(self.tracks):
            if i in matched:
                detection, iou = matched[i]
                (follow if iou >= REANCHOR_IOU else reanchor).append((track, detection))
            elif self.detector.multi_face:
                follow.append((track, None))
            # a single-face detector that sees no face ends the track (its score speaks for the one face)
        return follow, reanchor, [detections[j] for j in unmatched]

    @property
    def _match_min_iou(self) -> float:
        """MATCH_MIN_IOU; 0 for a single-face detector, whose one box is the tracked face's."""
        return MATCH_MIN_IOU if self.detector.multi_face else 0.0

    def _refind(self, lost: list[Track], kept: list[_Look], detections: list[Detection]
                ) -> tuple[list[tuple[Track, Detection]], list[Detection]]:
        """After tracks were lost on a frame without a detector run: the detections of this frame's
        re-run matched to the lost tracks' last boxes and the kept faces' new ones. Returns (lost tracks
        with the detection found where they were; detections of neither, best first)."""
        pairs, unmatched = associate(np.concatenate([_boxes(lost), _boxes(kept)]), _boxes(detections),
                                     self._match_min_iou)
        retry = [(lost[i], detections[j]) for i, j, _ in pairs if i < len(lost)]
        return retry, [detections[j] for j in unmatched]

    def _follow(self, image: np.ndarray, follow: list[tuple[Track, Detection | None]],
                timings: dict[str, float]) -> list[_Look]:
        """The tracks in their own crops: one landmark-model call for all of them."""
        if not follow:
            return []
        crop_scale = self.landmark_backend.meta.crop_scale
        found = self.locator.in_crops(image, [track.crop(crop_scale) for track, _ in follow], timings)
        return [self._judge(image, f, track, detection, True, timings) for (track, detection), f in zip(follow, found)]

    def _find(self, image: np.ndarray, detection: Detection, timings: dict[str, float],
              turned: dict[int, list[Detection]], track: Track | None = None) -> _Look:
        """The box path for one detection (`Locator.from_crop` of `_seed_crop`); on still images also
        the turned frames when the answer is rejected (`_search_turns`) and the mirrored crop
        (`flip_test`). `track`: the track this detection re-anchors (None: a new face)."""
        found = self.locator.from_crop(image, self._seed_crop(detection), timings)
        if self.mode == "image":
            if found.quality is not None and self._rejects(detection, found, _frame_wh(image)) is not None:
                detection, found = self._search_turns(image, detection, found, timings, turned)
            if self.flip_test:
                found = self.locator.mirror_averaged(image, found, timings)
        return self._judge(image, found, track, detection, False, timings)

    def _seed_crop(self, detection: Detection) -> Crop:
        """The first landmark crop of a detection: the face crop of its coarse points (turned by their
        roll) when the detector gives usable ones, else the level crop around its box."""
        crop_scale = self.landmark_backend.meta.crop_scale
        points = detection.points_px
        if points is not None and inter_ocular(points) >= MIN_IOD_PX:
            return Crop.of_face(points, crop_scale)
        return Crop.around_box(detection.box_xyxy, crop_scale)

    def _judge(self, image: np.ndarray, found: Landmarks, track: Track | None, detection: Detection | None,
               tracked: bool, timings: dict[str, float]) -> _Look:
        """The look an answer makes: rejected (`_rejects`; the box agreement only for the box path),
        else its face square and whether its points can seed the next crop (`plausible`)."""
        t0 = time.perf_counter()
        reason = self._rejects(None if tracked else detection, found, _frame_wh(image), agreement=not tracked)
        if reason is not None:
            self.lost_reason = reason
            timings["postprocess"] += (time.perf_counter() - t0) * 1000.0
            return _Look(track, detection, None, False, None, tracked, found.quality)
        # the face square is computed once here: the box, smoothing and next crop reuse it
        square = face_square_from_points(found.points_px)
        ok, reason = plausible(found.points_px, found.points_norm, image.shape[1], image.shape[0], square)
        if not ok:
            self.lost_reason = reason
        timings["postprocess"] += (time.perf_counter() - t0) * 1000.0
        return _Look(track, detection, found.points_px, ok, square, tracked, found.quality, found.point_scores)

    def _new_faces(self, image: np.ndarray, detections: list[Detection], looks: list[_Look],
                   timings: dict[str, float], turned: dict[int, list[Detection]]) -> list[_Look]:
        """New faces from unmatched detections, best first, while fewer than `max_faces` are in view;
        an answer on a face already in view (face boxes overlapping more than MERGE_IOU) is dropped."""
        in_view = [look for look in looks if look.found]
        new: list[_Look] = []
        for detection in detections:
            if self.max_faces is not None and len(in_view) + len(new) >= self.max_faces:
                break
            look = self._find(image, detection, timings, turned)
            if look.found and not _overlaps(look, in_view + new):
                new.append(look)
        return new

    def _conclude(self, looks: list[_Look], frame: Frame) -> list[FaceResult]:
        """The frame's faces from its looks: duplicates merged (the older id stays), at most `max_faces`,
        new ids given, each face smoothed by its own filter; the tracks of the faces that can go on
        (not in image mode) replace the old ones, and the filters of ended tracks are dropped."""
        found = _merged([look for look in looks if look.found])[:self.max_faces]
        faces, tracks, smoothers = [], [], {}
        for look in found:
            face_id = look.track.id if look.track is not None else self._new_id()
            score = look.detection.score if look.detection is not None else look.track.score
            points, square = look.points_px, look.square
            if self.smooth and self.mode != "image":
                smoother = self._smoothers.get(face_id) or FaceSmoother()
                points, _ = smoother(points, None, frame.t_ms / 1000.0, square[1])
                square = face_square_from_points(points)
                smoothers[face_id] = smoother
            if look.ok and self.mode != "image":
                tracks.append(Track.from_points(look.points_px, look.square, id=face_id, score=score))
            box = clip_box(box_from_square(*square), frame.width, frame.height)
            faces.append(FaceResult(face_id, box, score, points, look.quality, look.tracked, look.detection,
                                    look.point_scores))
        self.tracks = tracks
        alive = {track.id for track in tracks}
        self._smoothers = {face_id: s for face_id, s in smoothers.items() if face_id in alive}
        return faces

    def _new_id(self) -> int:
        face_id, self._next_id = self._next_id, self._next_id + 1
        return face_id

    def _detect(self, image: np.ndarray, timings: dict[str, float]) -> list[Detection]:
        """The detector's faces scoring at least `presence_needed`, best first."""
        return [d for d in self.detector.detect(image, timings) if d.score >= self.presence_needed]

    def _detect_in_frame(self, image: np.ndarray, timings: dict[str, float]) -> list[Detection]:
        """`_detect` on the frame itself; no face sets `lost_reason`."""
        found = self._detect(image, timings)
        if not found:
            self.lost_reason = "presence below min_presence"
        return found

    def _rejects(self, detection: Detection | None, found: Landmarks, frame_wh: tuple[int, int],
                 agreement: bool = True) -> str | None:
        """Why an answer is no face (None: it is one): an eye outside the `frame_wh` (width, height) frame
        (`eyes_in_frame`); for models with a quality output also a quality below `min_quality` (below
        DOUBTFUL_BOX_MIN_QUALITY for a `detection` under `min_presence`), or, with `agreement` (the box
        path), points whose face crop disagrees with the box's (`Landmarks.box_agreement` beyond
        MAX_BOX_SHIFT or MAX_BOX_SIDE_RATIO)."""
        if not eyes_in_frame(found.points_px, *frame_wh):
            return "an eye outside the frame"
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

    def _search_turns(self, image: np.ndarray, detection: Detection, found: Landmarks, timings: dict[str, float],
                      turned: dict[int, list[Detection]]) -> tuple[Detection, Landmarks]:
        """The box path again from the detections of the frame turned by 90, 180 and 270 degrees (an
        upright-trained detector's box is off on a face lying on its side or upside down). Still images
        only (`mode` "image"): it costs three more detector runs per image (`turned` keeps them for all
        the image's faces) and their landmark passes, and a video's track keeps a face once found,
        whatever its roll. Each turned detection of this face (a multi-face detector's box mapped back
        must overlap `detection` by MATCH_MIN_IOU) becomes a crop of the frame turned alike
        (`core.geometry.quarter_turn_angle`), and the answer (`Locator.from_crop`) that `_rejects`
        accepts with the highest quality wins. When none is accepted, the upright answer stays (and is
        rejected)."""
        near = detection.box_xyxy if self.detector.multi_face else None  # other faces of the image are not this one
        accepted = self._turned_answers(image, timings, turned, near)
        if not accepted:
            return detection, found
        return max(accepted, key=lambda pair: pair[1].quality)


def _mapped_back(detection: Detection, back: np.ndarray) -> Detection:
    """A turned frame's detection in the upright frame's pixels (`back`: turned -> upright, 2x3)."""
    points = None if detection.points_px is None else apply_affine(detection.points_px, back).astype(np.float32)
    return Detection(box_through(back, detection.box_xyxy).astype(np.float32), detection.score,
                     detection.from_model, points)


def _overlaps(look: _Look, others: list[_Look]) -> bool:
    """Whether a found face's box overlaps one of `others`' by more than MERGE_IOU (the same face)."""
    return any(box_iou(look.box_xyxy(), other.box_xyxy()) > MERGE_IOU for other in others)


def _merged(looks: list[_Look]) -> list[_Look]:
    """Found faces without duplicates: the tracks by id (oldest first), then the new faces in their
    detections' order; a face overlapping an earlier one by more than MERGE_IOU is dropped."""
    ordered = sorted(looks, key=lambda look: (look.track is None, 0 if look.track is None else look.track.id))
    kept: list[_Look] = []
    for look in ordered:
        if not _overlaps(look, kept):
            kept.append(look)
    return kept


def _frame_wh(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


def eyes_in_frame(points_px: np.ndarray, width: int, height: int) -> bool:
    """Whether both eye points (POINT_NAMES 0 and 1; frame px, pixel centres at integers) lie inside a
    `width` x `height` frame (-0.5 .. width - 0.5). A face with an eye outside is not reported: the points
    of its missing half are guesses, and the visible ones were measured worse too (`facetrack eval --cut`,
    docs/evaluation.md; ../shared/field-cases/half-outside allows "no face"). On validation faces whose eye
    was in the frame by 0.25 of the inter-ocular distance, the shipped model put none outside."""
    return bool(points_in_window(np.asarray(points_px)[:2], (0, 0, width, height)).all())


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


def _check_options(detect_every: int, min_presence: float | None, min_quality: float = DEFAULT_MIN_QUALITY,
                   max_faces: int | None = None) -> None:
    if detect_every < 1:
        raise InputError("--detect-every must be at least 1")
    if min_presence is not None and not 0.0 <= min_presence <= 1.0:
        raise InputError("--min-presence must lie in 0..1")
    if max_faces is not None and max_faces < 1:
        raise InputError("--max-faces must be at least 1 (0: no limit)")
    check_min_quality(min_quality)


def max_faces_for(max_faces: int | None, mode: str) -> int | None:
    """The tracker's face limit for a --max-faces value: None means the mode's default
    (DEFAULT_LIVE_MAX_FACES for live sources, no limit for files and images), 0 no limit (None).
    InputError for a negative value."""
    if max_faces is None:
        return DEFAULT_LIVE_MAX_FACES if mode == "live" else None
    if max_faces < 0:
        raise InputError("--max-faces must be at least 1 (0: no limit)")
    return max_faces or None


def build_tracker(weights_dir: str | Path, *, backend: str = "onnx", device: str = "auto",
                  landmark_model: str | None = None, detect_every: int = DEFAULT_DETECT_EVERY,
                  min_presence: float | None = None, min_quality: float = DEFAULT_MIN_QUALITY,
                  smooth: bool = False, mode: str = "video", threads: int | None = None,
                  log: Log | None = None, flip_test: bool = False, detector: str | None = None,
                  max_faces: int | None = None, models: tuple[Backend, Backend] | None = None,
                  precision: str = "auto") -> Tracker:
    """Load the face detector and landmark model of `weights_dir` (a --weights value:
    `tracker.backends.open_models`) and wrap them in a Tracker (options checked first). `detector`: a
    --detector name ("centernet", "regressor"; None: the manifest's default); `precision`: which ONNX
    graph runs ("auto", "fp32", "fp16", "int8"); `min_presence` None: that detector's own threshold;
    `max_faces`: as --max-faces (`max_faces_for`: None the mode's default, 0 no limit). `models`: the
    (face detector, landmark) backends of another tracker to share (`Tracker.models`) instead of loading
    them again (`weights_dir`, `backend`, `device`, `landmark_model`, `threads`, `detector` and
    `precision` are then not used)."""
    limit = max_faces_for(max_faces, mode)
    _check_options(detect_every, min_presence, min_quality, limit)
    if models is None:
        models = open_models(weights_dir, backend, device, landmark_model, threads, log, detector=detector,
                             precision=precision)
    finder, landmarks = models
    return Tracker(finder, landmarks, detect_every=detect_every, min_presence=min_presence, min_quality=min_quality,
                   smooth=smooth, mode=mode, flip_test=flip_test, max_faces=limit)
