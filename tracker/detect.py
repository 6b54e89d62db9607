"""Face detectors: the frame in, every face's box (and coarse points) out; one small interface.

- `GridDetector` runs the multi-face detector (`core.models.CenterFaceNet`, kind "detector") on an image
  pyramid: the frame letterboxed so its longer side is the model's `input_size` and padded to its stride
  (`core.geometry.letterbox_rect`), then halved level by level until no face can be larger than the
  sizes the model learned; one output row per cell of its stride-4 grid, rows of all levels merged and
  decoded in numpy (`core.postprocess.grid_detections`: score threshold, greedy NMS), no torch.
- `RegressorDetector` runs the course project's single-face box regressor (kind "box"): at most one face
  per frame.

Both time their preprocess / model / postprocess into the caller's `timings` under STAGES' names and
count their model runs in `calls`.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from core.frame import Detection
from core.geometry import letterbox_rect
from core.meta import MetadataError, ModelMeta
from core.postprocess import box_detection, grid_detections
from core.preprocess import box_input, normalize, to_batch
from tracker.backends import Backend

# Greedy NMS IoU for the detector's faces: two faces' boxes overlap by more than this only in crowds.
DEFAULT_NMS_IOU = 0.4
# The detector's score threshold when its metadata names none ("min_score", chosen on validation when
# the model is shipped: training.ship); the box regressor's is the tracker's min_presence.
FALLBACK_MIN_SCORE = 0.5
# Presence the box regressor needs: every test-split face scores >= 0.987 with the shipped box model,
# background crops of other photos reach 0.90 (docs/experiments.md)
DEFAULT_MIN_PRESENCE = 0.95
DETECTORS = ("centernet", "regressor")  # --detector choices: the multi-face detector, the course project's regressor


class FaceDetector(Protocol):
    """Finds faces in a frame (uint8 HxWx3 BGR): `detect` returns them best first, scoring at least
    `min_score`; `calls` counts model runs; `multi_face` says whether it can return more than one."""

    name: str
    backend: Backend
    min_score: float
    calls: int
    multi_face: bool

    def detect(self, image: np.ndarray, timings: dict[str, float]) -> list[Detection]: ...


def _add(timings: dict[str, float], stage: str, seconds: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + seconds * 1000.0


class RegressorDetector:
    """The course project's box regressor: one box and a presence score on the letterboxed square frame.

    Raises MetadataError when the backend is not a box model or its output is not (B, 5)."""

    multi_face = False

    def __init__(self, backend: Backend, min_score: float) -> None:
        if backend.meta.kind != "box":
            raise MetadataError(f"{backend.name}: not a box model ({backend.meta.kind})")
        self.backend = backend
        self.name = "regressor"
        self.min_score = float(min_score)
        self.calls = 0

    def detect(self, image: np.ndarray, timings: dict[str, float]) -> list[Detection]:
        meta = self.backend.meta
        t0 = time.perf_counter()
        x, frame_to_letterbox = box_input(image, meta)
        batch = to_batch([x])
        t1 = time.perf_counter()
        out = self.backend.predict(batch)
        t2 = time.perf_counter()
        self.calls += 1
        if out.ndim != 2 or out.shape[1] != 5:
            raise MetadataError(f"{self.backend.name}: box model output {out.shape}, expected (B, 5)")
        detection = box_detection(out[0], frame_to_letterbox, meta.input_size, image.shape[1], image.shape[0])
        _add(timings, "preprocess", t1 - t0)
        _add(timings, "box_model", t2 - t1)
        _add(timings, "postprocess", time.perf_counter() - t2)
        return [detection] if detection.score >= self.min_score else []


# The image pyramid of the scale-specific detector: each level halves the previous one, until a level
# is no larger than the biggest face the model learns; on every level but the coarsest a detection is kept
# only up to PYRAMID_KEEP x that biggest face (a larger face is found more surely on the next level).
PYRAMID_STEP = 0.5
PYRAMID_KEEP = 0.75
DEFAULT_FACE_SIDE_PX = (10.0, 64.0)  # a detector graph whose metadata has no "face_side_px"


def face_side_range(meta: ModelMeta) -> tuple[float, float]:
    """The face-square sides (input px) a detector learned: its "face_side_px" metadata ("lo,hi"),
    DEFAULT_FACE_SIDE_PX without it. MetadataError when malformed."""
    text = meta.extra.get("face_side_px")
    if text is None:
        return DEFAULT_FACE_SIDE_PX
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise MetadataError(f"malformed face_side_px metadata {text!r}") from None
    return lo, hi


def pyramid_sides(long_side: int, face_side_max: float, multiple: int) -> list[int]:
    """The longer side (px) of each pyramid level: `long_side`, then halved while the previous level is
    larger than `face_side_max` (no face can be larger than its frame), never below `multiple`."""
    sides = [int(long_side)]
    while sides[-1] > face_side_max and round(sides[-1] * PYRAMID_STEP) >= multiple:
        sides.append(int(round(sides[-1] * PYRAMID_STEP)))
    return sides


class GridDetector:
    """The multi-face detector on an image pyramid: every face scoring at least `min_score`, after NMS at
    `nms_iou` across levels, at most `max_faces` (None: no limit), best first, each with its coarse points.

    Level 0 is the frame letterboxed to the model's `input_size` (longer side; a smaller frame keeps its
    own size), padded to its stride; each
    further level halves it (`pyramid_sides`), so a face of any size meets the model at the sizes it learned
    (`face_side_range`). Raises MetadataError when the backend is not a detector or its output is not
    (1, N, 5 + 2P)."""

    multi_face = True

    def __init__(self, backend: Backend, min_score: float, nms_iou: float = DEFAULT_NMS_IOU,
                 max_faces: int | None = None) -> None:
        if backend.meta.kind != "detector":
            raise MetadataError(f"{backend.name}: not a face detector ({backend.meta.kind})")
        self.backend = backend
        self.name = "centernet"
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.max_faces = max_faces
        self.face_side_px = face_side_range(backend.meta)
        self.calls = 0

    def detect(self, image: np.ndarray, timings: dict[str, float]) -> list[Detection]:
        meta = self.backend.meta
        multiple = max(meta.pad_multiple, 1)
        t0 = time.perf_counter()
        # level 0, unpadded: the frame at the model's input size, never enlarged (an enlarged small photo
        # shows blurred texture the model never learned at that size)
        long_side = min(meta.input_size, max(image.shape[:2]))
        content, frame_to_content = letterbox_rect(image, long_side, 1)
        sides = pyramid_sides(long_side, self.face_side_px[1], multiple)
        rows = []
        t_model = 0.0
        for k, side in enumerate(sides):
            padded, content_to_level = letterbox_rect(content, side, multiple)
            batch = to_batch([normalize(padded, meta)])
            t1 = time.perf_counter()
            out = self.backend.predict(batch)
            t_model += time.perf_counter() - t1
            if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != meta.output_width:
                raise MetadataError(f"{self.backend.name}: detector output {out.shape}, "
                                    f"expected (1, N, {meta.output_width})")
            level = out[0][out[0][:, 0] >= self.min_score]
            if k < len(sides) - 1:  # larger faces are left to the coarser levels
                level = level[level[:, 3] - level[:, 1] <= PYRAMID_KEEP * self.face_side_px[1]]
            scale = content_to_level[0, 0] * frame_to_content[0, 0], content_to_level[1, 1] * frame_to_content[1, 1]
            level = level.copy()
            level[:, 1::2] /= scale[0]  # x columns: x1, x2, then each point's x
            level[:, 2::2] /= scale[1]
            rows.append(level)
        self.calls += 1  # one detector run on the frame, whatever the number of levels
        t2 = time.perf_counter()
        merged = np.concatenate(rows) if rows else np.zeros((0, meta.output_width), np.float32)
        found = grid_detections(merged, _IDENTITY, image.shape[1], image.shape[0], self.min_score,
                                self.nms_iou, self.max_faces)
        _add(timings, "preprocess", t2 - t0 - t_model)
        _add(timings, "box_model", t_model)
        _add(timings, "postprocess", time.perf_counter() - t2)
        return found


_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def default_min_score(meta: ModelMeta) -> float:
    """A face finder's own threshold: a detector's "min_score" metadata (FALLBACK_MIN_SCORE without it),
    the box regressor's DEFAULT_MIN_PRESENCE."""
    if meta.kind == "box":
        return DEFAULT_MIN_PRESENCE
    try:
        return float(meta.extra.get("min_score", FALLBACK_MIN_SCORE))
    except ValueError:
        raise MetadataError(f"malformed min_score metadata {meta.extra.get('min_score')!r}") from None


def make_detector(backend: Backend, min_score: float, max_faces: int | None = None,
                  nms_iou: float = DEFAULT_NMS_IOU) -> FaceDetector:
    """The detector for a loaded face-finding model: `GridDetector` for kind "detector", `RegressorDetector`
    for kind "box" (which finds one face at most, so `max_faces` and `nms_iou` do not apply).
    MetadataError for another kind."""
    if backend.meta.kind == "box":
        return RegressorDetector(backend, min_score)
    return GridDetector(backend, min_score, nms_iou, max_faces)
