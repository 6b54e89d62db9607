"""Pure geometry: crops and their inverse, large-face pre-shrink, letterbox, face square from points."""

import cv2
import numpy as np
import pytest

from core.geometry import (
    FACE_CENTER_SHIFT,
    FACE_SIDE_PER_EYE_MOUTH,
    apply_affine,
    box_from_points,
    crop_affine,
    crop_matrix,
    face_square_from_points,
    invert_affine,
    letterbox,
    quarter_turn_angle,
    roll_deg,
    square_from_box,
    turn_image,
    unturn_points,
)


def test_pre_shrunk_crop_keeps_points_in_place():
    image = np.zeros((1000, 1400, 3), np.uint8)
    spot = (700, 420)
    cv2.circle(image, spot, 12, (255, 255, 255), -1)
    m = crop_matrix(np.array([680.0, 470.0]), 700.0, 128, angle_deg=12)  # scale 0.18: pre-shrink path
    crop = crop_affine(image, m, 128)
    ys, xs = np.nonzero(crop[:, :, 0] > 64)
    expected = apply_affine(np.array([spot], np.float32), m)[0]
    assert abs(xs.mean() - expected[0]) < 0.7 and abs(ys.mean() - expected[1]) < 0.7


def test_crop_round_trip():
    m = crop_matrix(np.array([50.0, 60.0]), 80.0, 64, angle_deg=-20, flip=True)
    pts = np.array([[30.0, 40.0], [70.0, 45.0]], np.float32)
    back = apply_affine(apply_affine(pts, m), invert_affine(m))
    assert np.allclose(back, pts, atol=1e-4)


@pytest.mark.parametrize("turn_deg", [0, 20, 45, 90, 135, 180, -30, -90])
def test_roll_and_crop_angle_level_the_eyes(turn_deg):
    # an upright face turned clockwise as displayed (image y down) by turn_deg about its nose
    upright = np.array([[80, 100], [120, 100], [100, 125], [100, 145]], np.float64)
    a = np.radians(turn_deg)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # clockwise on screen, y down
    points = (upright - upright[2]) @ rotation.T + upright[2]
    roll = roll_deg(points)
    assert abs((roll - turn_deg + 180) % 360 - 180) < 1e-6  # clockwise is a positive roll
    crop = apply_affine(points, crop_matrix(points[2], 100.0, 100, angle_deg=roll))
    assert abs(crop[0, 1] - crop[1, 1]) < 1e-4 and crop[0, 0] < crop[1, 0]  # level, right eye on the left
    assert crop[3, 1] > crop[0, 1]  # mouth below the eyes


def test_letterbox_keeps_aspect_and_maps_points():
    image = np.zeros((120, 200, 3), np.uint8)
    image[60, 100] = 255
    square, m = letterbox(image, 100)
    assert square.shape == (100, 100, 3)
    x, y = apply_affine(np.array([[100.0, 60.0]]), m)[0]
    assert abs(x - 50) < 1 and abs(y - 50) < 1
    assert square[:15].max() == 0 and square[-15:].max() == 0  # black bars


def test_face_square_from_points_matches_the_box_of_a_typical_face():
    # a frontal face: eyes 40 px apart, mouth 45 px below the eye line
    points = np.array([[80, 100], [120, 100], [100, 125], [100, 145]], np.float32)
    center, side = face_square_from_points(points)
    assert 85 < side < 110  # the 68-point box of such a face is about 2.2 eye-mouth distances
    assert 120 < center[1] < 130 and abs(center[0] - 100) < 1e-3
    box_center, box_side = square_from_box(box_from_points(points, pad=0.0), 1.0)
    assert box_side < side  # four points span less than the face


def test_face_square_constants_are_the_medians_of_68_point_faces():
    """How FACE_SIDE_PER_EYE_MOUTH and FACE_CENTER_SHIFT were fitted, re-measured on 300w-helen-train."""
    from tests.test_shared_data import shared_data_dir
    from training.data import load_dataset

    base = shared_data_dir()
    if base is None or not (base / "300w-helen-train").is_dir():
        pytest.skip("shared data set 300w-helen-train not found (looked beside the repo and in "
                    "$FACETRACK_SHARED_DATA)")
    sides, shifts = [], []
    for sample in load_dataset(base / "300w-helen-train").samples:
        x1, y1, x2, y2 = box_from_points(sample.points68_px)  # the face box: min/max of the 68 points
        center, side = face_square_from_points(sample.points_px)
        scale = side / FACE_SIDE_PER_EYE_MOUTH
        eye_mid, mouth = sample.points_px[:2].mean(axis=0), sample.points_px[3]
        direction = (mouth - eye_mid) / np.linalg.norm(mouth - eye_mid)
        sides.append(max(x2 - x1, y2 - y1) / scale)
        shifts.append(float(np.dot(np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - (eye_mid + mouth) / 2, direction))
                      / scale)
    assert len(sides) == 870
    assert np.median(sides) == pytest.approx(FACE_SIDE_PER_EYE_MOUTH, abs=0.02)
    assert np.median(shifts) == pytest.approx(FACE_CENTER_SHIFT, abs=0.01)


def test_box_from_square_inverts_square_from_box():
    from core.geometry import box_from_square, square_from_box

    box = box_from_square(np.array([50.0, 40.0]), 20.0)
    assert box.dtype == np.float32 and box.tolist() == [40.0, 30.0, 60.0, 50.0]
    center, side = square_from_box(box, 1.0)
    assert center.tolist() == [50.0, 40.0] and side == 20.0


def test_mirrored_order_swaps_only_the_eyes():
    from core.meta import MIRRORED_ORDER, POINT_NAMES, mirrored_order

    assert MIRRORED_ORDER == (1, 0, 2, 3) and mirrored_order(POINT_NAMES) == MIRRORED_ORDER
    assert mirrored_order(("nose_tip", "left_eye", "right_eye")) == (0, 2, 1)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_quarter_turns_map_pixels_back_exactly(turns):
    image = np.random.default_rng(turns).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    turned = turn_image(image, turns)
    assert turned.shape[:2] == ((7, 5) if turns % 2 else (5, 7))
    ys, xs = np.mgrid[0:turned.shape[0], 0:turned.shape[1]]
    where = np.stack([xs.ravel(), ys.ravel()], axis=1)
    back = unturn_points(where, turns, 7, 5).round().astype(int)
    assert (turned[where[:, 1], where[:, 0]] == image[back[:, 1], back[:, 0]]).all()


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_quarter_turn_angle_crops_as_the_turned_image_shows(turns):
    """A crop at `quarter_turn_angle` around a pixel shows what the turned image shows around it."""
    image = np.random.default_rng(7).integers(0, 255, (41, 61, 3), dtype=np.uint8)
    turned = turn_image(image, turns)
    center_t = np.array([15.0, 12.0])  # a pixel of the turned image
    center = unturn_points(center_t, turns, 61, 41)[0]
    crop = crop_affine(image, crop_matrix(center, 16, 16, quarter_turn_angle(turns)), 16)
    crop_t = crop_affine(turned, crop_matrix(center_t, 16, 16), 16)
    assert np.abs(crop.astype(int) - crop_t.astype(int)).max() <= 1
    with pytest.raises(ValueError):
        turn_image(image, 4)
