"""What the Python API (`tracker.api.FaceTracker`) hands back: `Face` and `Result`, frozen views of the
pipeline's `core.frame.FaceResult` and `FrameResult` with named points, JSON and drawing.

Nothing is computed here: the JSON is the `--json` row of the command line (`tracker.sinks.result_row`),
the drawing is the command line's (`tracker.draw.draw_result`). Arrays are read-only views of the
pipeline's own arrays, not copies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterator, Mapping

import numpy as np

from core.frame import FaceResult, FrameResult
from core.meta import POINT_NAMES

__all__ = ["Face", "Result"]


def _read_only(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 view (a copy only when the dtype differs) of `values` in `shape`."""
    view = np.asarray(values, dtype=np.float32).reshape(shape).view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class Face:
    """One face in one frame.

    - `id`: its track id, 1, 2, 3, ... The same face keeps it from frame to frame in `FaceTracker.track`
      and `FaceTracker.step`; an id is never given to another face. A still image (`FaceTracker(image)`)
      numbers its faces 1..N.
    - `box_xyxy`: (4,) float32, frame pixels x1 y1 x2 y2, clipped to the frame: the face square of the
      points (not the detector's box).
    - `score`: this frame's score 0..1, as the JSON rows' "score" (`tracker.sinks.frame_score`): the
      detector's on a frame where it found the face (`source` "detector"), the landmark model's face
      quality on a tracked frame (`source` "tracked"); None when nothing scored it on this frame.
    - `source`: "detector" or "tracked" (`tracker.sinks.face_source`).
    - `last_detector_score`: the detector's score 0..1 from the last frame it saw this face.
    - `points`: point name -> (x, y) frame pixels (floats), names in `core.meta.POINT_NAMES` order:
      "right_eye" (the subject's right eye), "left_eye", "nose_tip", "mouth_center".
    - `point_scores`: point name -> 0..1, how sure the landmark model is of each point (low for a covered
      point or one outside the frame); None for a model without them.
    - `quality`: the landmark model's face quality 0..1; None for a model without it.
    - `tracked`: the points came from the previous frame's crop rather than from a detection.
    - `points_px`: the same points as a (P, 2) float32 array, rows in `point_names` order.
    - `record`: the pipeline's `core.frame.FaceResult` it was made from.
    """

    id: int
    box_xyxy: np.ndarray
    score: float | None
    points: Mapping[str, tuple[float, float]]
    point_scores: Mapping[str, float] | None = None
    quality: float | None = None
    tracked: bool = False
    points_px: np.ndarray = field(default=None, repr=False)
    point_names: tuple[str, ...] = field(default=POINT_NAMES, repr=False)
    record: FaceResult | None = field(default=None, repr=False)
    source: str = "detector"
    last_detector_score: float | None = None

    @classmethod
    def of(cls, face: FaceResult, point_names: tuple[str, ...] = POINT_NAMES) -> "Face":
        """The Face of a pipeline FaceResult (its arrays viewed read-only, not copied)."""
        points_px = _read_only(face.points_px, (-1, 2))
        points = {name: (float(x), float(y)) for name, (x, y) in zip(point_names, points_px)}
        scores = None
        if face.point_scores is not None:
            scores = MappingProxyType({name: float(s) for name, s in zip(point_names, face.point_scores)})
        from tracker.sinks import face_source, frame_score

        return cls(int(face.id), _read_only(face.box_xyxy, (4,)), frame_score(face), MappingProxyType(points),
                   scores, None if face.quality is None else float(face.quality), bool(face.tracked), points_px,
                   tuple(point_names), face, face_source(face), float(face.score))

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.1f}" for v in self.box_xyxy)
        points = ", ".join(f"{name}=({x:.1f}, {y:.1f})" for name, (x, y) in self.points.items())
        quality = "" if self.quality is None else f", quality={self.quality:.2f}"
        score = "None" if self.score is None else f"{self.score:.2f}"
        return f"Face(id={self.id}, score={score}{quality}, box_xyxy=[{box}], points: {points})"

    def to_dict(self) -> dict:
        """A JSON-ready dict, as one face of a `--json` row (`tracker.sinks.face_row`): {"id", "source",
        "box_xyxy": [x1, y1, x2, y2], "score", "last_detector_score", "quality" (when the model gives one),
        "points": {name: [x, y]}, "point_scores": {name: s} (when given)}; pixels rounded to 0.01, scores
        to 1e-4."""
        from tracker.sinks import face_row

        return face_row(self.record, self.point_names)


