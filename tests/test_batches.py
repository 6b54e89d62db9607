"""training.batches on hand-made caches: shapes and units, points that land on their pixels, the eye
swap of mirrored crops, face-quality negatives (no face in view, a fixed validation set), and box
batches (presence, negatives, black letterbox bars, target boxes)."""

from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from core.meta import IMAGENET_MEAN, IMAGENET_STD, LANDMARK_CROP_SCALE
from training import batches
from training.augment import landmark_crop_params
from training.batches import box_batch, landmark_batch
from training.data.cache import PATCH_MARGIN, FrameCache, LandmarkCache, patch_geometry
from training.negatives import (
    BORDER_NEGATIVE_SHARE,
    MAX_BIG_CROP_PER_FACE,
    MAX_FACE_INSIDE,
    MAX_TINY_FACE_AREA,
    NEGATIVE_KINDS,
    band_mask,
    face_inside_share,
    negative_crop_params,
)

S = 32  # model input side
CPU = torch.device("cpu")
RED, BLUE = (255, 0, 0), (0, 0, 255)  # RGB, as the caches hold


def _rgb01(x: torch.Tensor) -> np.ndarray:
    """Normalised (B,3,S,S) back to RGB 0..1 as (B,S,S,3)."""
    mean, std = np.reshape(IMAGENET_MEAN, (1, 3, 1, 1)), np.reshape(IMAGENET_STD, (1, 3, 1, 1))
    return (x.numpy() * std + mean).transpose(0, 2, 3, 1)


def _landmark_cache(n: int = 2) -> LandmarkCache:
    """Black patches with a soft coloured blob on each point: right eye red, left eye blue, others white."""
    patch, c = patch_geometry(S, PATCH_MARGIN)
    points = np.array([[c - 7, c - 4], [c + 7, c - 4], [c, c + 2], [c, c + 8]], dtype=np.float32)
    images = np.zeros((n, patch, patch, 3), np.float32)
    yy, xx = np.mgrid[0:patch, 0:patch]
    for (px, py), color in zip(points, (RED, BLUE, (255, 255, 255), (255, 255, 255))):
        blob = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * 1.2 ** 2))
        images += blob[None, :, :, None] * np.array(color, np.float32)
    images = torch.from_numpy(np.clip(images, 0, 255).astype(np.uint8))
    boxes = np.tile(np.array([c - 10, c - 10, c + 10, c + 12], np.float32), (n, 1))
    return LandmarkCache(images, np.tile(points, (n, 1, 1)), boxes, float(S), Counter(), c)


def _centroid(channel: np.ndarray, at_xy: np.ndarray, r: int = 3) -> np.ndarray:
    """Intensity-weighted centre (x, y) of a (S,S) channel in a window around at_xy, in pixels."""
    x0, y0 = np.round(at_xy).astype(int) - r
    win = channel[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1]
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]]
    return np.array([(win * xx).sum() / win.sum() + x0, (win * yy).sum() / win.sum() + y0])


def test_landmark_batch_shapes_and_units():
    cache = _landmark_cache(3)
    b = landmark_batch(cache, np.arange(3), S, np.random.default_rng(0), torch.Generator(), False, CPU)
    assert set(b) == {"x", "points", "box", "face", "item", "convention", "flipped"}
    assert b["x"].shape == (3, 3, S, S) and b["x"].dtype == torch.float32
    assert b["points"].shape == (3, 8) and b["box"].shape == (3, 4)
    assert b["face"].tolist() == [1.0] * 3 and b["item"].tolist() == [0, 1, 2] and not b["flipped"].any()
    assert b["convention"].tolist() == [0] * 3  # no conventions given: all ibug68 (CONVENTIONS[0])
    # crop-normalised: the nominal crop's centre maps to 0.5; patch pixels scale by S / crop_side
    scale = S / cache.crop_side
    c = cache.center
    expected = ((cache.points[0] - c) * scale + S / 2) / S
    np.testing.assert_allclose(b["points"][0].numpy().reshape(4, 2), expected, atol=1e-6)
    np.testing.assert_allclose(b["box"][0].numpy(), ((cache.boxes[0].reshape(2, 2) - c) * scale + S / 2).reshape(4) / S,
                               atol=1e-6)
    # background black, ImageNet-normalised: (0 - mean) / std
    assert b["x"][0, :, 0, 0].numpy() == pytest.approx(-np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), abs=1e-5)


def test_unaugmented_points_land_on_their_pixels():
    b = landmark_batch(_landmark_cache(1), np.arange(1), S, np.random.default_rng(0), torch.Generator(), False, CPU)
    img = _rgb01(b["x"])[0]
    pts = b["points"][0].numpy().reshape(4, 2) * S  # crop pixels, pixel centres at integers
    assert np.abs(_centroid(img[..., 0], pts[0]) - pts[0]).max() < 0.1  # red blob on the right eye
    assert np.abs(_centroid(img[..., 2], pts[1]) - pts[1]).max() < 0.1  # blue blob on the left eye
    assert np.abs(_centroid(img[..., 1], pts[3]) - pts[3]).max() < 0.1  # white blob on the mouth


