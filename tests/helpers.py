"""Helpers for the runtime tests: tiny random-weight models, weights folders, generated clips, error lines.

Models are exported once per session (a few seconds each) and shared through conftest's fixtures.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from core.geometry import FACE_CENTER_SHIFT, FACE_SIDE_PER_EYE_MOUTH
from core.manifest import write_manifest
from core.meta import LANDMARK_CROP_SCALE

LANDMARK_SIZE = 48
BOX_SIZE = 64
_CACHE: dict[str, Path] = {}


def canonical_points_norm(crop_scale: float = LANDMARK_CROP_SCALE, iod: float = 0.32) -> np.ndarray:
    """Crop-normalised points whose implied crop is the same crop: a fixed point of tracking."""
    d = 1.0 / (FACE_SIDE_PER_EYE_MOUTH * crop_scale)  # eye-midpoint to mouth, in crop sides
    eye_y = 0.5 - (0.5 + FACE_CENTER_SHIFT) * d
    return np.array([[0.5 - iod / 2, eye_y], [0.5 + iod / 2, eye_y], [0.5, eye_y + 0.55 * d], [0.5, eye_y + d]],
                    dtype=np.float32)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def tiny_models(presence_logit: float = 8.0, seed: int = 0, wiggle: float = 0.02):
    """(box model, landmark model): random tiny nets whose last layer is steered to sensible outputs.

    The last Linear layers get small random weights (outputs still depend on the image, for parity
    tests) around a bias that puts the box at 0.3..0.7 of the letterbox, the points at a tracking fixed
    point, and the presence logit at `presence_logit` (very negative: never a face).
    """
    import torch

    from core.models import build_model, make_config

    torch.manual_seed(seed)
    box = build_model("box", make_config("box", input_size=BOX_SIZE, widths=(8, 16), hidden=32)).eval()
    landmarks = build_model("resnet", make_config("resnet", input_size=LANDMARK_SIZE, widths=(8, 16),
                                                  head_channels=8, hidden=32)).eval()
    with torch.no_grad():
        last = box.head[-1]
        last.weight.mul_(wiggle)
        last.weight[4].zero_()
        last.bias.copy_(torch.tensor([_logit(0.3), _logit(0.3), _logit(0.7), _logit(0.7), presence_logit]))
        last = landmarks.head[-1]
        last.weight.mul_(wiggle * 0.25)
        last.bias.copy_(torch.from_numpy(canonical_points_norm().reshape(-1)))
    return box, landmarks


def write_weights(folder: Path, presence_logit: float = 8.0, checkpoints: bool = True) -> Path:
    """A weights folder: box.onnx + landmarks.onnx (+ .pt checkpoints) and a manifest."""
    from core.models import make_checkpoint, model_meta, save_checkpoint
    from export.onnx_graph import export_onnx

    folder.mkdir(parents=True, exist_ok=True)
    box, landmarks = tiny_models(presence_logit)
    export_onnx(box, model_meta("box", box.config), folder / "box.onnx")
    export_onnx(landmarks, model_meta("resnet", landmarks.config), folder / "landmarks.onnx")
    manifest = {"default_landmarks": "resnet", "onnx": {"box": "box.onnx", "resnet": "landmarks.onnx"},
                "checkpoints": {}}
    if checkpoints:
        save_checkpoint(folder / "box.pt", make_checkpoint("box", box))
        save_checkpoint(folder / "landmarks-resnet.pt", make_checkpoint("resnet", landmarks))
        manifest["checkpoints"] = {"box": "box.pt", "resnet": "landmarks-resnet.pt"}
    write_manifest(folder, manifest)
    return folder


def shared_weights(tmp_path_factory, kind: str = "face") -> Path:
    """Session-wide weights folders: 'face' (always present) or 'noface' (presence forced off)."""
    if kind not in _CACHE:
        folder = tmp_path_factory.mktemp(f"weights-{kind}")
        _CACHE[kind] = write_weights(folder, 8.0 if kind == "face" else -30.0, checkpoints=kind == "face")
    return _CACHE[kind]


def write_clip(path: Path, frames: int = 30, width: int = 160, height: int = 120, fps: float = 25.0) -> Path:
    """A small mp4v clip of the synthetic moving face."""
    from tracker.bench.synthetic import SyntheticSource

    source = SyntheticSource(width, height, fps, frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(source.render(i))
    writer.release()
    return path


def count_frames(path: Path) -> tuple[int, int, int, float]:
    """(frames decoded, width, height, fps) of a video file."""
    cap = cv2.VideoCapture(str(path))
    n, size = 0, (0, 0)
    while True:
        ok, image = cap.read()
        if not ok:
            break
        n += 1
        size = (image.shape[1], image.shape[0])
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, size[0], size[1], fps


class CountingBackend:
    """Wraps a backend, counting calls and optionally sleeping (a slow model)."""

    def __init__(self, inner, delay_s: float = 0.0) -> None:
        self.inner, self.delay_s, self.calls = inner, delay_s, 0
        self.name, self.meta = inner.name, inner.meta

    def predict(self, batch):
        import time

        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inner.predict(batch)




def one_error_line(result, code: int, *needles: str) -> str:
    """The single `facetrack: error:` line of a CLI result with exit `code`, containing every needle."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("facetrack: error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]
