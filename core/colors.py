"""Colours shared by everything that draws faces: the four points (BGR, POINT_NAMES order), boxes, face ids."""

from __future__ import annotations

# right_eye green, left_eye blue, nose_tip orange, mouth_center magenta
POINT_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (60, 200, 60),
    (230, 140, 30),
    (0, 140, 255),
    (200, 50, 220),
)
BOX_COLOR_BGR: tuple[int, int, int] = (0, 230, 230)
# One colour per face id (`id_color_bgr`): far apart in hue, none of them a point colour.
ID_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    BOX_COLOR_BGR,  # yellow: a single face looks as it always did
    (255, 255, 0),  # cyan
    (60, 60, 255),  # red
    (255, 255, 255),  # white
    (203, 192, 255),  # pink
    (42, 82, 165),  # brown
    (160, 160, 160),  # grey
    (128, 0, 128),  # purple
)


def id_color_bgr(face_id: int) -> tuple[int, int, int]:
    """The drawing colour (BGR) of face `face_id` (1, 2, ...): ID_COLORS_BGR in turn."""
    return ID_COLORS_BGR[(int(face_id) - 1) % len(ID_COLORS_BGR)]
