"""One-Euro filtering of the points and the box: calm when still, quick when moving. Pure and testable.

Casiez, Roussel, Vogel (CHI 2012). Speeds are measured in face sizes per second (`scale`), so the
same settings suit a small face far away and a large one close to the camera.
"""

from __future__ import annotations

import math

import numpy as np

# Tuned on three clips with per-frame truth (scripts/tune_smoothing.py, docs/evaluation.md "Smoothing"): of
# the settings that lower the jitter on every clip and add at most 0.15 points of NME % to it, the one with
# the least mean jitter. The old (1.0, 1.5, 1.0) lagged so far behind a moving face that it raised NME from
# 4.4 to 11.1 % on the demo clip (and its jitter too, the lag error changing with the face's speed).
MIN_CUTOFF_HZ = 0.5  # cutoff when still: lower is calmer but lags more
BETA = 50.0  # how fast the cutoff rises with speed (Hz per face size per second)
D_CUTOFF_HZ = 8.0  # cutoff of the speed estimate itself


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of any shape; each element gets its own adaptive cutoff."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA, d_cutoff: float = D_CUTOFF_HZ):
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next value passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filter value `x` observed at time `t` (seconds); `scale` is the unit speeds are measured in."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.astype(np.float32)
        dt = float(t) - self._t
        if dt <= 0:  # a repeated or out-of-order timestamp: keep the last estimate
            return self._x.astype(np.float32)
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx) / max(float(scale), 1e-6)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.astype(np.float32)


class FaceSmoother:
    """Smooths one face's points (P,2) and box (4,), both scaled by the face size."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA, d_cutoff: float = D_CUTOFF_HZ):
        self.points = OneEuroFilter(min_cutoff, beta, d_cutoff)
        self.box = OneEuroFilter(min_cutoff, beta, d_cutoff)

    def reset(self) -> None:
        """Forget the face (after the track was lost)."""
        self.points.reset()
        self.box.reset()

    def __call__(self, points_px: np.ndarray | None, box_xyxy: np.ndarray | None, t: float,
                 face_size: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Smoothed (points, box); None stays None."""
        points = None if points_px is None else self.points(points_px, t, face_size)
        box = None if box_xyxy is None else self.box(box_xyxy, t, face_size)
        return points, box