def test_mirrored_crops_swap_the_eyes(monkeypatch):
    monkeypatch.setattr(batches, "photometric", lambda x, gen, strength=1.0: x)  # keep the blob colours
    monkeypatch.setattr(batches, "face_occluders", lambda x, points, rng, **kw: x)  # and every blob in view
    n = 40
    b = landmark_batch(_landmark_cache(n), np.arange(n), S, np.random.default_rng(1), torch.Generator(), True, CPU)
    img, pts = _rgb01(b["x"]), b["points"].numpy().reshape(n, 4, 2) * S
    mirrored = 0
    for k in range(n):
        row, col = np.round(pts[k, 0, ::-1]).astype(int)
        on_red = img[k, row, col, 0] > img[k, row, col, 2]
        # the right-eye label is on the red blob, or (mirrored) on the blue one: the subject's right eye
        # of the mirror image is the physical left eye
        blob = _centroid(img[k, ..., 0 if on_red else 2], pts[k, 0], 2)
        assert np.abs(blob - pts[k, 0]).max() < 0.3  # 0.14 measured: the blob is rotated and rescaled
        mirrored += not on_red
        assert b["flipped"][k].item() == (not on_red)
        # the subject's right eye on the left of the face, mirrored or not, at any roll: the mouth lies on
        # the +90-degree side of the eye line
        eye_line, mouth = pts[k, 1] - pts[k, 0], pts[k, 3] - (pts[k, 0] + pts[k, 1]) / 2
        assert mouth @ np.array([-eye_line[1], eye_line[0]]) > 0
    assert 5 < mirrored < n - 5


def _frame_cache(width: int = 200, height: int = 100, size: int = 96) -> FrameCache:
    """One white width x height frame (stretched to size^2) with one 40x50 face box in its left part."""
    frame = np.full((height, width, 3), 255, np.uint8)
    image = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return FrameCache(torch.from_numpy(image[None]), np.array([[size / width, size / height]]),
                      [np.array([[20.0, 25.0, 60.0, 75.0]], np.float32)], [0], Counter())


def test_box_batch_unaugmented_is_the_letterboxed_frame():
    b = box_batch(_frame_cache(), np.zeros(4, int), S, np.random.default_rng(0), torch.Generator(), False, CPU,
                  negative_fraction=0.0)
    assert b["x"].shape == (4, 3, S, S) and b["box"].shape == (4, 4) and b["presence"].shape == (4,)
    assert b["presence"].tolist() == [1.0] * 4
    # 200x100 into 32: scale 0.16, content rows 8..24; the box (20,25,60,75) -> (3.2, 12, 9.6, 20) / 32
    np.testing.assert_allclose(b["box"][0].numpy(), np.array([3.2, 12.0, 9.6, 20.0]) / S, atol=1e-5)
    img = _rgb01(b["x"])[0]
    assert np.abs(img[:8]).max() < 1e-5 and np.abs(img[24:]).max() < 1e-5  # letterbox bars black
    assert img[9:23].min() > 0.95  # the white frame in between


def test_box_batch_negatives_have_no_face_and_black_bars():
    b = box_batch(_frame_cache(), np.zeros(8, int), S, np.random.default_rng(0), torch.Generator(), False, CPU,
                  negative_fraction=1.0)
    assert b["presence"].tolist() == [0.0] * 8
    assert not b["box"].any()
    img = _rgb01(b["x"])
    for k in range(8):
        rows = np.flatnonzero(img[k].max(axis=(1, 2)) > 0.5)  # the frame's rows; the rest are black bars
        assert rows.size and (rows.size == S or np.abs(img[k, :rows[0]]).max() < 1e-5)
        assert np.abs(img[k, rows[-1] + 1:]).max(initial=0) < 1e-5


def test_box_batch_training_boxes_stay_in_the_content():
    b = box_batch(_frame_cache(), np.zeros(16, int), S, np.random.default_rng(2), torch.Generator().manual_seed(0),
                  True, CPU, negative_fraction=0.0)
    box = b["box"].numpy()
    assert b["presence"].tolist() == [1.0] * 16
    assert (box >= 0).all() and (box <= 1).all() and (box[:, 2:] > box[:, :2]).all()


def _crop_side_px(m: np.ndarray) -> float:
    """The side (source px) of the S-px crop of the 2x3 map m."""
    return S / np.sqrt(abs(np.linalg.det(m[:, :2])))


