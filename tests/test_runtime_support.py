"""Tests of the runtime's pure parts: smoothing, crops, letterbox, drawing, sources."""

from __future__ import annotations

import numpy as np
import pytest

from core.meta import LANDMARK_CROP_SCALE, ModelMeta
from tests.helpers import canonical_points_norm, written_names


def test_canonical_points_are_a_tracking_fixed_point():
    from core.geometry import face_square_from_points

    pts = canonical_points_norm() * 100.0
    center, side = face_square_from_points(pts)
    assert np.allclose(center, [50, 50], atol=1e-3)
    assert side * LANDMARK_CROP_SCALE == pytest.approx(100.0, rel=1e-4)


def test_one_euro_passes_first_value_and_smooths_jitter():
    from tracker.smoothing import OneEuroFilter

    f = OneEuroFilter()
    assert np.allclose(f(np.array([10.0, 20.0]), 0.0, 250.0), [10, 20])
    rng = np.random.default_rng(0)
    # a still face of 250 px with the tracker's own noise there (0.18 px std on the still clip of
    # scripts/tune_smoothing.py; the filter's speeds are in face sizes per second)
    raw = 10 + rng.normal(0, 0.2, size=(90, 2))
    out = np.array([f(x, (i + 1) / 30, 250.0) for i, x in enumerate(raw)])
    assert out[30:].std() < 0.5 * raw[30:].std()
    f.reset()
    assert np.allclose(f(np.array([5.0, 5.0]), 10.0, 50.0), [5, 5])


def test_one_euro_follows_fast_motion():
    from tracker.smoothing import OneEuroFilter

    f = OneEuroFilter()
    xs = [np.array([i * 10.0]) for i in range(60)]  # 300 px/s at 30 fps on a 50-px face
    out = [f(x, i / 30, 50.0) for i, x in enumerate(xs)]
    assert abs(float(out[-1][0]) - 590.0) < 25.0  # lags by less than half a face


def test_crop_and_back_round_trip():
    from core.postprocess import landmark_points
    from core.preprocess import landmark_input, normalize

    meta = ModelMeta.for_kind("landmarks", "resnet", 48)
    image = np.zeros((120, 160, 3), np.uint8)
    x, m = landmark_input(image, np.array([80.0, 60.0]), 60.0, meta)
    assert x.shape == (3, 48, 48) and x.dtype == np.float32
    pts_px, pts_norm = landmark_points(np.array([0.5, 0.5, 0.0, 0.0, 1.0, 1.0, 0.25, 0.75]), m, 48)
    assert np.allclose(pts_px, [[80, 60], [50, 30], [110, 90], [65, 75]], atol=1e-3)
    white = normalize(np.full((2, 2, 3), 255, np.uint8), meta)
    assert np.allclose(white[:, 0, 0], (1 - np.array(meta.mean)) / np.array(meta.std), atol=1e-5)


def test_box_output_maps_out_of_letterbox():
    from core.postprocess import box_detection
    from core.preprocess import box_input

    meta = ModelMeta.for_kind("box", "box", 64)
    x, m = box_input(np.zeros((120, 160, 3), np.uint8), meta)
    det = box_detection(np.array([0.3, 0.3, 0.7, 0.7, 0.0]), m, 64, 160, 120)
    assert np.allclose(det.box_xyxy, [48, 28, 112, 92], atol=0.01)
    assert det.score == pytest.approx(0.5)


def test_draw_is_pure_and_marks_points():
    from core.colors import POINT_COLORS_BGR, id_color_bgr
    from core.frame import FaceResult
    from tracker.draw import draw_result

    image = np.zeros((240, 320, 3), np.uint8)
    pts = np.array([[100, 100], [160, 100], [130, 130], [130, 160]], np.float32)
    faces = [FaceResult(1, np.array([80, 70, 190, 190], np.float32), 0.9, pts),
             FaceResult(2, np.array([220, 60, 300, 140], np.float32), 0.8, pts + [130, -10])]
    out = draw_result(image, faces, fps=30, latency_ms=12)
    assert image.max() == 0 and out.shape == image.shape
    for face in faces:
        for (x, y), color in zip(face.points_px.astype(int), POINT_COLORS_BGR):
            assert tuple(int(v) for v in out[y, x]) == color
    # each box in its id's colour (the middle of its right edge, anti-aliased: the colour's hue)
    def hue(bgr) -> np.ndarray:
        return np.asarray(bgr, np.float32) / max(bgr)

    assert id_color_bgr(1) != id_color_bgr(2)
    assert np.allclose(hue(out[130, 190]), hue(id_color_bgr(1)), atol=0.05)
    assert np.allclose(hue(out[100, 300]), hue(id_color_bgr(2)), atol=0.05)


