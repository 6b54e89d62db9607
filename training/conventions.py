"""Where the data sets put "the eye", "the nose" and "the mouth centre", relative to each other.

Offsets are measured in the face's own frame, so they do not depend on where the face is, how large it
is or how it is rolled: x runs along the eye line (from the subject's right eye to the left eye), y is
perpendicular to it (towards the mouth in an upright face), and the unit is the inter-ocular distance
of the reference points. An offset (dx, dy) = (0.05, 0.10) on the mouth means that set's mouth lies 5 %
of the inter-ocular distance towards the left eye and 10 % further down than the reference mouth.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.geometry import apply_face_frame_offsets, face_axes, offsets_in_face_frame  # noqa: F401 (re-exported)
from core.meta import MIRRORED_ORDER
from training.data.samples import (
    CONVENTION_IBUG68,
    CONVENTIONS,
    IBUG_LEFT_EYE,
    IBUG_MOUTH,
    IBUG_NOSE_TIP,
    IBUG_RIGHT_EYE,
)

# iBUG-68 indices (0-based) of the eye and mouth corners
IBUG_RIGHT_EYE_CORNERS = (36, 39)
IBUG_LEFT_EYE_CORNERS = (42, 45)
IBUG_MOUTH_CORNERS = (48, 54)


def ibug68_alternatives(points68: np.ndarray) -> dict[str, np.ndarray]:
    """Four-point layouts computable from (N, 68, 2) iBUG points: the project's own ('ibug68': eye
    outline means, point 30, mean of the 20 mouth points) and one with the other sets' definitions where
    the 68 points allow them ('corners': eye = midpoint of its two corners, mouth = mean of the two mouth
    corners as MTFL defines it, nose unchanged)."""
    p = np.asarray(points68, dtype=np.float64).reshape(-1, 68, 2)
    own = np.stack([p[:, list(IBUG_RIGHT_EYE)].mean(1), p[:, list(IBUG_LEFT_EYE)].mean(1), p[:, IBUG_NOSE_TIP],
                    p[:, list(IBUG_MOUTH)].mean(1)], axis=1)
    corners = np.stack([p[:, list(IBUG_RIGHT_EYE_CORNERS)].mean(1), p[:, list(IBUG_LEFT_EYE_CORNERS)].mean(1),
                        p[:, IBUG_NOSE_TIP], p[:, list(IBUG_MOUTH_CORNERS)].mean(1)], axis=1)
    return {"ibug68": own, "corners": corners}


def summarise(offsets: np.ndarray) -> dict[str, list[list[float]]]:
    """Median and inter-quartile range of (N, P, 2) offsets, per point and axis (rounded to 1e-4)."""
    q25, q50, q75 = np.percentile(np.asarray(offsets, dtype=np.float64), [25, 50, 75], axis=0)
    return {"median": np.round(q50, 4).tolist(), "iqr": np.round(q75 - q25, 4).tolist()}


# ---------------------------------------------------------------- learned offsets (training only)


def convention_index(name: str) -> int:
    """The row of convention `name` in `ConventionOffsets` (its index in `CONVENTIONS`)."""
    return CONVENTIONS.index(name)


def move_in_face_frame(points: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Torch twin of `apply_face_frame_offsets`: (B, P, 2) points moved by (B, P, 2) face-frame offsets.

    The frame is the points' own: x along the eye line (point 0 -> point 1), y that turned by +90 degrees
    in image coordinates (y down), unit their inter-ocular distance. Differentiable in both arguments.
    """
    eye_line = points[:, 1] - points[:, 0]
    iod = eye_line.norm(dim=1, keepdim=True).clamp(min=1e-6)
    x = eye_line / iod
    y = torch.stack([-x[:, 1], x[:, 0]], dim=1)
    shift = offsets[..., :1] * x[:, None] + offsets[..., 1:] * y[:, None]
    return points + shift * iod[:, None]


