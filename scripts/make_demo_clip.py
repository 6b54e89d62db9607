#!/usr/bin/env python3
"""Make the shipped demo clips from the shared data (non-commercial research use only).

demo/demo.mp4: a virtual camera pans, zooms and rolls over held-out HELEN photos (the test split
of the identity split, seed 0), 640x480 at 30 fps; demo/demo.truth.jsonl holds the true four points
of every frame, so `scripts/measure_tracking.py` can score the tracker on faces in motion.
demo/no-face.mp4: the same camera over regions of dlib's example photos that hold no labelled face.

usage: scripts/make_demo_clip.py [--data ../shared/data/300w-helen-train] [--out demo] [--seconds-per-face 2]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

from core.geometry import apply_affine, crop_matrix
from core.imageio import read_image_bgr
from core.meta import POINT_NAMES
from training.data import load_dataset
from training.data.splits import split_by_identity

W, H, FPS = 640, 480, 30


def camera_path(n: int, rng: np.random.Generator, face_h: float):
    """Smooth per-frame (dx, dy, zoom, angle) offsets of the virtual camera."""
    t = np.linspace(0, 1, n)
    ph = rng.uniform(0, 2 * math.pi, size=4)
    dx = 0.22 * np.sin(2 * math.pi * t + ph[0]) * face_h
    dy = 0.15 * np.sin(2 * math.pi * 1.5 * t + ph[1]) * face_h
    zoom = 1.0 + 0.25 * np.sin(2 * math.pi * t + ph[2])
    angle = 10 * np.sin(2 * math.pi * t + ph[3])
    return dx, dy, zoom, angle


def render(image: np.ndarray, center: np.ndarray, side_px: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 view of `image` centred on `center`, `side_px` source pixels per frame height."""
    m = crop_matrix(center, side_px, H, angle)
    m[0, 2] += (W - H) / 2  # widen the square view to 4:3
    frame = cv2.warpAffine(image, m, (W, H), flags=cv2.INTER_AREA if side_px > 2 * H else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)  # reflecting would mirror faces
    return frame, m


def _clear_window(width: int, height: int, boxes: list[np.ndarray]) -> np.ndarray | None:
    """(cx, cy, side) of the largest corner square (4:3 view) that keeps clear of the grown face boxes."""
    grown_all = [b + np.array([-0.6, -0.8, 0.6, 0.6]) * np.array([b[2] - b[0], b[3] - b[1]] * 2) for b in boxes]
    best = None
    for fx in (0, 1):
        for fy in (0, 1):
            for side in np.linspace(min(width, height) * 0.9, 80, 30):
                half_w, half = side * 4 / 6, side / 2  # the view is 4:3 around a square of `side`
                cx = half_w + 2 if fx == 0 else width - half_w - 2
                cy = half + 2 if fy == 0 else height - half - 2
                x1, y1, x2, y2 = cx - half_w, cy - half, cx + half_w, cy + half
                if all(x2 < g[0] or x1 > g[2] or y2 < g[1] or y1 > g[3] for g in grown_all):
                    if best is None or side > best[2]:
                        best = np.array([cx, cy, side])
                    break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/300w-helen-train"))
    parser.add_argument("--no-face-data", default=str(Path(__file__).resolve().parents[2] / "shared/data/dlib-faces"))
    parser.add_argument("--out", default="demo")
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--seconds-per-face", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    test = split_by_identity(load_dataset(args.data).samples, seed=0)["test"]
    # near-frontal, large faces read best in a demo
    test = [s for s in test if s.iod > 60 and abs((s.points_px[2, 0] - s.points_px[:2, 0].mean()) / s.iod) < 0.25]
    chosen = [test[i] for i in rng.choice(len(test), size=args.faces, replace=False)]
    n = int(args.seconds_per_face * FPS)
    writer = cv2.VideoWriter(str(out / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    empty = cv2.VideoWriter(str(out / "no-face.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    frame_index = 0
    with open(out / "demo.truth.jsonl", "w") as truth:
        for sample in chosen:
            image = read_image_bgr(sample.image_path)
            box = sample.box_xyxy
            face_h = float(max(box[2] - box[0], box[3] - box[1]))
            center = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            dx, dy, zoom, angle = camera_path(n, rng, face_h)
            for k in range(n):
                side = face_h / 0.42 * zoom[k]  # the face fills about 30-55 % of the frame height
                frame, m = render(image, center + [dx[k], dy[k]], side, angle[k])
                writer.write(frame)
                pts = apply_affine(sample.points_px, m)
                truth.write(json.dumps({"frame": frame_index, "source": Path(sample.image_path).name,
                                        "points": {name: [round(float(x), 2), round(float(y), 2)]
                                                   for name, (x, y) in zip(POINT_NAMES, pts)}}) + "\n")
                frame_index += 1
    # no-face clip: corners of dlib's multi-face photos (and its dog photo) clear of every labelled face
    no_face_root = Path(args.no_face_data)
    faces_in: dict[str, list] = {}
    for s in load_dataset(no_face_root).samples:
        faces_in.setdefault(Path(s.image_path).name, []).append(s.box_xyxy)
    used = 0
    for path in sorted(no_face_root.glob("*.jpg")):
        image = read_image_bgr(path)
        window = _clear_window(image.shape[1], image.shape[0], faces_in.get(path.name, []))
        if window is None or window[2] < 100:
            continue
        dx, dy, _, angle = camera_path(n, rng, window[2])
        for k in range(n):
            frame, _ = render(image, window[:2] + [dx[k] * 0.1, dy[k] * 0.1], window[2] * 0.85, angle[k] * 0.3)
            empty.write(frame)
        used += 1
        if used == args.faces:
            break
    writer.release()
    empty.release()
    print(f"wrote {out / 'demo.mp4'} ({frame_index} frames), {out / 'demo.truth.jsonl'}, {out / 'no-face.mp4'}")


if __name__ == "__main__":
    main()
