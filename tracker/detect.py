"""Face detectors: the frame in, every face's box (and coarse points) out; one small interface.

- `GridDetector` runs the multi-face detector (`core.models.CenterFaceNet`, kind "detector"): the frame
  letterboxed so its longer side is the model's `input_size` and padded to its stride
  (`core.geometry.letterbox_rect`), one output row per cell of its stride-4 grid, decoded in numpy
  (`core.postprocess.grid_detections`: score threshold, greedy NMS), no torch.
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
from core.geometry import invert_affine, letterbox_rect
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


class GridDetector:
    """The multi-face detector: every face scoring at least `min_score`, after NMS at `nms_iou`, at most
    `max_faces` (None: no limit), best first, each with its coarse points.

    Raises MetadataError when the backend is not a detector or its output is not (1, N, 5 + 2P)."""

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
        self.calls = 0

    def detect(self, image: np.ndarray, timings: dict[str, float]) -> list[Detection]:
        meta = self.backend.meta
        t0 = time.perf_counter()
        padded, frame_to_input = letterbox_rect(image, meta.input_size, max(meta.pad_multiple, 1))
        batch = to_batch([normalize(padded, meta)])
        t1 = time.perf_counter()
        out = self.backend.predict(batch)
        t2 = time.perf_counter()
        self.calls += 1
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != meta.output_width:
            raise MetadataError(f"{self.backend.name}: detector output {out.shape}, "
                                f"expected (1, N, {meta.output_width})")
        found = grid_detections(out[0], invert_affine(frame_to_input), image.shape[1], image.shape[0],
                                self.min_score, self.nms_iou, self.max_faces)
        _add(timings, "preprocess", t1 - t0)
        _add(timings, "box_model", t2 - t1)
        _add(timings, "postprocess", time.perf_counter() - t2)
        return found


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
