"""The records one frame travels in: `Frame` (pixels in), `Detection` (a detector's face box), `FaceResult`
(one face found) and `FrameResult` (out: every face of the frame).

Pure data: pure compute (pipeline, codec, drawing, sinks) imports these without importing capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One captured frame: uint8 HxWx3 BGR pixels, its index, and when it was captured."""

    image: np.ndarray
    index: int
    t_capture: float  # time.perf_counter() seconds when the frame was read (latency is measured from it)
    t_ms: float = 0.0  # media time, ms: a file frame's presentation time (pts x time base; may start after 0),
    #                   a live frame's time since the first frame the pipeline got
    name: str | None = None  # image sources: the path as given

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass
class Detection:
    """A face box in frame pixels (`box_xyxy`, float32 (4,)), its presence score in 0..1, its origin, and
    the detector's coarse points (`points_px`, (4, 2) float32 frame pixels in `core.meta.POINT_NAMES`
    order; None from a model without points, such as the course project's box regressor)."""

    box_xyxy: np.ndarray
    score: float
    from_model: bool = True  # False: a box that no face-finding model made
    points_px: np.ndarray | None = None


@dataclass
class FaceResult:
    """One face the tracker found in a frame (pure data).

    - `id`: the face's track id, 1, 2, 3, ... per tracker (`tracker.pipeline.Tracker`): the same face
      keeps it from frame to frame, and an id is never given to another face; still images number their
      faces 1..N each.
    - `box_xyxy`: float32 (4,) frame pixels x1 y1 x2 y2, clipped to the frame: always the face square of
      `points_px` (`core.geometry.face_square_from_points`), on detector frames too.
    - `score`: the detector's score 0..1 for this face, from the last frame the detector saw it.
    - `points_px`: (P, 2) float32 frame pixels (x, y) in `core.meta.POINT_NAMES` order (P = 4).
    - `quality`: the landmark model's face quality 0..1 (sigmoid of its quality logit), None for a
      model without one (`core.meta.ModelMeta.quality`).
    - `tracked`: the landmark crop came from the previous frame's points rather than from a detection.
    - `detection`: the detector's own box for this face on this frame (it seeded or confirmed the crop),
      None when the detector did not run or did not see the face.
    - `point_scores`: (P,) float32 0..1, how sure the landmark model is of each point (low for a point it
      cannot see: covered, or outside the frame), None for a model without them
      (`core.meta.ModelMeta.point_scores`).
    """

    id: int
    box_xyxy: np.ndarray
    score: float
    points_px: np.ndarray
    quality: float | None = None
    tracked: bool = False
    detection: Detection | None = None
    point_scores: np.ndarray | None = None


@dataclass
class FrameResult:
    """What the tracker found in one frame (made by `tracker.pipeline.Tracker.step`; pure data, raises nothing).

    - `frame`: the Frame it was found in (its pixels are not modified).
    - `faces`: every face found, oldest track first (by `FaceResult.id`); [] when there is none.
    - `timings`: milliseconds per stage (`tracker.pipeline.STAGES`) plus 'total', wall clock, all faces.
    - `detected`: the face detector ran on this frame.
    """

    frame: Frame
    faces: list[FaceResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    detected: bool = False

    @property
    def has_face(self) -> bool:
        return bool(self.faces)
