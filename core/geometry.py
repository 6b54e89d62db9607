"""Pure geometry: boxes, square crops as affine maps, letterboxing. No I/O, no state."""

from __future__ import annotations

import math

import cv2
import numpy as np

# Face square from the four points: centre = mean of eye-midpoint and mouth centre shifted
# towards the chin, side = FACE_SIDE_PER_EYE_MOUTH x eye-mouth distance (the `scale` of
# face_square_from_points). Both are medians over the shared 68-point faces, the face box being the
# min/max of the 68 points: side / scale is 2.158 on ytf-keypoints (4,232 faces) and 2.166 on
# 300w-helen-train (870); the centre's shift along the eye-mouth direction is 0.121 and 0.114 scales.
# The script of the first fit was never committed; tests/test_geometry.py re-measures both on
# 300w-helen-train when the shared data is present.
FACE_SIDE_PER_EYE_MOUTH = 2.16
FACE_CENTER_SHIFT = 0.12  # in eye-mouth distances, from the eye/mouth midpoint towards the mouth


def box_from_points(points_px: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """Min/max box of points, grown by `pad` x its size on each side: xyxy float32."""
    pts = np.asarray(points_px, dtype=np.float32).reshape(-1, 2)
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    w, h = x2 - x1, y2 - y1
    return np.array([x1 - pad * w, y1 - pad * h, x2 + pad * w, y2 + pad * h], dtype=np.float32)


def square_from_box(box_xyxy: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """Centre (2,) and side of the square around a box, `scale` x its longer side."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    center = np.array([(x1 + x2) / 2, (y1 + y2) / 2], dtype=np.float32)
    return center, max(x2 - x1, y2 - y1, 1.0) * scale


def box_from_square(center_xy: np.ndarray, side: float) -> np.ndarray:
    """The xyxy box (4,) float32 of an axis-aligned square: centre (2,) and side in pixels."""
    cx, cy, half = float(center_xy[0]), float(center_xy[1]), float(side) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], dtype=np.float32)


def face_square_from_points(points_px: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and side of the face box implied by the four points (eyes, nose, mouth)."""
    pts = np.asarray(points_px, dtype=np.float32).reshape(4, 2)
    eye_mid = (pts[0] + pts[1]) / 2
    mouth = pts[3]
    d = float(np.linalg.norm(mouth - eye_mid))
    iod = float(np.linalg.norm(pts[1] - pts[0]))
    scale = max(d, 0.8 * iod, 1.0)  # a turned head shrinks iod, a tilted one shrinks d
    direction = (mouth - eye_mid) / max(d, 1e-6)
    center = (eye_mid + mouth) / 2 + FACE_CENTER_SHIFT * scale * direction
    return center.astype(np.float32), FACE_SIDE_PER_EYE_MOUTH * scale


def roll_deg(points_px: np.ndarray) -> float:
    """The roll of a face in degrees: the angle of its eye line, from the right eye (point 0) to the
    left eye (point 1), in image coordinates (x right, y down), in -180..180.

    0 for an upright face; positive when the face is turned clockwise as displayed (the left eye lower),
    +-180 upside down. `crop_matrix(..., angle_deg=roll_deg(points))` gives a crop with level eyes, the
    right eye on the crop's left.
    """
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    dx, dy = pts[1] - pts[0]
    return math.degrees(math.atan2(dy, dx))


def crop_matrix(center_xy: np.ndarray, side: float, out_size: int, angle_deg: float = 0.0,
                flip: bool = False) -> np.ndarray:
    """The 2x3 frame-to-crop affine (float64): frame pixels -> pixels of an `out_size` crop of the
    square of side `side` px around `center_xy`, rotated by `angle_deg` and mirrored when `flip`.

    The crop's x axis runs along the frame direction at `angle_deg` (degrees, image coordinates with y
    down: positive is clockwise as displayed), so a face rolled by `roll_deg` comes out upright."""
    s = out_size / max(side, 1e-6)
    a = math.radians(angle_deg)
    cos, sin = math.cos(a) * s, math.sin(a) * s
    fx = -1.0 if flip else 1.0
    cx, cy = float(center_xy[0]), float(center_xy[1])
    # rotate+scale about the centre, mirror in crop space, move the centre to the crop's middle
    frame_to_crop = np.array([[fx * cos, fx * sin, 0.0], [-sin, cos, 0.0]], dtype=np.float64)
    frame_to_crop[:, 2] = np.array([out_size / 2, out_size / 2]) - frame_to_crop[:, :2] @ np.array([cx, cy])
    return frame_to_crop


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine (frame_to_crop -> crop_to_frame), float64."""
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map (N,2) points through a 2x3 affine (from its source space to its target space): (N,2) float32."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return (pts @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def crop_affine(image: np.ndarray, frame_to_crop: np.ndarray, out_size: int) -> np.ndarray:
    """Warp `image` into an `out_size` square crop through the 2x3 `frame_to_crop` (black outside the image).

    When the crop shrinks the image more than 2x, the covered region is first area-averaged down
    (as the training cache does), so large faces are not aliased.
    """
    frame_to_crop = np.asarray(frame_to_crop, dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(frame_to_crop[:, :2])))
    if scale < 0.5:
        image, frame_to_crop = _pre_shrink(image, frame_to_crop, out_size, scale)
    return cv2.warpAffine(image, frame_to_crop, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _pre_shrink(image: np.ndarray, frame_to_crop: np.ndarray, out_size: int,
                scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut the region the crop covers and area-shrink it by a whole factor (remaining warp scale ~0.75).

    Returns the shrunk region and its own region-to-crop affine."""
    h, w = image.shape[:2]
    corners = apply_affine(np.array([[0, 0], [out_size, 0], [0, out_size], [out_size, out_size]]),
                           invert_affine(frame_to_crop))
    x1, y1 = np.floor(corners.min(axis=0)).astype(int) - 1
    x2, y2 = np.ceil(corners.max(axis=0)).astype(int) + 2
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return image, frame_to_crop
    k = max(2, round(0.75 / scale))  # a whole factor: OpenCV's area resize is fastest for those
    if x2 - x1 < k or y2 - y1 < k:
        return image, frame_to_crop
    small = area_shrink_by(image[y1:y2, x1:x2], k)
    # small pixel centre u <- source pixel k * u + (k - 1) / 2 + x1
    small_to_frame = np.array([[k, 0, (k - 1) / 2 + x1], [0, k, (k - 1) / 2 + y1], [0, 0, 1]], dtype=np.float64)
    return small, frame_to_crop @ small_to_frame


def area_shrink_by(image: np.ndarray, k: int) -> np.ndarray:
    """`image` area-averaged down by the whole factor `k` (OpenCV's fast path): its top-left part whose
    sides are multiples of k (at most k - 1 pixels dropped at the right and bottom), each k x k block one
    pixel; small pixel u shows source pixels k u .. k u + k - 1 (centre k u + (k - 1) / 2)."""
    h, w = image.shape[:2]
    return cv2.resize(image[:h // k * k, :w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA)


def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """The 2x3 frame-to-letterbox affine (float64) fitting a width x height frame into a size x size
    square, centred (the nominal scale; `letterbox` returns the one of the pixels it really wrote)."""
    s = size / max(width, height)
    return np.array([[s, 0.0, (size - width * s) / 2], [0.0, s, (size - height * s) / 2]], dtype=np.float64)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize keeping aspect into a black size x size square; returns (square, 2x3 frame_to_letterbox)."""
    h, w = image.shape[:2]
    nominal = letterbox_matrix(w, h, size)
    nw, nh = max(1, round(w * nominal[0, 0])), max(1, round(h * nominal[1, 1]))
    out = np.zeros((size, size, 3), dtype=image.dtype)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    interp = cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    frame_to_letterbox = np.array([[nw / w, 0.0, x0], [0.0, nh / h, y0]], dtype=np.float64)
    return out, frame_to_letterbox


def letterbox_rect(image: np.ndarray, long_side: int, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize keeping aspect so the longer side is `long_side`, then pad right and bottom with black to
    multiples of `multiple` (a fully convolutional model's stride; Ultralytics' "rect" letterbox):
    returns (uint8 H'xW'x3 input, 2x3 frame_to_input affine, scale only). Shrinking goes through
    `shrink` (whole-factor area averaging, then bilinear), whose exact scale the affine gives."""
    h, w = image.shape[:2]
    s = long_side / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    pw, ph = -(-nw // multiple) * multiple, -(-nh // multiple) * multiple
    out = np.zeros((ph, pw, 3), dtype=image.dtype)
    if nw < w or nh < h:
        out[:nh, :nw], (used_w, used_h) = shrink(image, nw, nh)
    else:
        out[:nh, :nw], (used_w, used_h) = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR), (w, h)
    return out, np.array([[nw / used_w, 0.0, 0.0], [0.0, nh / used_h, 0.0]], dtype=np.float64)


def shrink(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, tuple[int, int]]:
    """`image` shrunk to `width` x `height`: area-averaged by the largest whole factor k that stays at
    least that size (OpenCV's fast path; the region is cut to multiples of k, dropping at most k - 1
    pixels at the right and bottom), then bilinear for the remaining factor (0.5..1: the mild aliasing the
    detector's training images have, its faces pasted with bilinear warps). Returns (image, the (width,
    height) of the part of `image` it shows). 640x480 to 384x288: 0.21 ms instead of 1.45 ms with area
    averaging throughout (docs/benchmarks.md)."""
    h, w = image.shape[:2]
    k = max(1, min(w // max(width, 1), h // max(height, 1)))
    used_w, used_h = (w // k) * k, (h // k) * k
    if k > 1:
        image = area_shrink_by(image, k)
    if image.shape[1] != width or image.shape[0] != height:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image, (used_w, used_h)


def map_box(box_xyxy: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map an axis-aligned xyxy box through a 2x3 scale+shift affine (no rotation): (4,) float32."""
    pts = apply_affine(np.asarray(box_xyxy, dtype=np.float32).reshape(2, 2), affine)
    return pts.reshape(4)


def box_through(affine: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
    """The axis-aligned box around the four corners of `box_xyxy` mapped through a 2x3 `affine` (any
    rotation; `map_box` is the two-corner version for scale+shift): (4,) float32 xyxy."""
    x1, y1, x2, y2 = box_xyxy
    corners = apply_affine(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]), affine)
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def points_in_window(points_px: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """(P,) bool: which points (P, 2; px, pixel centres at integers) lie inside the pixel window (x0, y0,
    x1, y1), x1 and y1 exclusive: from x0 - 0.5 to x1 - 0.5, the outer edges of its pixels. A whole
    W x H frame is (0, 0, W, H)."""
    x0, y0, x1, y1 = window
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    return (pts[:, 0] >= x0 - 0.5) & (pts[:, 0] <= x1 - 0.5) & (pts[:, 1] >= y0 - 0.5) & (pts[:, 1] <= y1 - 0.5)


def clip_box(box_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip a box to the frame."""
    b = np.asarray(box_xyxy, dtype=np.float32).copy()
    b[[0, 2]] = np.clip(b[[0, 2]], 0, width)
    b[[1, 3]] = np.clip(b[[1, 3]], 0, height)
    return b


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area of every xyxy box of `a` (N, 4) with every one of `b` (M, 4): (N, M) float32."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return ix * iy


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box of `a` (N, 4) with every one of `b` (M, 4): (N, M) float32."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    inter = intersection_matrix(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (as `torchvision.ops.nms`): indices (K,) of the kept boxes, by
    falling score; a box is dropped when its IoU with a kept, higher-scoring one exceeds `iou_threshold`."""
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_matrix(boxes[i:i + 1], boxes[rest])[0] <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def inter_ocular(points_px: np.ndarray) -> float:
    """Distance between the two eye centres (points 0 and 1)."""
    pts = np.asarray(points_px, dtype=np.float32).reshape(-1, 2)
    return float(np.linalg.norm(pts[1] - pts[0]))


# ---------------------------------------------------------------- quarter turns of a whole frame
_CV2_TURNS = {1: cv2.ROTATE_90_CLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turn_image(image: np.ndarray, quarter_turns: int) -> np.ndarray:
    """`image` (HxW[xC]) turned clockwise as displayed by 90 degrees x `quarter_turns` (0..3): an exact
    pixel permutation (cv2.rotate), no resampling. ValueError for another count."""
    if quarter_turns not in (0, 1, 2, 3):
        raise ValueError(f"quarter_turns must be 0..3, not {quarter_turns}")
    return image if quarter_turns == 0 else cv2.rotate(image, _CV2_TURNS[quarter_turns])


def unturn_matrix(quarter_turns: int, width: int, height: int) -> np.ndarray:
    """The 2x3 affine (float64) from pixels of `turn_image(image, quarter_turns)` back to pixels of `image`
    (`width` x `height`, the unturned image's size; pixel centres at integers). ValueError for a count
    outside 0..3."""
    maps = {0: [[1, 0, 0], [0, 1, 0]],  # turned (x', y') = (x, y)
            1: [[0, 1, 0], [-1, 0, height - 1]],  # (H - 1 - y, x)
            2: [[-1, 0, width - 1], [0, -1, height - 1]],  # (W - 1 - x, H - 1 - y)
            3: [[0, -1, width - 1], [1, 0, 0]]}  # (y, W - 1 - x)
    if quarter_turns not in maps:
        raise ValueError(f"quarter_turns must be 0..3, not {quarter_turns}")
    return np.array(maps[quarter_turns], dtype=np.float64)


def unturn_points(points_px: np.ndarray, quarter_turns: int, width: int, height: int) -> np.ndarray:
    """(N, 2) pixel coordinates in `turn_image(image, quarter_turns)` -> the same points in `image`
    (`unturn_matrix`): float32."""
    return apply_affine(points_px, unturn_matrix(quarter_turns, width, height))


def quarter_turn_angle(quarter_turns: int) -> float:
    """The `crop_matrix` angle (degrees, in (-180, 180]) whose crop of an image shows it as
    `turn_image(image, quarter_turns)` does: the turned image's x axis in the original's coordinates."""
    angle = (-90.0 * quarter_turns) % 360.0
    return angle - 360.0 if angle > 180.0 else angle


# ---------------------------------------------------------------- the face frame
# Offsets in a face's own frame do not depend on where the face is, how large it is or how it is rolled:
# x runs along the eye line (from the subject's right eye, point 0, to the left eye, point 1), y is x turned
# by +90 degrees in image coordinates (towards the mouth of a face that is not mirrored), and the unit is the
# inter-ocular distance. Point conventions (`training.conventions`) and the point calibration
# (`core.postprocess.calibrated_points`) are such offsets.


def face_axes(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x axis (N,2), y axis (N,2), inter-ocular distance (N,)) of faces given as (N, P>=2, 2) points.

    x is the unit vector from point 0 (right eye) to point 1 (left eye); y is x turned by +90 degrees in
    image coordinates (y down), i.e. towards the mouth of an upright face.
    """
    ref = np.asarray(reference, dtype=np.float64)
    eye_line = ref[:, 1] - ref[:, 0]
    iod = np.linalg.norm(eye_line, axis=1).clip(min=1e-6)
    x = eye_line / iod[:, None]
    y = np.stack([-x[:, 1], x[:, 0]], axis=1)
    return x, y, iod


def offsets_in_face_frame(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, P, 2) offsets of `points` from `reference` (both (N, P, 2) px) in the reference face's frame,
    in units of its inter-ocular distance (see the module docstring)."""
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    x, y, iod = face_axes(ref)
    d = pts - ref
    return np.stack([(d * x[:, None]).sum(axis=2), (d * y[:, None]).sum(axis=2)], axis=2) / iod[:, None, None]


def apply_face_frame_offsets(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of `offsets_in_face_frame`: move (N, P, 2) points by (P, 2) or (N, P, 2) face-frame offsets."""
    pts = np.asarray(points, dtype=np.float64)
    x, y, iod = face_axes(pts)
    off = np.broadcast_to(np.asarray(offsets, dtype=np.float64), pts.shape)
    return pts + (off[..., :1] * x[:, None] + off[..., 1:] * y[:, None]) * iod[:, None, None]
