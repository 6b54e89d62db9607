"""Losses for points and boxes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss

from core.errors import InputError

POINT_LOSSES = ("mse", "l1", "wing")


def wing_loss(pred: torch.Tensor, target: torch.Tensor, w: float = 0.05, eps: float = 0.01) -> torch.Tensor:
    """Wing loss (Feng et al., CVPR 2018) in crop-normalised units: log near zero, L1 far away."""
    d = (pred - target).abs()
    c = w - w * math.log(1 + w / eps)
    return torch.where(d < w, w * torch.log1p(d / eps), d - c).mean()


def point_loss(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss between predicted and target points (B, 2P), crop-normalised."""
    if name == "mse":
        return F.mse_loss(pred, target)
    if name == "l1":
        return F.l1_loss(pred, target)
    if name == "wing":
        return wing_loss(pred, target)
    raise InputError(f"unknown loss {name!r}; known: {', '.join(POINT_LOSSES)}")


def bin_loss(logits_x: torch.Tensor, logits_y: torch.Tensor, target: torch.Tensor, centers: torch.Tensor,
             sigma: float) -> torch.Tensor:
    """SimCC's classification loss (Li et al., ECCV 2022): cross-entropy of (B, P, bins) x and y logits
    against Gaussian labels of std `sigma` around the (B, P, 2) targets, all in crop-normalised units
    (`centers` (bins,) the bins' centres). It differs from SimCC's KL divergence by the labels' entropy, a
    constant. A target beyond the bins has no label and adds nothing."""
    def axis(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        label = torch.exp(-0.5 * ((centers - t[..., None]) / sigma) ** 2)
        label = label / label.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        return -(label * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    return 0.5 * (axis(logits_x, target[..., 0]) + axis(logits_y, target[..., 1]))


def box_loss(pred: torch.Tensor, target: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """SmoothL1 + generalised IoU on boxes (faces only) plus BCE on the presence logit."""
    bce = F.binary_cross_entropy_with_logits(pred[:, 4], presence)
    face = presence > 0.5
    if not face.any():
        return bce
    p, t = pred[face, :4], target[face]
    # keep predicted corners ordered for the IoU term
    p_ordered = torch.cat([torch.minimum(p[:, :2], p[:, 2:]), torch.maximum(p[:, :2], p[:, 2:])], dim=1)
    l1 = F.smooth_l1_loss(p, t, beta=0.02) * 10
    giou = generalized_box_iou_loss(p_ordered, t, reduction="mean")
    return l1 + giou + bce
