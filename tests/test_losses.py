"""training.losses on tiny tensors against hand-computed values."""

import math

import pytest
import torch

from core.errors import InputError
from training.losses import box_loss, point_loss, wing_loss

PRED = torch.tensor([[0.0, 1.0, 0.5, 0.5]])
TARGET = torch.tensor([[1.0, 1.0, 0.5, 0.0]])  # errors -1, 0, 0, 0.5


def test_mse_and_l1():
    assert float(point_loss("mse", PRED, TARGET)) == pytest.approx((1 + 0.25) / 4)
    assert float(point_loss("l1", PRED, TARGET)) == pytest.approx((1 + 0.5) / 4)


def test_wing_is_log_near_zero_and_shifted_l1_far_away():
    w, eps = 0.05, 0.01
    c = w - w * math.log(1 + w / eps)  # -0.0395880
    near, far = torch.tensor([0.01]), torch.tensor([0.1])
    assert float(wing_loss(near, torch.zeros(1))) == pytest.approx(w * math.log(2))  # 0.0346574
    assert float(wing_loss(far, torch.zeros(1))) == pytest.approx(0.1 - c)  # 0.1395880
    # continuous at |d| = w, symmetric, and the mean over elements
    assert float(wing_loss(torch.tensor([w - 1e-7]), torch.zeros(1))) == pytest.approx(w - c, abs=1e-6)
    assert float(point_loss("wing", torch.tensor([[-0.01, 0.1]]), torch.zeros(1, 2))) == \
        pytest.approx((w * math.log(2) + 0.1 - c) / 2)


def test_unknown_point_loss_is_an_input_error():
    with pytest.raises(InputError, match="unknown loss 'l2'"):
        point_loss("l2", PRED, TARGET)


def test_box_loss_without_faces_is_presence_bce_only():
    pred = torch.tensor([[0.3, 0.3, 0.1, 0.1, 0.0], [0.0, 0.0, 1.0, 1.0, 0.0]])  # boxes ignored
    loss = box_loss(pred, torch.zeros(2, 4), torch.zeros(2))
    assert float(loss) == pytest.approx(math.log(2))  # BCE of logit 0 = log 2


def test_box_loss_terms_on_a_shifted_box():
    pred = torch.tensor([[0.0, 0.0, 0.2, 0.2, 0.0]])
    target = torch.tensor([[0.1, 0.0, 0.3, 0.2]])
    # smooth L1 (beta 0.02) on errors 0.1, 0, 0.1, 0: (0.1 - 0.01) each, mean 0.045, times 10
    l1 = 10 * (2 * (0.1 - 0.01)) / 4
    # IoU: overlap 0.1 x 0.2 = 0.02 of union 0.04 + 0.04 - 0.02 = 0.06; enclosing box 0.3 x 0.2 = 0.06 = union
    giou_loss = 1 - 0.02 / 0.06
    assert float(box_loss(pred, target, torch.ones(1))) == pytest.approx(l1 + giou_loss + math.log(2), rel=1e-5)
    # a perfect box with a confident presence costs nothing but float32 rounding (GIoU's eps)
    perfect = torch.tensor([[0.1, 0.0, 0.3, 0.2, 20.0]])
    assert float(box_loss(perfect, target, torch.ones(1))) == pytest.approx(0.0, abs=1e-5)
