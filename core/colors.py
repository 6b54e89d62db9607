"""Colours shared by everything that draws the four points (BGR, POINT_NAMES order)."""

from __future__ import annotations

# right_eye green, left_eye blue, nose_tip orange, mouth_center magenta
POINT_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (60, 200, 60),
    (230, 140, 30),
    (0, 140, 255),
    (200, 50, 220),
)
BOX_COLOR_BGR: tuple[int, int, int] = (0, 230, 230)