def test_points_the_model_is_unsure_of_are_drawn_as_rings():
    from core.colors import POINT_COLORS_BGR
    from core.frame import FaceResult
    from tracker.draw import UNSURE_POINT_SCORE, draw_result

    image = np.zeros((240, 320, 3), np.uint8)
    pts = np.array([[100, 100], [160, 100], [130, 130], [130, 170]], np.float32)
    scores = np.array([0.9, 0.9, UNSURE_POINT_SCORE - 0.1, 0.2], np.float32)  # nose and mouth covered
    out = draw_result(image, [FaceResult(1, np.array([80, 70, 190, 190], np.float32), 0.9, pts,
                                         point_scores=scores)], legend=False)
    for (x, y), score, color in zip(pts.astype(int), scores, POINT_COLORS_BGR):
        centre = tuple(int(v) for v in out[y, x])
        if score >= UNSURE_POINT_SCORE:
            assert centre == color  # a dot
        else:
            assert centre == (0, 0, 0)  # a ring: its centre left as it was...
            ring = out[y - 6:y + 7, x - 6:x + 7].reshape(-1, 3).astype(np.float32)
            want = np.asarray(color, np.float32)  # ...and the point's colour around it (anti-aliased: its hue)
            bright = ring[ring.max(axis=1) > 0.5 * want.max()]
            assert len(bright) and np.abs(bright / bright.max(axis=1, keepdims=True) - want / want.max()).max(
                axis=1).min() < 0.1


def test_synthetic_source_is_deterministic():
    from tracker.sources.synthetic import SyntheticSource, parse_synthetic

    a = [f.image for f in SyntheticSource(96, 64, 30, 5)]
    b = [f.image for f in parse_synthetic("synthetic?width=96&height=64&frames=5")]
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[4])


def test_synthetic_specs_have_no_fault_options():
    from core.errors import InputError
    from tracker.sources.synthetic import parse_synthetic

    with pytest.raises(InputError, match="unknown synthetic option"):  # faults live in tests/fakes.py
        parse_synthetic("synthetic?frames=5&stall_after=2")
    with pytest.raises(InputError, match="bad value for fps"):
        parse_synthetic("synthetic?fps=fast")


def test_image_outputs_keep_names_and_are_written_whole(tmp_path):
    import cv2

    from core.errors import InputError
    from tracker.sinks import ImageSink, plan_image_outputs

    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    names = [str(tmp_path / "x" / "a.png"), str(tmp_path / "y" / "A.png"), str(tmp_path / "x" / "b.gif")]
    out_dir = tmp_path / "out"
    targets = plan_image_outputs(names, out_dir)
    assert [t.name for t in targets.values()] == ["a.png", "A_1.png", "b.png"]  # clash numbered; gif -> png
    sink = ImageSink(out_dir, targets)
    image = np.full((10, 12, 3), 7, np.uint8)
    for name in names:
        sink.write(name, image)
    sink.close()
    assert written_names(out_dir) == ["A_1.png", "a.png", "b.png"]  # no temporary files
    assert np.array_equal(cv2.imread(str(out_dir / "b.png")), image)
    with pytest.raises(InputError, match="would overwrite the input"):
        plan_image_outputs([str(out_dir / "a.png")], out_dir)
    with pytest.raises(InputError, match="is a file"):
        plan_image_outputs(names, out_dir / "a.png")


def test_bad_sources_fail_fast(tmp_path):
    from core.errors import InputError
    from tracker.sources import open_camera, open_video

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError):
        open_video(junk)
    with pytest.raises(InputError, match="no such file"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(InputError):
        open_camera(str(tmp_path / "video99"))


def test_onnx_runtime_path_does_not_import_torch(face_weights, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from facetrack.cli import app\n"
        "from tracker.runtime import run\n"
        "from tracker.pipeline import build_tracker\n"
        "from tracker.sources.synthetic import SyntheticSource\n"
        f"t = build_tracker({str(face_weights)!r}, device='cpu')\n"
        "stats = run(SyntheticSource(96, 64, 30, 5), t)\n"
        "assert stats.processed == 5, stats\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
