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


def tiny_models(presence_logit: float = 8.0, seed: int = 0, wiggle: float = 0.02,
                quality_logit: float | None = None):
    """(box model, landmark model): random tiny nets whose last layer is steered to sensible outputs.

    The last Linear layers get small random weights (outputs still depend on the image, for parity
    tests) around a bias that puts the box at 0.3..0.7 of the letterbox, the points at a tracking fixed
    point, and the presence logit at `presence_logit` (very negative: never a face). With
    `quality_logit`, the landmark model also outputs a face-quality logit (`make_config(quality=True)`)
    around that value.
    """
    import torch

    from core.models import build_model, make_config

    torch.manual_seed(seed)
    box = build_model("box", make_config("box", input_size=BOX_SIZE, widths=(8, 16), hidden=32)).eval()
    landmarks = build_model("resnet", make_config("resnet", input_size=LANDMARK_SIZE, widths=(8, 16),
                                                  head_channels=8, hidden=32,
                                                  quality=quality_logit is not None)).eval()
    with torch.no_grad():
        last = box.head[-1]
        last.weight.mul_(wiggle)
        last.weight[4].zero_()
        last.bias.copy_(torch.tensor([_logit(0.3), _logit(0.3), _logit(0.7), _logit(0.7), presence_logit]))
        last = landmarks.head[-1]
        last.weight.mul_(wiggle * 0.25)
        bias = list(canonical_points_norm().reshape(-1)) + ([] if quality_logit is None else [quality_logit])
        last.bias.copy_(torch.tensor(bias))
    return box, landmarks


def write_weights(folder: Path, presence_logit: float = 8.0, checkpoints: bool = True,
                  quality_logit: float | None = None, wiggle: float = 0.02) -> Path:
    """A weights folder: box.onnx + landmarks.onnx (+ .pt checkpoints) and a manifest; with
    `quality_logit`, the landmark model also outputs a face-quality logit about that value; `wiggle`
    (`tiny_models`) near 1 makes the points depend strongly on the image."""
    from core.models import make_checkpoint, model_meta, save_checkpoint
    from export.onnx_graph import export_onnx

    folder.mkdir(parents=True, exist_ok=True)
    box, landmarks = tiny_models(presence_logit, wiggle=wiggle, quality_logit=quality_logit)
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


QUALITY_LOGITS = {"quality": 4.0, "lowquality": -4.0}  # sigmoid 0.982 and 0.018


def shared_weights(tmp_path_factory, kind: str = "face") -> Path:
    """Session-wide weights folders: 'face' (always present), 'noface' (presence forced off), 'quality'
    and 'lowquality' (a face, and a landmark model whose quality output is about 0.98 or 0.02)."""
    if kind not in _CACHE:
        folder = tmp_path_factory.mktemp(f"weights-{kind}")
        _CACHE[kind] = write_weights(folder, -30.0 if kind == "noface" else 8.0, checkpoints=kind != "noface",
                                     quality_logit=QUALITY_LOGITS.get(kind))
    return _CACHE[kind]


def write_clip(path: Path, frames: int = 30, width: int = 160, height: int = 120, fps: float = 25.0) -> Path:
    """A small mp4v clip of the synthetic moving face."""
    from tracker.sources.synthetic import SyntheticSource

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




# A drawn face whose four points are coloured dots (RGB): right eye, left eye, nose tip, mouth centre.
FACE_DOT_RGB = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0))


def drawn_face(width: int = 320, height: int = 320, iod: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 BGR image, (4, 2) points px) of an upright face drawn in the middle: a skin-coloured
    oval and the four points as coloured dots (FACE_DOT_RGB), the subject's right eye on the left."""
    cx, cy = width / 2, height / 2
    points = np.array([[cx - iod / 2, cy - 0.3 * iod], [cx + iod / 2, cy - 0.3 * iod], [cx, cy + 0.25 * iod],
                       [cx, cy + 0.75 * iod]], dtype=np.float32)
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.ellipse(image, (round(cx), round(cy + 0.1 * iod)), (round(0.95 * iod), round(1.3 * iod)), 0, 0, 360,
                (150, 170, 205), -1, cv2.LINE_AA)
    for (x, y), rgb in zip(points, FACE_DOT_RGB):
        cv2.circle(image, (round(float(x)), round(float(y))), max(3, round(iod / 10)), rgb[::-1], -1, cv2.LINE_AA)
    return image, points