def test_negative_crops_hold_no_usable_face():
    rng = np.random.default_rng(5)
    center, side = np.array([50.0, 50.0]), float(S)
    face = side / LANDMARK_CROP_SCALE
    kinds = Counter()
    for _ in range(400):
        m, _, band = negative_crop_params(rng, center, side, S)
        inside = face_inside_share(m, center, face, S)
        crop = _crop_side_px(m)
        if band is not None:  # the frame's edge past the face centre
            kinds["border"] += 1
            assert band[1] >= BORDER_NEGATIVE_SHARE[0]
        elif (face / crop) ** 2 < MAX_TINY_FACE_AREA:
            kinds["tiny"] += 1
        elif crop <= MAX_BIG_CROP_PER_FACE * face + 1e-6:
            kinds["big"] += 1
        else:
            kinds["off"] += 1
            assert inside < MAX_FACE_INSIDE
    assert set(kinds) == set(NEGATIVE_KINDS) and min(kinds.values()) > 60
    # the nominal crop shows the whole face square, the positives' jitter (scale, shift, any roll) most of it
    m, _ = landmark_crop_params(np.random.default_rng(0), center, side, S, False)
    assert face_inside_share(m, center, face, S) == 1.0
    jittered = [face_inside_share(landmark_crop_params(rng, center, side, S, True)[0], center, face, S)
                for _ in range(300)]
    assert min(jittered) > 0.7  # 0.77 the least of 3,000 draws (negatives "off" show at most 0.3)


def test_quality_batches_mark_negatives_and_validation_adds_one_per_face():
    cache = _landmark_cache(40)
    b = landmark_batch(cache, np.arange(40), S, np.random.default_rng(0), torch.Generator(), True, CPU,
                       negative_fraction=0.5)
    negatives = int((b["face"] == 0).sum())
    positives = b["face"][b["face"] > 0]
    assert 8 < negatives < 32 and (positives > 0.5).all() and (positives == 1.0).float().mean() > 0.5
    val = [landmark_batch(cache, np.arange(4), S, np.random.default_rng(9), torch.Generator(), False, CPU,
                          negative_fraction=0.25) for _ in range(2)]
    assert val[0]["face"].tolist() == [1.0] * 4 + [0.0] * 4 and val[0]["item"].tolist() == [0, 1, 2, 3] * 2
    assert torch.equal(val[0]["x"], val[1]["x"])  # a fixed validation set for a fixed rng
    # the positives are the nominal crops, as without negatives
    plain = landmark_batch(cache, np.arange(4), S, np.random.default_rng(9), torch.Generator(), False, CPU)
    assert torch.equal(plain["x"], val[0]["x"][:4])


def test_a_covered_face_gets_a_lower_quality_target(monkeypatch):
    # issue 17: the per-face confidence drops when a face is mostly covered (still above min_quality)
    from training import augment

    cache = _landmark_cache(8)
    def masked(x, points, rng, covered=None):
        return augment.face_occluders(x, points, rng, (1.0, 0.0, 0.0), covered)

    monkeypatch.setattr(batches, "face_occluders", masked)
    b = landmark_batch(cache, np.arange(8), S, np.random.default_rng(0), torch.Generator(), True, CPU,
                       negative_fraction=0.3)
    positives = b["face"][b["face"] > 0]
    assert len(positives) and (positives < 0.95).all() and (positives > 0.5).all()
    without_negatives = landmark_batch(cache, np.arange(8), S, np.random.default_rng(0), torch.Generator(), True, CPU)
    assert set(without_negatives["face"].tolist()) == {1.0}  # no quality head: no targets to soften


def test_band_mask_blacks_out_one_edge():
    mask = band_mask([None, (0, 0.25), (3, 0.5)], 8, CPU)
    assert mask[0].min() == 1
    assert mask[1, 0, :, :2].max() == 0 and mask[1, 0, :, 2:].min() == 1
    assert mask[2, 0, 4:].max() == 0 and mask[2, 0, :4].min() == 1


@pytest.mark.parametrize("share, from_points", [(0.0, 0), (1.0, 40)])
def test_training_crops_come_from_the_box_or_from_the_points(monkeypatch, share, from_points):
    """A POINT_CROP_SHARE of training crops is the face square of the points x LANDMARK_CROP_SCALE (as the
    runtime's later passes crop), the rest the box's square; validation crops are always the box's."""
    from core.geometry import face_square_from_points

    cache = _landmark_cache(40)
    point_center, point_side = face_square_from_points(cache.points[0])
    seen = []

    def spy(rng, center_xy, side, out_size, train):
        seen.append((np.asarray(center_xy, np.float64), float(side)))
        return landmark_crop_params(rng, center_xy, side, out_size, train)

    monkeypatch.setattr(batches, "landmark_crop_params", spy)
    monkeypatch.setattr(batches, "POINT_CROP_SHARE", share)
    landmark_batch(cache, np.arange(40), S, np.random.default_rng(0), torch.Generator(), True, CPU)
    is_point = [np.allclose(c, point_center) and side == pytest.approx(point_side * LANDMARK_CROP_SCALE)
                for c, side in seen]
    assert sum(is_point) == from_points
    assert all(np.allclose(c, cache.center) and side == cache.crop_side for (c, side), p in zip(seen, is_point)
               if not p)
    seen.clear()
    landmark_batch(cache, np.arange(40), S, np.random.default_rng(0), torch.Generator(), False, CPU)
    assert all(np.allclose(c, cache.center) and side == cache.crop_side for c, side in seen)
