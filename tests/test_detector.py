"""The multi-face detector: the graph's decoding, CenterNet targets and loss, composed training images,
ONNX export with dynamic height and width (parity with torch), numpy decoding and NMS, AP, and the
detector path of `facetrack eval`."""

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from core.detector_net import STRIDE, decode_maps
from core.geometry import apply_affine, face_square_from_points, iou_matrix, letterbox_rect, nms
from core.metrics import average_precision, match_detections
from core.models import build_model, model_meta
from core.onnx_session import open_session
from tests.datagen import face_points4
from tracker.backends import OnnxBackend
from tracker.detect import GridDetector, default_min_score
from training.compose import compose
from training.data.faces_cache import PATCH_PX, FacesCache
from training.detector_task import detection_metrics, detector_loss, face_targets

runner = CliRunner()


def _maps_with_one_face(h=8, w=10, row=3, col=4, side_cells=5.0, offset=(0.25, 0.75), points=None):
    maps = torch.zeros(1, 12, h, w)
    maps[0, 0] = -6.0
    maps[0, 0, row, col] = 3.0
    maps[0, 1, row, col] = float(np.log(side_cells))
    maps[0, 2, row, col], maps[0, 3, row, col] = offset
    pts = points if points is not None else np.array([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.1], [0.0, 0.3]])
    maps[0, 4:, row, col] = torch.tensor(pts.reshape(-1), dtype=torch.float32)
    return maps, pts


def test_decode_gives_the_peak_cells_box_and_points_in_input_pixels():
    maps, pts = _maps_with_one_face()
    out = decode_maps(maps)[0].numpy()
    assert out.shape == (80, 13)
    best = out[np.argmax(out[:, 0])]
    cx, cy, side = (4 + 0.25) * STRIDE, (3 + 0.75) * STRIDE, 5.0 * STRIDE
    assert best[0] == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-5)
    assert np.allclose(best[1:5], [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], atol=1e-4)
    assert np.allclose(best[5:].reshape(4, 2), np.array([cx, cy]) + pts * side, atol=1e-4)
    # every cell but the local maximum scores 0 (CenterNet's 3x3 max-pool NMS)
    assert (out[:, 0] > 0).sum() < 80 and np.sort(out[:, 0])[-2] < 0.01