@dataclass(frozen=True, eq=False)
class Result:
    """Every face found in one image or video frame.

    `faces` lists them oldest track first (still images: by detector score); () when there is none.
    `len(result)`, `result[i]` and `for face in result` go through `faces`. `record` is the pipeline's
    `core.frame.FrameResult` it was made from; its frame is `image` (uint8 HxWx3 BGR, not copied: never
    modified here).
    """

    faces: tuple[Face, ...]
    record: FrameResult = field(repr=False)
    point_names: tuple[str, ...] = field(default=POINT_NAMES, repr=False)

    @classmethod
    def of(cls, result: FrameResult, point_names: tuple[str, ...] = POINT_NAMES) -> "Result":
        """The Result of a pipeline FrameResult."""
        return cls(tuple(Face.of(face, point_names) for face in result.faces), result, tuple(point_names))

    @property
    def image(self) -> np.ndarray:
        """The frame the faces were found in: uint8 HxWx3 BGR (a grey or BGRA input converted)."""
        return self.record.frame.image

    @property
    def width(self) -> int:
        return self.record.frame.width

    @property
    def height(self) -> int:
        return self.record.frame.height

    @property
    def index(self) -> int:
        """The frame's number in its video or stream, from 0 (a still image: 0)."""
        return self.record.frame.index

    @property
    def t_ms(self) -> float:
        """The frame's media time, ms: a file frame's presentation time, a live or `step` frame's time since
        the first frame; 0 for a still image."""
        return float(self.record.frame.t_ms)

    @property
    def path(self) -> str | None:
        """The image file it was read from, as given; None for an array or a video frame."""
        return self.record.frame.name

    @property
    def timings_ms(self) -> dict[str, float]:
        """Milliseconds per stage (`tracker.pipeline.STAGES`) and 'total', wall clock, all faces."""
        return dict(self.record.timings)

    @property
    def detected(self) -> bool:
        """The face detector ran on this frame (else every face was followed from the last frame)."""
        return bool(self.record.detected)

    def __repr__(self) -> str:
        where = self.path if self.path is not None else f"frame {self.index}"
        return f"Result({where}, {self.width}x{self.height}, faces={list(self.faces)})"

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> Face:
        return self.faces[i]

    def __iter__(self) -> Iterator[Face]:
        return iter(self.faces)

    def plot(self, *, legend: bool = True) -> np.ndarray:
        """A new uint8 HxWx3 BGR image: `image` with each face's box in its id's colour, "#id score" beside
        it, its points (a ring for a point scoring below `tracker.draw.UNSURE_POINT_SCORE`) and, with
        `legend`, the point names. `image` itself is not modified."""
        from tracker.draw import draw_result

        return draw_result(self.image, self.record.faces, self.point_names, legend=legend)

    draw = plot  # the same, by the name OpenCV users may look for

    def to_dict(self) -> dict:
        """A JSON-ready dict, the `--json` row of the command line: {"image": path} for an image file, else
        {"frame": index, "t_ms"}; then "width", "height" and "faces" (`Face.to_dict` each)."""
        from tracker.sinks import result_row

        return result_row(self.record, self.point_names)

    def to_json(self, **kwargs) -> str:
        """`to_dict()` as a JSON string; `kwargs` go to `json.dumps` (e.g. indent=2)."""
        return json.dumps(self.to_dict(), **kwargs)