def rotate_image(image: np.ndarray, points_px: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned counter-clockwise as displayed by `angle_deg` about its centre, on a canvas
    enlarged so no pixel is cut (black corners), and the points through the same map."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    m[0, 2] += (nw - w) / 2
    m[1, 2] += (nh - h) / 2
    out = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    pts = np.asarray(points_px, np.float64) @ m[:, :2].T + m[:, 2]
    return out, pts.astype(np.float32)


def draw_face_at(image: np.ndarray, center_xy: tuple[float, float], iod: float) -> np.ndarray:
    """Draw `drawn_face`'s upright face (skin oval, four coloured dots) centred at `center_xy` into
    `image` (uint8 BGR, in place); returns its (4, 2) float32 points px."""
    cx, cy = center_xy
    points = np.array([[cx - iod / 2, cy - 0.3 * iod], [cx + iod / 2, cy - 0.3 * iod], [cx, cy + 0.25 * iod],
                       [cx, cy + 0.75 * iod]], dtype=np.float32)
    cv2.ellipse(image, (round(cx), round(cy + 0.1 * iod)), (round(0.95 * iod), round(1.3 * iod)), 0, 0, 360,
                (150, 170, 205), -1, cv2.LINE_AA)
    for (x, y), rgb in zip(points, FACE_DOT_RGB):
        cv2.circle(image, (round(float(x)), round(float(y))), max(3, round(iod / 10)), rgb[::-1], -1, cv2.LINE_AA)
    return points


def drawn_faces(width: int, height: int, centers: list[tuple[float, float]], iod: float = 40.0
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """(uint8 BGR image, [(4, 2) points px]) of upright drawn faces (`draw_face_at`) at `centers` on a
    grey background; keep them an eye-mouth crop apart (about 3.5 x `iod`) so no crop sees two."""
    image = np.full((height, width, 3), 90, np.uint8)
    return image, [draw_face_at(image, c, iod) for c in centers]


def find_drawn_faces(image_bgr: np.ndarray, tolerance: float = 0.3) -> list[np.ndarray]:
    """The (4, 2) points px of each drawn face (`draw_face_at`) in an image, left to right: every blob of
    the right eye's colour with the nearest blob of each other point's colour (faces far apart)."""
    rgb01 = image_bgr[..., ::-1].astype(np.float32) / 255.0
    blobs = []
    for rgb in FACE_DOT_RGB:
        mask = (np.linalg.norm(rgb01 - np.array(rgb) / 255.0, axis=2) < tolerance).astype(np.uint8)
        count, _, stats, centroids = cv2.connectedComponentsWithStats(mask)
        blobs.append(np.array([c for c, st in zip(centroids[1:], stats[1:]) if st[cv2.CC_STAT_AREA] >= 4],
                              dtype=np.float32).reshape(-1, 2))
    faces = []
    for eye in blobs[0]:
        others = [b[np.argmin(np.linalg.norm(b - eye, axis=1))] for b in blobs[1:] if len(b)]
        if len(others) == 3:
            faces.append(np.array([eye, *others], dtype=np.float32))
    return sorted(faces, key=lambda pts: float(pts[0, 0]))


class DotFaceDetector:
    """A multi-face detector (`tracker.detect.FaceDetector`) for drawn faces: every face
    `find_drawn_faces` sees, left to right, scoring 0.99, 0.98, ...; its box is the face square of the
    dots scaled by `box_scale` and moved right by `box_shift` of its side (a detector's box that differs
    from the points' face square), with the dots as coarse points when `with_points`. `calls` counts runs."""

    multi_face = True

    def __init__(self, box_scale: float = 1.0, box_shift: float = 0.0, with_points: bool = False,
                 min_score: float = 0.5) -> None:
        self.name, self.backend, self.min_score, self.calls = "fake:dots", None, min_score, 0
        self.box_scale, self.box_shift, self.with_points = box_scale, box_shift, with_points

    def detect(self, image: np.ndarray, timings: dict[str, float]) -> list:
        from core.frame import Detection
        from core.geometry import box_from_square, face_square_from_points

        self.calls += 1
        found = []
        for k, points in enumerate(find_drawn_faces(image)):
            center, side = face_square_from_points(points)
            box = box_from_square(center + [self.box_shift * side, 0.0], side * self.box_scale)
            found.append(Detection(box, 0.99 - 0.01 * k, True, points if self.with_points else None))
        return [d for d in found if d.score >= self.min_score]


class DotDetectorModel:
    """A face-detector "model" (kind "detector", `tracker.detect.GridDetector`'s input and output) for
    drawn faces: on the letterboxed input it finds the faces (`find_drawn_faces`) and writes one row per
    face (score 0.99, 0.98, ... left to right; the face square of the dots; the dots), then zero rows up
    to `rows`. `calls` counts runs."""

    def __init__(self, input_size: int = 320, rows: int = 16) -> None:
        from core.meta import ModelMeta

        # it finds drawn faces of any size: its metadata says so, and the runtime needs no image pyramid
        self.meta = ModelMeta.for_kind("detector", "dot-detector", input_size, pad_multiple=4,
                                       extra={"face_side_px": f"4,{4 * input_size}"})
        self.name, self.rows, self.calls = "fake:dot-detector", rows, 0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        from core.geometry import box_from_square, face_square_from_points

        self.calls += 1
        mean, std = np.asarray(self.meta.mean, np.float32), np.asarray(self.meta.std, np.float32)
        rgb01 = np.clip(batch[0].transpose(1, 2, 0) * std + mean, 0, 1)
        image_bgr = (rgb01[..., ::-1] * 255).round().astype(np.uint8)
        out = np.zeros((1, self.rows, self.meta.output_width), np.float32)
        for k, points in enumerate(find_drawn_faces(image_bgr)[: self.rows]):
            box = box_from_square(*face_square_from_points(points))
            out[0, k] = [0.99 - 0.01 * k, *box, *points.reshape(-1)]
        return out


def dot_centres(image_rgb01: np.ndarray, tolerance: float = 0.3) -> np.ndarray | None:
    """(4, 2) centroids (x, y px) of the FACE_DOT_RGB dots in an HxWx3 RGB image in 0..1, or None when
    one is missing."""
    centres = []
    for rgb in FACE_DOT_RGB:
        near = np.linalg.norm(image_rgb01 - np.array(rgb) / 255.0, axis=2) < tolerance
        ys, xs = np.nonzero(near)
        if len(xs) == 0:
            return None
        centres.append((xs.mean(), ys.mean()))
    return np.array(centres, dtype=np.float32)


class DotReader:
    """A landmark "model" for drawn faces: reads the coloured dots off its input crop, like a model
    trained on upright faces only: it answers right on a face rolled at most `upright_within_deg` in its
    crop (the mouth below the eyes) and with the mean face's points otherwise. Like a model, it tells the
    eyes apart by place, not colour: the one on the crop's left is the right eye (so a mirrored crop
    swaps them). With `quality`, the row ends with a quality logit: +6 when it read the face, -6 when not."""

    def __init__(self, input_size: int = 96, quality: bool = False, upright_within_deg: float = 50.0) -> None:
        from core.meta import ModelMeta

        self.meta = ModelMeta.for_kind("landmarks", "dot-reader", input_size, quality=quality)
        self.name = "fake:dot-reader"
        self.upright_within_deg = upright_within_deg
        self.calls = 0
        self.batch_sizes: list[int] = []  # crops per call

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.batch_sizes.append(len(batch))
        mean = np.asarray(self.meta.mean, np.float32)
        std = np.asarray(self.meta.std, np.float32)
        rows = []
        for x in batch:
            dots = dot_centres(x.transpose(1, 2, 0) * std + mean)
            upright = False
            if dots is not None:
                down = dots[3] - dots[:2].mean(axis=0)  # eyes to mouth
                upright = abs(math.degrees(math.atan2(-down[0], down[1]))) <= self.upright_within_deg
                if dots[0, 0] > dots[1, 0]:
                    dots = dots[[1, 0, 2, 3]]
            points = dots / self.meta.input_size if upright else canonical_points_norm(self.meta.crop_scale)
            row = list(points.reshape(-1)) + ([6.0 if upright else -6.0] if self.meta.quality else [])
            rows.append(row)
        return np.asarray(rows, dtype=np.float32)


def the_face(result):
    """The one face of a FrameResult (`core.frame.FaceResult`); fails the test unless there is exactly one."""
    assert len(result.faces) == 1, [face.id for face in result.faces]
    return result.faces[0]


def one_error_line(result, code: int, *needles: str, only: bool = False) -> str:
    """The single `facetrack: error:` line of a CLI result with exit `code`, containing every needle; with
    `only`, the output holds nothing else."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("facetrack: error:")]
    assert len(errors) == 1, result.output
    if only:
        assert result.output.strip().splitlines() == errors, result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def shared_folder(name: str, env: str) -> Path | None:
    """`../shared/<name>` beside the repository, or the folder $`env` names; None when neither exists."""
    import os

    candidates = [Path(__file__).resolve().parents[2] / "shared" / name]
    if os.environ.get(env):
        candidates.append(Path(os.environ[env]))
    return next((c for c in candidates if c.is_dir()), None)


class LockstepCamera:
    """Makes a live source and a tracker that run in lock-step, so a live run's drops are the same on
    any machine, at any load: the camera makes frame n only once the tracker has started on frame
    n - `ahead` or later, and the tracker starts frame k only once every frame up to k + `ahead` was
    handed over (or the camera ended). Between two processed frames the camera hands over `ahead`
    frames and the newest-frame-only hand-over drops `ahead` - 1 of them. Frames show the synthetic
    moving face; `t_ms` is the camera clock (n * 1000 / fps). No wall-clock time is measured or
    assumed; `guard_s` only turns a deadlock (a bug) into a failure instead of a hang.

    `source()` is the live Source (`numbers`: the frame numbers it handed out, in order;
    `number_of[index]`: a delivered Frame.index's frame number); `tracker(box, landmarks, **kwargs)`
    is a `tracker.pipeline.Tracker` that waits its turn. Only for threaded runs."""

    def __init__(self, frames: int, ahead: int = 5, fps: float = 100.0, width: int = 96, height: int = 64,
                 guard_s: float = 60.0) -> None:
        import threading

        from tracker.sources.synthetic import SyntheticSource

        assert ahead >= 2, "a live source may drop the frame it read at open: ahead 1 could never start"
        self.frames, self.ahead, self.fps, self.guard_s = frames, ahead, fps, guard_s
        self.pictures = SyntheticSource(width, height, fps, frames)
        self.cond = threading.Condition()
        self.asked = 0  # _grab calls so far: frame `asked - 1` was asked for last
        self.started = -1  # the highest frame number the tracker started on
        self.closed = False

    def wait(self, ready, what: str) -> None:
        """Wait (holding `cond`) until `ready()`; AssertionError after `guard_s` (a deadlock, never load)."""
        if not self.cond.wait_for(lambda: ready() or self.closed, self.guard_s):
            raise AssertionError(f"lock-step camera stuck waiting for {what}")

    def source(self):
        """The live Source of this lock-step pair (make it once, before `tracker`)."""
        import time

        from core.frame import Frame
        from tracker.sources import Source

        camera = self

        class _Source(Source):
            kind, live = "lock-step camera", True
            fps = camera.fps
            stall_timeout_s = camera.guard_s  # a read waiting for the tracker is not a stalled camera

            def __init__(self) -> None:
                super().__init__()
                self.numbers: list[int] = []
                self.number_of: dict[int, int] = {}
                self._prime()

            def _grab(self):
                with camera.cond:
                    number = camera.asked
                    camera.asked += 1
                    camera.cond.notify_all()
                    if number >= camera.frames:
                        return None
                    camera.wait(lambda: camera.started >= number - camera.ahead, f"the tracker to reach frame "
                                f"{number - camera.ahead}")
                frame = Frame(camera.pictures.render(number), self._index, time.perf_counter(),
                              number * 1000.0 / camera.fps)
                self.number_of[frame.index] = number
                self._index += 1
                return frame

            def read(self):
                frame = super().read()
                if frame is not None:
                    self.numbers.append(self.number_of[frame.index])
                return frame

            def close(self) -> None:
                with camera.cond:
                    camera.closed = True
                    camera.cond.notify_all()
                super().close()

        self._source = _Source()
        return self._source

    def tracker(self, box, landmarks, **kwargs):
        """A Tracker (`tracker.pipeline.Tracker(box, landmarks, **kwargs)`) that waits its turn."""
        from tracker.pipeline import Tracker

        camera = self

        class _Tracker(Tracker):
            def step(self, frame):
                number = camera._source.number_of[frame.index]
                with camera.cond:
                    camera.started = number
                    camera.cond.notify_all()
                    # frame number + ahead was handed over once the camera is asked for the next one
                    # (the capture thread puts a frame before it reads again); asking for `frames` is the end
                    following = min(number + camera.ahead + 1, camera.frames)
                    camera.wait(lambda: camera.asked > following, f"the camera to be asked for frame {following}")
                return super().step(frame)

        return _Tracker(box, landmarks, **kwargs)


def default_sigint() -> None:
    """`preexec_fn` for a child that a test interrupts with SIGINT: SIGINT at its default, as a terminal's
    Ctrl+C reaches a foreground program. A test run started in the background by a non-interactive shell
    inherits SIGINT as ignored, which Python keeps: the child would never see the test's Ctrl+C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def written_names(folder: Path) -> list[str]:
    """The sorted names of what an output folder holds, without facetrack's output mark (`tracker.outdirs`) and
    its record of finished videos (`tracker.finished.DONE_RECORD`)."""
    from tracker.finished import DONE_RECORD
    from tracker.outdirs import OUTPUT_MARK

    return sorted(p.name for p in Path(folder).iterdir() if p.name not in (OUTPUT_MARK, DONE_RECORD))


DEMO_CLIP = Path(__file__).resolve().parents[1] / "demo" / "demo.mp4"


def demo_frames(count: int) -> list[np.ndarray]:
    """The first `count` frames (uint8 HxWx3 BGR) of the shipped demo clip (a real face the shipped detector
    finds); the test is skipped when the clip gives fewer."""
    import pytest

    capture = cv2.VideoCapture(str(DEMO_CLIP))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    if len(frames) < count:
        pytest.skip(f"{DEMO_CLIP} gives {len(frames)} frames")
    return frames


def write_frames_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """`frames` (uint8 HxWx3 BGR, one size) written to an mp4v clip at `path` with OpenCV; returns `path`."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for image in frames:
        writer.write(image)
    writer.release()
    return path