def test_targets_put_each_face_at_its_centre_cell_and_a_perfect_answer_costs_little():
    faces = [np.stack([face_points4(40, 50, 30), face_points4(100, 70, 16)]), np.zeros((0, 4, 2), np.float32)]
    t = face_targets(faces, 128)
    assert t["heat"].shape == (2, 1, 32, 32) and t["index"].shape == (2, 3)
    for k, face in enumerate(faces[0]):
        center, side = face_square_from_points(face)
        b, row, col = t["index"][k]
        assert (b, row, col) == (0, int(center[1] // STRIDE), int(center[0] // STRIDE))
        assert t["heat"][0, 0, row, col] == 1.0
        assert np.exp(t["side_log"][k]) * STRIDE == pytest.approx(side, rel=1e-5)
    assert t["heat"][1].max() == 0.0
    # maps equal to the targets: the regression terms vanish and the heat term is small
    maps = torch.full((2, 12, 32, 32), -8.0)
    tt = {k: torch.from_numpy(v) for k, v in t.items()}
    for k, (b, row, col) in enumerate(t["index"]):
        maps[b, 0, row, col] = 8.0
        maps[b, 1, row, col] = tt["side_log"][k]
        maps[b, 2:4, row, col] = tt["offset"][k]
        maps[b, 4:, row, col] = tt["points"][k]
    good = float(detector_loss(maps, tt))
    maps[0, 4:] += 0.2
    assert good < 0.05 and float(detector_loss(maps, tt)) > good + 0.3


def _tiny_cache(n_faces=6, seed=0):
    rng = np.random.default_rng(seed)
    patches = rng.integers(0, 255, size=(n_faces, PATCH_PX, PATCH_PX, 3), dtype=np.uint8)
    points = np.stack([face_points4(PATCH_PX / 2, PATCH_PX / 2 - 6, PATCH_PX / 1.8)] * n_faces)
    photo = rng.integers(0, 255, size=(200, 300, 3), dtype=np.uint8)
    photo_points = face_points4(150, 90, 60)[None]
    return FacesCache(patches, points.astype(np.float32), ["ytf-csv"] * n_faces, [photo], [photo_points],
                      ["ytf-csv"], None, 10)


def test_composed_images_label_the_faces_inside_them_and_empty_ones_none():
    cache = _tiny_cache()
    rng = np.random.default_rng(3)
    total = 0
    for kind in ("mosaic", "photo", "mosaic"):
        image, points = compose(cache, rng, 192, kind=kind)
        assert image.shape == (192, 192, 3) and image.dtype == np.uint8
        for face in points:
            center, _ = face_square_from_points(face)
            assert 0 <= center[0] < 192 and 0 <= center[1] < 192
        total += len(points)
    assert total >= 1
    image, points = compose(cache, rng, 192, kind="empty")
    assert len(points) == 0
    again = compose(cache, np.random.default_rng(3), 192, kind="mosaic")
    first = compose(cache, np.random.default_rng(3), 192, kind="mosaic")
    assert np.array_equal(again[0], first[0]) and np.array_equal(again[1], first[1])


def test_rect_letterbox_keeps_aspect_and_pads_to_the_stride():
    image = np.full((720, 1280, 3), 200, np.uint8)
    padded, m = letterbox_rect(image, 384, 32)
    # 1280x720 shrinks by 3 (area, the 1278x720 it divides) then bilinearly: the affine is that exact scale
    assert padded.shape == (224, 384, 3) and m[0, 0] == pytest.approx(384 / 1278) and m[1, 1] == pytest.approx(0.3)
    assert padded[:216].min() == 200 and padded[216:].max() == 0


@pytest.mark.parametrize(("size", "long_side"), [((480, 640), 384), ((720, 1280), 384), ((1080, 1920), 384),
                                                  ((100, 90), 384)])
def test_rect_letterbox_maps_frame_points_where_they_show(size, long_side):
    h, w = size
    image = np.zeros((h, w, 3), np.uint8)
    spots = np.array([[0.2 * w, 0.3 * h], [0.7 * w, 0.6 * h]])
    for x, y in spots:
        cv2.circle(image, (int(x), int(y)), max(4, w // 40), (255, 255, 255), -1)
    out, m = letterbox_rect(image, long_side, 32)
    grey = out[..., 0].astype(np.float64)
    for x, y in apply_affine(spots, m):
        r = max(3, int(round(w // 40 * m[0, 0])) + 2)
        window = grey[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1]
        yy, xx = np.mgrid[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1]
        centre = np.array([(xx * window).sum(), (yy * window).sum()]) / window.sum()
        assert np.abs(centre - [x, y]).max() < 1.0  # the spot's centre where the affine puts it


def test_numpy_nms_matches_torchvision():
    import torchvision

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(60, 2))
    boxes = np.hstack([xy, xy + rng.uniform(10, 40, size=(60, 2))]).astype(np.float32)
    scores = rng.uniform(0, 1, 60).astype(np.float32)
    for iou in (0.3, 0.5):
        ours = nms(boxes, scores, iou)
        theirs = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
        assert np.array_equal(ours, theirs)
    assert np.allclose(iou_matrix(boxes[:5], boxes[:5]).diagonal(), 1.0)


def test_average_precision_of_known_rankings():
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    hit, matched = match_detections(boxes, np.array([0.9, 0.8, 0.7]), truth)
    assert hit.tolist() == [True, True, False] and matched.all()
    assert average_precision(np.array([0.9, 0.8, 0.7]), hit, 2) == pytest.approx(1.0)
    # the false one ranked first: precision 1/2 at recall 0.5 and 2/3 at 1.0; all-point interpolation
    # takes the best precision at any higher recall, 2/3 over the whole curve
    assert average_precision(np.array([0.5, 0.4, 0.9]), hit, 2) == pytest.approx(2 / 3)
    assert average_precision(np.array([0.9, 0.4, 0.5]), hit, 2) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert average_precision(np.array([0.9]), np.array([True]), 2) == pytest.approx(0.5)


def test_detection_metrics_of_decoded_outputs():
    maps, _ = _maps_with_one_face()
    out = decode_maps(maps).numpy()
    row = out[0][np.argmax(out[0][:, 0])]
    boxes = np.full((1, 4, 4), np.nan, np.float32)
    boxes[0, 0] = row[1:5]
    m = detection_metrics(out, boxes, np.array([1.0]))
    assert m["ap50"] == pytest.approx(1.0) and m["recall"] == 1.0 and m["false_per_image"] == 0.0


@pytest.mark.slow
def test_onnx_detector_matches_torch_at_any_frame_shape_and_maps_faces_to_frame_pixels(tmp_path):
    from export.onnx_graph import export_onnx

    torch.manual_seed(0)
    model = build_model("centernet", {"input_size": 128}).eval()
    with torch.no_grad():  # an untrained heat is flat (the prior everywhere): make its peaks clear-cut
        model.head[-1].weight.normal_(0, 3.0)
        model.head[-1].bias[0] = 0.0
    path = export_onnx(model, model_meta("centernet", model.config), tmp_path / "detector.onnx")
    backend = OnnxBackend(open_session(path, "cpu", threads=1))
    assert backend.meta.kind == "detector" and backend.meta.pad_multiple == 32
    for shape in [(1, 3, 96, 128), (1, 3, 128, 64), (2, 3, 64, 64)]:
        x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = backend.predict(x)
        assert got.shape == expected.shape
        assert np.allclose(got[..., 0], expected[..., 0], atol=1e-4)  # scores
        assert np.allclose(got[..., 1:], expected[..., 1:], atol=1e-2, rtol=1e-3)  # pixels
    assert default_min_score(backend.meta) == 0.5  # no min_score in its metadata yet
    detector = GridDetector(backend, min_score=0.0, max_faces=3)
    image = np.zeros((300, 200, 3), np.uint8)
    found = detector.detect(image, timings := {})
    assert len(found) == 3 and detector.calls == 1 and timings["box_model"] > 0
    for d in found:
        assert d.points_px.shape == (4, 2)
        assert 0 <= d.box_xyxy[0] <= d.box_xyxy[2] <= 200 and 0 <= d.box_xyxy[1] <= d.box_xyxy[3] <= 300
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


class _SquareModel:
    """A scale-specific "detector model": on its input it reports the bright square as a face only when
    its side is within `face_side_px` (as the trained detector learns faces of some sizes only)."""

    def __init__(self, input_size=384, face_side_px=(10, 64)):
        from core.meta import ModelMeta

        self.meta = ModelMeta.for_kind("detector", "square", input_size, pad_multiple=32,
                                       extra={"face_side_px": f"{face_side_px[0]},{face_side_px[1]}"})
        self.name, self.sides_seen = "fake:square", []

    def predict(self, batch):
        self.sides_seen.append(batch.shape[3])
        bright = batch[0].mean(axis=0) > 1.0
        out = np.zeros((1, 4, 13), np.float32)
        ys, xs = np.nonzero(bright)
        if len(xs):
            x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            lo, hi = (float(v) for v in self.meta.extra["face_side_px"].split(","))
            if lo <= x2 - x1 <= hi:
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                out[0, 0] = [0.9, x1, y1, x2, y2, cx - 5, cy, cx + 5, cy, cx, cy + 2, cx, cy + 5]
        return out


@pytest.mark.parametrize("side", [20, 90, 250])
def test_the_pyramid_finds_faces_larger_than_the_model_learned_in_frame_pixels(side):
    image = np.zeros((480, 640, 3), np.uint8)
    image[100:100 + side, 200:200 + side] = 255
    model = _SquareModel()
    (face,) = GridDetector(model, 0.5).detect(image, {})
    assert np.allclose(face.box_xyxy, [200, 100, 200 + side, 100 + side], atol=side * 0.06 + 2)
    # levels: 384 (the frame's longer side scaled to the input), then halved while the previous one is
    # larger than 64 px: 192, 96, 48 (padded to 64, the stride's multiple)
    assert model.sides_seen == [384, 192, 96, 64]


def test_a_small_frame_is_not_enlarged_for_the_detector():
    image = np.zeros((120, 160, 3), np.uint8)
    image[40:70, 60:90] = 255
    model = _SquareModel()
    (face,) = GridDetector(model, 0.5).detect(image, {})
    assert model.sides_seen[0] == 160 and np.allclose(face.box_xyxy, [60, 40, 90, 70], atol=2)