class ConventionOffsets(nn.Module):
    """Learned (C, P, 2) face-frame offsets of each point convention from the model's (iBUG-68) points.

    The model predicts the one convention the tracker outputs (CONVENTION_IBUG68, fixed at zero); during
    training, a face labelled in another convention is scored after its convention's offset is added to
    the prediction, so that set's definition of "eye", "nose" and "mouth" does not drag the model's.
    Offsets follow the module docstring's frame (x along the eye line, y towards the mouth, unit the
    inter-ocular distance) of the *predicted* points. A mirrored crop (eyes swapped) uses the mirrored
    offsets: its right eye is the original's left eye, and x turns round (`mirrored`).
    Never part of an exported model: the checkpoint keeps them as `convention_offsets` (`as_dict`).
    """

    def __init__(self, conventions: tuple[str, ...] = CONVENTIONS, num_points: int = 4):
        super().__init__()
        self.conventions = tuple(conventions)
        self.offsets = nn.Parameter(torch.zeros(len(self.conventions), num_points, 2))
        fixed = torch.tensor([c == CONVENTION_IBUG68 for c in self.conventions])
        self.register_buffer("free", (~fixed).float().view(-1, 1, 1), persistent=False)

    def table(self) -> torch.Tensor:
        """(C, P, 2) offsets with the reference convention's row at exactly zero."""
        return self.offsets * self.free

    def forward(self, points: torch.Tensor, convention: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """(B, P, 2) points in each face's own convention: `points` (B, P, 2, any unit) moved by the
        offsets of `convention` (B,) row indices, mirrored where `flipped` (B,) bool."""
        table = self.table()
        own = table[convention]
        mirrored = mirror_offsets(table)[convention]
        return move_in_face_frame(points, torch.where(flipped.view(-1, 1, 1), mirrored, own))

    def as_dict(self) -> dict[str, list[list[float]]]:
        """{convention: (P, 2) offsets as nested lists} (what checkpoints and logs keep)."""
        table = self.table().detach().cpu()
        return {name: table[k].tolist() for k, name in enumerate(self.conventions)}

    def load_dict(self, values: dict[str, list[list[float]]]) -> None:
        """Set the offsets from `as_dict`'s output (conventions it does not name keep theirs)."""
        with torch.no_grad():
            for name, rows in values.items():
                if name in self.conventions:
                    self.offsets[self.conventions.index(name)] = torch.tensor(rows, dtype=self.offsets.dtype)


def mirror_offsets(offsets: torch.Tensor) -> torch.Tensor:
    """(..., P, 2) face-frame offsets of a mirrored face: the eyes' rows swapped, x negated."""
    out = offsets[..., list(MIRRORED_ORDER), :]
    return torch.stack([-out[..., 0], out[..., 1]], dim=-1)


def offsets_text(values: dict[str, list[list[float]]], point_names: tuple[str, ...]) -> str:
    """The learned offsets as a table, one line per convention and point (dx, dy in inter-ocular units)."""
    lines = [f"  {'convention':<12}{'point':<14}{'dx':>8}{'dy':>8}"]
    for name, rows in values.items():
        for point, (dx, dy) in zip(point_names, rows):
            lines.append(f"  {name:<12}{point:<14}{dx:>8.3f}{dy:>8.3f}")
    return "\n".join(lines)


class WithConventionOffsets(nn.Module):
    """What a landmark training step optimises: the model (iBUG-68 points, and a quality logit when its
    config has `quality`) and the `ConventionOffsets` that score each face in its own convention.

    `forward(x, convention, flipped)` -> (points (B, 2P) crop-normalised in each face's own convention,
    quality logits (B,) or None, box (B, 4) of the course models with a box head or None, bins or None).
    `bins`, for a model with `bin_logits` (SimCC), is (x logits (B, P, bins), y logits (B, P, bins),
    shift (B, P, 2), bin centres (bins,)): `shift` is what the offsets added to the iBUG-68 points (detached), so that a
    target minus it is the target in the model's own convention. One module, so DistributedDataParallel
    averages the offsets' gradients with the model's.
    """

    def __init__(self, model: nn.Module, offsets: ConventionOffsets | None = None):
        super().__init__()
        self.model = model
        self.offsets = offsets if offsets is not None else ConventionOffsets(num_points=model.config.num_points)
        self.has_box_head = getattr(model, "has_box_head", False)
        self.has_bins = hasattr(model, "bin_logits")  # SimCC: its logits are scored too

    def forward(self, x: torch.Tensor, convention: torch.Tensor, flipped: torch.Tensor):
        box = logits = None
        if self.has_bins:
            *logits, quality = self.model.bin_logits(x)
            out = self.model.decode(*logits)
        elif self.has_box_head:
            out, box = self.model.forward_all(x)
        else:
            out = self.model(x)
        n_values = 2 * self.model.config.num_points
        points = out[:, :n_values].reshape(len(x), -1, 2)
        if not self.has_bins:
            quality = out[:, n_values] if out.shape[1] > n_values else None
        own = self.offsets(points, convention, flipped)
        bins = (*logits, (own - points).detach(), self.model.bin_centers) if self.has_bins else None
        return own.reshape(len(x), -1), quality, box, bins
