"""Issue 17 item 8, the training side: low light and occluders drawn on landmark training crops
(`training.augment.low_light`, `face_occluders`), on small generated crops."""

from __future__ import annotations

import numpy as np
import torch

from training.augment import LOW_LIGHT_GAIN, face_occluders, low_light

S = 64
# an upright face in a 64-px crop: right eye, left eye, nose tip, mouth centre (pixels)
FACE = np.array([[22.0, 26.0], [42.0, 26.0], [32.0, 36.0], [32.0, 46.0]])


def _grey(n: int, value: float = 0.5) -> torch.Tensor:
    return torch.full((n, 3, S, S), value)


def test_low_light_darkens_the_picked_crops_and_adds_noise():
    x = torch.rand(64, 3, S, S) * 0.5 + 0.5  # bright crops
    before = x.clone()
    out = low_light(x, torch.Generator().manual_seed(0), rate=0.5)
    picked = (out != before).flatten(1).any(dim=1)
    assert 16 <= int(picked.sum()) <= 48  # about half
    assert torch.equal(out[~picked], before[~picked])  # the others untouched
    ratio = out[picked].mean(dim=(1, 2, 3)) / before[picked].mean(dim=(1, 2, 3))
    assert (ratio < LOW_LIGHT_GAIN[1] + 0.05).all()  # gain <= 0.6, gamma >= 1 on values <= 1
    flat = low_light(torch.full((8, 3, S, S), 0.8), torch.Generator().manual_seed(1), rate=1.0)
    assert (flat.flatten(1).std(dim=1) > 0).all()  # sensor noise on a flat picture


def test_occluders_cover_the_face_parts_they_belong_on():
    x = _grey(3)
    points = np.stack([FACE, FACE, FACE])
    rng = np.random.default_rng(0)
    # one kind at a time: a mask, sunglasses, a hand
    for kind, rates in enumerate([(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]):
        out = face_occluders(_grey(1), points[:1], rng, rates)[0]
        changed = (out - 0.5).abs().sum(dim=0) > 0.05
        mouth, left_eye, forehead = changed[46, 32], changed[26, 42], changed[5, 32]
        if kind == 0:
            assert mouth and not left_eye and not forehead  # nose bridge to chin
        elif kind == 1:
            assert left_eye and changed[26, 22] and not mouth  # both lenses
        else:
            assert 0.02 < changed.float().mean() < 0.6  # a patch, not the whole crop
    assert torch.equal(x, _grey(3))  # the inputs above were fresh tensors


def test_crops_without_a_face_are_left_alone():
    x = _grey(2)
    points = np.stack([FACE, np.full((4, 2), np.nan)])  # the second crop is a negative
    out = face_occluders(x.clone(), points, np.random.default_rng(1), (1.0, 0.0, 0.0))
    assert not torch.equal(out[0], _grey(1)[0]) and torch.equal(out[1], _grey(1)[0])


def test_composed_detector_images_cover_faces_where_their_points_are():
    # the detector's composed images get the landmark crops' occluders (a masked face must be found too)
    from training.compose import occlude

    canvas = np.full((160, 160, 3), 128, np.uint8)  # composed images are square
    face = np.array([[60, 50], [80, 50], [70, 62], [70, 75]], np.float32)  # right eye, left eye, nose, mouth
    far = face + np.array([60, 20], np.float32)
    occlude(canvas, [face, far], np.random.default_rng(0), (1.0, 0.0, 0.0))  # masks only
    changed = np.abs(canvas.astype(int) - 128).sum(axis=2) > 10
    assert changed[75, 70] and changed[95, 130]  # both mouths under a mask
    assert not changed[50, 80] and not changed[10, 10]  # eyes and the background left alone
    untouched = np.full((160, 160, 3), 128, np.uint8)
    occlude(untouched, [face], np.random.default_rng(0), (0.0, 0.0, 0.0))
    assert (untouched == 128).all()


def test_occluders_say_how_much_of_the_face_they_cover():
    covered = np.full(3, -1.0, np.float32)
    points = np.stack([FACE, FACE, np.full((4, 2), np.nan)])
    face_occluders(_grey(3), points, np.random.default_rng(0), (1.0, 0.0, 0.0), covered)
    assert 0.25 < covered[0] < 0.7 and 0.25 < covered[1] < 0.7 and covered[2] == 0.0  # a mask: about half
    face_occluders(_grey(3), points, np.random.default_rng(0), (0.0, 1.0, 0.0), covered)
    assert 0.02 < covered[0] < 0.3 and covered[2] == 0.0  # sunglasses: a little
    face_occluders(_grey(3), points, np.random.default_rng(0), (0.0, 0.0, 0.0), covered)
    assert (covered == 0.0).all()
