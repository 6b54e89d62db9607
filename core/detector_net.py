"""The multi-face detector: a small anchor-free single-shot net in the CenterNet family (Zhou, Wang and
Krähenbühl, "Objects as Points", 2019; faces with points as in CenterFace, Xu et al. 2019).

A depthwise-separable backbone (strides 2..32) and a top-down feature pyramid end at stride 4, where
every cell predicts:
- a face-centre heatmap logit (a Gaussian peak at each face's centre, trained with CenterNet's focal loss);
- the face square's side, as log(side / stride);
- the centre's sub-cell offset (0..1 of a cell);
- the four points (POINT_NAMES order) as offsets from the centre in face sides.

`forward` decodes in the graph, so the ONNX file holds the whole model: each cell's score (0 where it is
not the maximum of its 3x3 neighbourhood, CenterNet's max-pool NMS), its box and its points in input
pixels: (B, H/4 x W/4, 5 + 2P). The runtime keeps the rows above a threshold and runs greedy NMS in numpy
(`core.postprocess.grid_detections`). The input is any size that is a multiple of 32 (`pad_multiple`):
the frame letterboxed so its longer side is `input_size` (`core.geometry.letterbox_rect`). It is
scale-specific: it learns faces whose square side is within `DetectorConfig.face_side_px`, and the
runtime runs it on an image pyramid so larger faces come into that range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 4  # output cells per input pixel side
PAD_MULTIPLE = 32  # the backbone's total stride: inputs are padded to multiples of it
HEAT_PRIOR = 0.01  # the heatmap's starting probability (focal-loss prior, Lin et al. 2017)


@dataclass(frozen=True)
class DetectorConfig:
    """The detector's shape. `input_size` is the longer side of the letterboxed frame at run time."""

    input_size: int = 384
    widths: tuple[int, ...] = (16, 32, 64, 96, 128)  # stem (stride 2), then strides 4, 8, 16, 32
    depths: tuple[int, ...] = (1, 2, 2, 3, 2)  # separable blocks per stage (the first of each strided)
    neck: int = 48  # feature-pyramid channels
    num_points: int = 4
    # the face-square sides (input px) it learns (training.compose); the runtime brings larger faces into
    # this range on an image pyramid (tracker.detect.GridDetector), the model's metadata says it
    face_side_px: tuple[float, float] = (10.0, 64.0)

    @property
    def map_channels(self) -> int:
        """Heat, log side, two offsets, and x, y per point."""
        return 4 + 2 * self.num_points


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _separable(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 (strided) then pointwise 1x1, each with BatchNorm and ReLU (MobileNet v1 block)."""
    return nn.Sequential(_conv_bn(c_in, c_in, 3, stride, groups=c_in), _conv_bn(c_in, c_out, 1))


class CenterFaceNet(nn.Module):
    """Frame (B, 3, H, W), H and W multiples of 32, in; (B, H/4 * W/4, 5 + 2P) detections out (module
    docstring). `maps` gives the raw stride-4 maps (B, 4 + 2P, H/4, W/4) that training's loss reads."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        w, d = config.widths, config.depths
        stages: list[nn.Module] = [nn.Sequential(_conv_bn(3, w[0], 3, 2),
                                                 *[_separable(w[0], w[0]) for _ in range(d[0] - 1)])]
        for i in range(1, len(w)):
            blocks = [_separable(w[i - 1], w[i], 2)] + [_separable(w[i], w[i]) for _ in range(d[i] - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        n = config.neck
        # lateral 1x1 convs of strides 4, 8, 16, 32; a separable block after each top-down merge
        self.lateral = nn.ModuleList([_conv_bn(c, n, 1) for c in w[1:]])
        self.smooth = nn.ModuleList([_separable(n, n) for _ in w[1:-1]])
        self.head = nn.Sequential(_separable(n, n), nn.Conv2d(n, config.map_channels, 1))
        with torch.no_grad():
            self.head[-1].bias.zero_()
            self.head[-1].bias[0] = -torch.log(torch.tensor((1 - HEAT_PRIOR) / HEAT_PRIOR))
            self.head[-1].bias[1] = 1.5  # log side of a ~18 px face (4.5 cells)
            self.head[-1].bias[2:4] = 0.5

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """Raw stride-4 maps (B, 4 + 2P, H/4, W/4): heat logit, log(side / STRIDE), offset x, y (cells),
        then x, y per point relative to the centre in face sides."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        pyramid = features[1:]  # strides 4, 8, 16, 32
        top = self.lateral[-1](pyramid[-1])
        for level in range(len(pyramid) - 2, -1, -1):
            top = self.lateral[level](pyramid[level]) + F.interpolate(top, scale_factor=2.0, mode="nearest")
            top = self.smooth[level](top)
        return self.head(top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return decode_maps(self.maps(x))


def decode_maps(maps: torch.Tensor) -> torch.Tensor:
    """Raw maps (B, 4 + 2P, h, w) -> (B, h*w, 5 + 2P) rows: score (sigmoid of the heat, zeroed where not a
    3x3 local maximum), x1, y1, x2, y2, then x, y per point, all in input pixels."""
    score = torch.sigmoid(maps[:, 0:1])
    score = score * (F.max_pool2d(score, 3, 1, 1) == score).to(score.dtype)
    ones = torch.ones_like(maps[:, 0:1])
    cols = ones.cumsum(3) - 1.0  # the grid from the map itself: no shape arithmetic in the graph
    rows = ones.cumsum(2) - 1.0
    cx = (cols + maps[:, 2:3]) * STRIDE
    cy = (rows + maps[:, 3:4]) * STRIDE
    side = torch.exp(maps[:, 1:2].clamp(max=8.0)) * STRIDE
    half = side / 2
    px = cx + maps[:, 4::2] * side
    py = cy + maps[:, 5::2] * side
    points = torch.stack([px, py], dim=2).flatten(1, 2)  # (B, 2P, h, w): x0, y0, x1, y1, ...
    out = torch.cat([score, cx - half, cy - half, cx + half, cy + half, points], dim=1)
    return out.flatten(2).transpose(1, 2)
