"""Point calibration (`facetrack.calibrate`): each point's mean offset in the face frame, stored in the model's
metadata and subtracted by the runtime (`core.postprocess.calibrated_points`)."""

from __future__ import annotations

import numpy as np
import pytest

from core.geometry import face_axes, offsets_in_face_frame
from core.meta import ModelMeta
from core.postprocess import calibrated_points, landmark_points

# an upright face: right eye on the image's left, mouth below
FACE = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [60.0, 90.0]])


def _turn(points: np.ndarray, deg: float, center=(60.0, 70.0)) -> np.ndarray:
    a = np.deg2rad(deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - center) @ r.T + center


def test_face_frame_points_down_towards_the_mouth_at_any_roll():
    for deg in (0, 45, 90, 180, -120):
        face = _turn(FACE, deg)
        (across,), (down,), (iod,) = face_axes(face[None])
        assert iod == pytest.approx(40.0)
        mouth = face[3] - (face[0] + face[1]) / 2
        assert down @ mouth == pytest.approx(40.0) and across @ mouth == pytest.approx(0.0, abs=1e-9)


def test_calibration_moves_each_point_in_its_face_frame_and_turns_with_the_face():
    offsets = np.array([[0.0, 0.05], [0.0, 0.05], [0.1, 0.0], [0.0, -0.1]])  # eyes low, nose right, mouth high
    fixed = calibrated_points(FACE, offsets)
    assert np.allclose(fixed - FACE, [[0, -2], [0, -2], [-4, 0], [0, 4]], atol=1e-4)
    for deg in (30, 90, 180):
        assert np.allclose(calibrated_points(_turn(FACE, deg), offsets), _turn(fixed, deg), atol=1e-3)


def test_measured_errors_are_what_calibration_removes():
    rng = np.random.default_rng(0)
    offsets = np.array([[-0.01, 0.025], [-0.01, 0.017], [-0.013, 0.0], [-0.008, -0.02]])
    truth = np.stack([_turn(FACE * s, deg) for s, deg in zip(rng.uniform(0.5, 2, 20), rng.uniform(-180, 180, 20))])
    # a model biased by `offsets` in each face's frame (measured against the truth's frame)
    biased = np.stack([t - (calibrated_points(t, offsets) - t) for t in truth])
    assert np.allclose(offsets_in_face_frame(biased, truth).mean(axis=0), offsets, atol=2e-3)


def test_point_offsets_travel_in_the_metadata_and_reach_the_points():
    meta = ModelMeta.for_kind("landmarks", "resnet-simcc", 96, quality=True, point_scores=True,
                              point_offsets=(0.0, 0.02, 0.0, 0.02, 0.0, 0.0, 0.0, -0.03))
    back = ModelMeta.from_props(meta.to_props())
    assert back.point_offsets == pytest.approx(meta.point_offsets) and back.point_scores
    assert ModelMeta.from_dict(meta.to_dict()) == meta
    old = {k: v for k, v in meta.to_props().items() if not k.endswith("point_offsets")}
    assert ModelMeta.from_props(old).point_offsets == ()  # graphs from before: no calibration
    row = (FACE / 128.0).reshape(-1)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    raw, _ = landmark_points(row, identity, 128)
    fixed, _ = landmark_points(row, identity, 128, back.point_offsets)
    assert np.allclose(raw, FACE, atol=1e-4)
    assert np.allclose(fixed - raw, [[0, -0.8], [0, -0.8], [0, 0], [0, 1.2]], atol=1e-3)


def test_calibration_is_stored_in_the_checkpoint_and_used_by_the_backend(tmp_path):
    from core.models import build_model, make_checkpoint, make_config, save_checkpoint
    from facetrack.calibrate import write_offsets
    from tracker.backends import create_backend

    config = make_config("resnet-simcc", input_size=32, widths=(8, 16), hidden=16, point_channels=2)
    path = tmp_path / "model.pt"
    save_checkpoint(path, make_checkpoint("resnet-simcc", build_model("resnet-simcc", config)))
    offsets = np.array([[0.0, 0.02], [0.0, 0.02], [0.0, 0.0], [0.0, -0.03]])
    refitted = {"mtfl": np.full((4, 2), 0.01)}
    write_offsets(path, offsets, conventions=refitted)
    backend = create_backend("torch", path, "cpu", expect_kind="landmarks")
    assert backend.meta.point_offsets == pytest.approx(tuple(offsets.reshape(-1)))
    assert backend.meta.point_scores and backend.meta.output_width == 8 + 4
    from core.models import read_checkpoint

    assert np.allclose(read_checkpoint(path)["convention_offsets"]["mtfl"], refitted["mtfl"])
