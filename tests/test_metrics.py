"""core.metrics on hand-computed values: NME per face and per point, failure rate, IoU, presence accuracy."""

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from core.metrics import (
    box_iou_pairs,
    box_metrics,
    failure_rate,
    landmark_metrics,
    nme_per_face,
    nme_per_point,
    presence_accuracy,
)

# eyes 10 apart (inter-ocular distance 10), nose and mouth below
FACE = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 5.0], [5.0, 10.0]])


def test_nme_of_a_known_offset():
    # every point off by (3, 4): 5 units = 50 % of the inter-ocular distance
    assert nme_per_face(FACE[None] + [3.0, 4.0], FACE[None]) == pytest.approx([50.0])
    # only the nose off by 1: that point 10 %, the face 10 / 4 = 2.5 %
    pred = FACE.copy()
    pred[2, 0] += 1.0
    np.testing.assert_allclose(nme_per_point(pred[None], FACE[None]), [[0.0, 0.0, 10.0, 0.0]], atol=1e-12)
    assert nme_per_face(pred[None], FACE[None]) == pytest.approx([2.5])


def test_nme_is_scale_free_and_takes_flat_or_paired_points():
    pred = FACE + [[0.0, 1.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]
    flat = nme_per_face(pred.reshape(1, 8), FACE.reshape(1, 8))
    assert flat == pytest.approx([(1 + 2) / 4 / 10 * 100])
    # the same face at 1/100 scale (crop-normalised units) has the same NME
    assert nme_per_face(pred[None] / 100, FACE[None] / 100) == pytest.approx(flat)
    # normalised by the TRUE eyes, not the predicted ones
    squeezed = FACE.copy()
    squeezed[1, 0] = 5.0  # predicted left eye 5 off
    assert nme_per_face(squeezed[None], FACE[None]) == pytest.approx([5 / 4 / 10 * 100])


def test_failure_rate_counts_faces_above_ten_percent():
    assert failure_rate(np.array([5.0, 10.0, 10.5, 20.0])) == 0.5  # 10.0 itself is not a failure
    assert failure_rate(np.array([5.0, 7.0]), threshold=6.0) == 0.5
    assert failure_rate(np.zeros(0)) == 0.0


def test_landmark_metrics_summarise_per_face_and_per_point():
    preds = np.stack([FACE + [3.0, 4.0], FACE, FACE])  # 50 %, 0 %, 0 %
    preds[2, 3, 1] += 4.0  # mouth 40 %, face 10 %
    m = landmark_metrics(preds, np.stack([FACE] * 3))
    assert m["faces"] == 3
    assert m["nme_mean"] == pytest.approx(20.0) and m["nme_median"] == pytest.approx(10.0)
    assert m["failure_rate"] == pytest.approx(1 / 3)
    assert m["per_point"] == pytest.approx({"right_eye": 50 / 3, "left_eye": 50 / 3, "nose_tip": 50 / 3,
                                            "mouth_center": 90 / 3})


def test_iou_of_known_boxes():
    a = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 4, 2]], dtype=np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 2, 2]], dtype=np.float32)
    # overlap 1 of union 4 + 4 - 1; identical; disjoint; one inside a box twice its size
    assert box_iou_pairs(a, b) == pytest.approx([1 / 7, 1.0, 0.0, 0.5])
    assert box_iou_pairs(a, b).dtype == np.float32


def test_iou_is_torchvisions_to_the_bit():
    rng = np.random.default_rng(0)
    boxes = rng.random((2, 500, 4)).astype(np.float32)
    a, b = (np.concatenate([np.minimum(x[:, :2], x[:, 2:]), np.maximum(x[:, :2], x[:, 2:])], axis=1) for x in boxes)
    ref = box_iou(torch.from_numpy(a), torch.from_numpy(b)).diagonal().numpy()
    assert np.array_equal(box_iou_pairs(a, b), ref)


def test_presence_accuracy():
    logits = np.array([5.0, -5.0, 5.0, -5.0, 0.0])
    # right, right, wrong, wrong, and logit 0 = probability 0.5 counts as a face (>= threshold)
    assert presence_accuracy(logits, np.array([1, 0, 0, 1, 1])) == pytest.approx(3 / 5)
    assert presence_accuracy(np.array([1.0]), np.array([1]), threshold=0.9) == 0.0  # sigmoid(1) = 0.73
    assert presence_accuracy(np.zeros(0), np.zeros(0)) == 0.0


def test_box_metrics_over_faces_orders_corners_and_counts_presence_over_all():
    pred = np.array([[2, 2, 0, 0, 3.0],  # corners reversed: the box (0,0,2,2), IoU 1/7 with (1,1,3,3)
                     [0, 0, 2, 2, 3.0],  # IoU 1
                     [9, 9, 9, 9, 3.0]],  # no face here (its box is ignored) but presence says face: wrong
                    dtype=np.float32)
    target = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [0, 0, 0, 0]], dtype=np.float32)
    m = box_metrics(pred, target, np.array([1.0, 1.0, 0.0]))
    assert m["iou_mean"] == pytest.approx((1 / 7 + 1) / 2)
    assert m["iou_recall"] == pytest.approx(0.5)
    assert m["presence_accuracy"] == pytest.approx(2 / 3)
    empty = box_metrics(pred[2:], target[2:], np.array([0.0]))
    assert empty == {"iou_mean": 0.0, "iou_recall": 0.0, "presence_accuracy": 0.0}
