"""Tracker.step with tiny random-weight models: tracking between box-model runs, no face, backend parity."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.meta import MetadataError
from tests.helpers import CountingBackend, the_face
from tracker.backends import create_backend, open_models
from tracker.pipeline import Track, Tracker
from tracker.sources.synthetic import SyntheticSource


def _tracker(weights, backend="onnx", **kwargs) -> Tracker:
    box, landmarks = open_models(weights, backend, "cpu")
    return Tracker(CountingBackend(box), CountingBackend(landmarks), **kwargs)


@pytest.mark.parametrize("detect_every", [1, 4, 10])
def test_tracking_skips_the_box_model(face_weights, detect_every):
    tracker = _tracker(face_weights, detect_every=detect_every)
    results = [tracker.step(f) for f in SyntheticSource(160, 120, 30, 23)]
    assert all(r.has_face for r in results)
    assert tracker.box_backend.calls == -(-23 // detect_every)  # ceil: frames 0, N, 2N, ...
    assert tracker.landmark_backend.calls == 23
    assert [r.detected for r in results] == [i % detect_every == 0 for i in range(23)]
    assert all(the_face(r).tracked for r in results[1:])
    assert {the_face(r).id for r in results} == {1}  # one face, one id all along
    for r in results:
        assert the_face(r).points_px.shape == (4, 2)
        assert set(r.timings) >= {"preprocess", "box_model", "landmark_model", "postprocess", "total"}
        assert (r.timings["box_model"] > 0) == r.detected


def test_lost_track_redetects_on_the_same_frame(face_weights):
    tracker = _tracker(face_weights, detect_every=100)
    frames = list(SyntheticSource(160, 120, 30, 3))
    tracker.step(frames[0])
    (track,) = tracker.tracks
    tracker.tracks = [Track.from_points(track.points_px + 1000.0, id=track.id)]  # the face "jumped" out of the crop
    result = tracker.step(frames[1])
    assert result.detected and not the_face(result).tracked
    assert the_face(result).id == track.id  # found again where it was lost: the same face
    assert tracker.box_backend.calls == 2 and tracker.landmark_backend.calls == 3


def test_image_mode_runs_the_box_model_every_time(face_weights):
    tracker = _tracker(face_weights, mode="image")
    for frame in SyntheticSource(160, 120, 30, 5):
        assert tracker.step(frame).detected
    assert tracker.box_backend.calls == 5 and not tracker.tracking


def test_no_face_gives_no_result(noface_weights):
    tracker = _tracker(noface_weights, detect_every=5)
    results = [tracker.step(f) for f in SyntheticSource(160, 120, 30, 6)]
    assert all(r.faces == [] and not r.has_face for r in results)
    assert tracker.box_backend.calls == 6 and tracker.landmark_backend.calls == 0


def test_smoothing_keeps_shapes_and_first_frame(face_weights):
    raw = _tracker(face_weights)
    smooth = _tracker(face_weights, smooth=True)
    frames = list(SyntheticSource(160, 120, 30, 8))
    a = [raw.step(f) for f in frames]
    b = [smooth.step(f) for f in frames]
    assert np.allclose(the_face(a[0]).points_px, the_face(b[0]).points_px)  # a new track starts unfiltered
    assert all(the_face(r).points_px.shape == (4, 2) and the_face(r).box_xyxy.shape == (4,) for r in b)
    assert not np.allclose(the_face(a[-1]).points_px, the_face(b[-1]).points_px)  # later frames are filtered


def test_onnx_and_torch_backends_agree(face_weights):
    frames = list(SyntheticSource(160, 120, 30, 12))
    onnx = _tracker(face_weights, "onnx", detect_every=3)
    torch_ = _tracker(face_weights, "torch", detect_every=3)
    assert onnx.box_backend.name.startswith("onnx:") and torch_.box_backend.name == "torch:cpu"
    tol = 1e-3 * max(frames[0].width, frames[0].height)
    for frame in frames:
        a, b = onnx.step(frame), torch_.step(frame)
        assert a.detected == b.detected
        fa, fb = the_face(a), the_face(b)
        assert np.abs(fa.points_px - fb.points_px).max() < tol
        assert np.abs(fa.box_xyxy - fb.box_xyxy).max() < tol
        assert fa.score == pytest.approx(fb.score, abs=1e-4)
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(3, 3, 48, 48)).astype(np.float32)
    out_onnx = onnx.landmark_backend.predict(batch)
    out_torch = torch_.landmark_backend.predict(batch)
    assert out_onnx.shape == (3, 8) and np.abs(out_onnx - out_torch).max() < 1e-4
    assert np.ptp(out_onnx, axis=0).max() > 1e-4  # the outputs do depend on the input


def test_backend_errors_are_clear(face_weights, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes((face_weights / "box.onnx").read_bytes()[:5000])
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        create_backend("onnx", truncated, "cpu")
    text = tmp_path / "text.onnx"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        create_backend("onnx", text, "cpu")
    import onnx

    proto = onnx.load(str(face_weights / "box.onnx"))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(MetadataError, match="lacks facetrack metadata"):
        create_backend("onnx", bare, "cpu")
    with pytest.raises(MetadataError, match="expected a box model"):
        create_backend("onnx", face_weights / "landmarks.onnx", "cpu", expect_kind="box")
    with pytest.raises(InputError, match="model file not found"):
        create_backend("onnx", tmp_path / "missing.onnx", "cpu")


def test_device_choice(face_weights, monkeypatch):
    import core.devices as devices

    monkeypatch.setattr(devices, "_GPU_PROBE", False)
    with pytest.raises(InputError, match="no usable CUDA GPU"):
        create_backend("onnx", face_weights / "box.onnx", "cuda")
    lines: list[str] = []
    box, landmarks = open_models(face_weights, "onnx", "auto", log=lines.append)
    assert lines == ["no usable CUDA GPU; running on CPU"]  # said once for both models
    assert box.name == "onnx:CPUExecutionProvider" and box.session.get_providers() == ["CPUExecutionProvider"]
    assert landmarks.meta.kind == "landmarks" and landmarks.meta.input_size == 48
