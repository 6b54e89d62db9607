"""The records one frame travels in: `Frame` (pixels in), `Detection` (a face box), `FrameResult` (out).

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
    t_ms: float = 0.0  # media time: position in the video, or ms since a live source started
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
    from_model: bool = True  # False: the box implied by the tracked landmarks (no box-model run)
    points_px: np.ndarray | None = None


@dataclass
class FrameResult:
    """What the tracker found in one frame (made by `tracker.pipeline.Tracker.step`; pure data, raises nothing).

    - `frame`: the Frame it was found in (its pixels are not modified).
    - `detection`: the face box (`box_xyxy`, float32 (4,) frame pixels x1 y1 x2 y2, clipped to the frame)
      and presence score 0..1; None when there is no face. On frames without a box-model run the box is
      the face square implied by the points (`from_model` False) and the score the last model score.
    - `points_px`: (P, 2) float32 frame pixels (x, y) in `core.meta.POINT_NAMES` order (P = 4), or None
      with no face; the two are None together (`has_face`).
    - `timings`: milliseconds per stage (`tracker.pipeline.STAGES`) plus 'total', wall clock.
    - `detected`: the box model ran on this frame; `tracked`: the landmark crop came from the previous
      frame's points rather than from this frame's box.
    - `quality`: the landmark model's face quality 0..1 (sigmoid of its quality logit) for the points
      given, or None when there is no face or the model gives no quality (`core.meta.ModelMeta.quality`).
    """

    frame: Frame
    detection: Detection | None
    points_px: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    detected: bool = False  # the box model ran on this frame
    tracked: bool = False  # the landmark crop came from the previous frame's points
    quality: float | None = None  # face quality 0..1 of models that give it

    @property
    def has_face(self) -> bool:
        return self.detection is not None and self.points_px is not None
