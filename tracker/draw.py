"""Drawing a FrameResult: each face's box in its id's colour with "#id score" beside it, the four points in
their colours (rings for points the model is unsure of) with a legend, FPS and latency.

Pure: returns a new image and never touches the frame it was given.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from core.colors import POINT_COLORS_BGR, id_color_bgr
from core.frame import FaceResult
from core.meta import POINT_NAMES

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (255, 255, 255)
SHADOW_COLOR = (0, 0, 0)
# Points scoring below this (`FaceResult.point_scores`) are drawn as rings. On the mask field case the shipped
# model (runs/default-r3) scores the covered nose and mouth 0.56-0.66 (16 of 18; two 0.79, 0.84), the same points
# uncovered 0.65-0.86; the eye and the mouth outside the frame in the half-outside case 0.53 and 0.59.
UNSURE_POINT_SCORE = 0.65


def _unit(image: np.ndarray) -> float:
    """Drawing scale: 1.0 for a 640-pixel-wide frame."""
    return max(0.35, min(image.shape[0], image.shape[1]) / 480.0)


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, color=TEXT_COLOR) -> None:
    thickness = max(1, round(scale * 1.5))
    cv2.putText(image, text, org, FONT, scale, SHADOW_COLOR, thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


def draw_result(image: np.ndarray, faces: Sequence[FaceResult] = (), point_names: tuple[str, ...] = POINT_NAMES,
                fps: float | None = None, latency_ms: float | None = None, legend: bool = True) -> np.ndarray:
    """A copy of `image` (uint8 HxWx3 BGR) with every face (`_draw_face`), the point legend and an
    FPS/latency corner."""
    out = image.copy()
    u = _unit(out)
    for face in faces:
        _draw_face(out, face, u)
    if legend:
        _draw_legend(out, point_names, u)
    corner = []
    if fps is not None:
        corner.append(f"{fps:.1f} FPS")
    if latency_ms is not None:
        corner.append(f"{latency_ms:.0f} ms")
    if corner:
        font_scale = 0.45 * u
        text = "  ".join(corner)
        (tw, th), _ = cv2.getTextSize(text, FONT, font_scale, max(1, round(font_scale * 1.5)))
        _text(out, text, (out.shape[1] - tw - int(6 * u), th + int(6 * u)), font_scale)
    return out


def _draw_face(image: np.ndarray, face: FaceResult, u: float) -> None:
    """One face in place: its box in its id's colour (`core.colors.id_color_bgr`), "#id score" above the
    box's top-left corner (inside the frame), its points in their colours (a ring instead of a dot for a
    point scoring below `UNSURE_POINT_SCORE`); `u`: the drawing scale."""
    color = id_color_bgr(face.id)
    font_scale = 0.45 * u
    x1, y1, x2, y2 = (int(round(float(v))) for v in face.box_xyxy)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, max(1, round(2 * u)), cv2.LINE_AA)
    _text(image, f"#{face.id} {face.score:.2f}", (x1 + 2, max(int(14 * u), y1 - int(4 * u))), font_scale, color)
    radius = max(2, round(3 * u))
    points = np.asarray(face.points_px, dtype=np.float32).reshape(-1, 2)
    scores = face.point_scores if face.point_scores is not None else np.ones(len(points), np.float32)
    for (x, y), score, point_color in zip(points, scores, POINT_COLORS_BGR):
        center = (int(round(float(x))), int(round(float(y))))
        if score < UNSURE_POINT_SCORE:  # a ring: the model guesses where this point is (covered, out of view)
            ring = max(1, round(u))
            cv2.circle(image, center, radius + 1, SHADOW_COLOR, ring + 2, cv2.LINE_AA)
            cv2.circle(image, center, radius + 1, point_color, ring, cv2.LINE_AA)
            continue
        cv2.circle(image, center, radius + 1, SHADOW_COLOR, -1, cv2.LINE_AA)
        cv2.circle(image, center, radius, point_color, -1, cv2.LINE_AA)


def _draw_legend(image: np.ndarray, point_names: tuple[str, ...], u: float) -> None:
    scale = 0.38 * u
    step = int(14 * u) + 2
    radius = max(2, round(3 * u))
    for i, (name, color) in enumerate(zip(point_names, POINT_COLORS_BGR)):
        y = int(8 * u) + step * i + radius
        x = int(6 * u) + radius
        cv2.circle(image, (x, y), radius, color, -1, cv2.LINE_AA)
        _text(image, name.replace("_", " "), (x + radius + int(4 * u), y + int(4 * u)), scale)


def draw_frame_result(result, fps: float | None = None, latency_ms: float | None = None) -> np.ndarray:
    """`draw_result` for a pipeline FrameResult."""
    return draw_result(result.frame.image, result.faces, fps=fps, latency_ms=latency_ms)
