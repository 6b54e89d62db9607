"""One crop: training's un-augmented landmark crop against the runtime's crop of the same face box.

Training crops twice: `training.data.cache` warps a patch of about PATCH_MARGIN crop sides around each
face through `core.geometry.crop_affine` (the runtime's warp, with its area pre-shrink for large faces),
then `training.batches.landmark_batch` cuts the model input out of that patch with `grid_sample`. The
runtime crops once: `core.preprocess.landmark_input_from_box`. Both start from the same face square
(`square_from_box(box, LANDMARK_CROP_SCALE)`) and end in the same ImageNet normalisation.

History: until issue 11 the training crop was the runtime crop moved by half a crop pixel right and down
(the cache put the face centre at `patch / 2`, crop_matrix's convention, and `landmark_batch` cropped
around `(patch - 1) / 2`, the pixel-centre convention), and the patch was resampled a second time at a
scale of 0.999. Now the cache draws the patch at the runtime crop's own scale (the face square is
`input_size` patch pixels) with the face centre at `cache.center` = S/2 + whole pixels, and the batch
crops around that same centre: the nominal training crop is a pixel copy of the patch, so it IS the
runtime crop (TRAIN_SHIFT_PX = 0).

Measured at input 128 (mean absolute difference of the de-normalised crops, in 8-bit levels): 0.0 where
neither crop area-averages the face first, up to 1.0 where both do (the generated face below, one of
the three 300-W photos): both pre-shrink by the same whole factor, but over block grids that start at
different corners (the patch covers more than the crop). Moving the runtime crop by half a pixel makes
them differ by 4..7 levels; the points agree to 1e-7.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.geometry import apply_affine, crop_affine
from core.meta import IMAGENET_MEAN, IMAGENET_STD, ModelMeta
from core.preprocess import landmark_input_from_box, normalize
from tests.datagen import face_points68, pts_text
from training.data import load_dataset
from training.tasks import LandmarkTask

SHARED_300W = Path(__file__).resolve().parents[2] / "shared" / "data" / "300w-helen-train"
INPUT_SIZE = 128  # the shipped landmark model's input
TRAIN_SHIFT_PX = 0.0  # training crop = runtime crop moved this far right and down (see the module docstring)
# Pre-shrink noise: at most 1.0 level on the tested faces; 2.5 leaves room for other OpenCV builds and
# stays below the 4..7 of a crop moved by half a pixel.
MAX_MAD_LEVELS = 2.5
POINTS_ATOL = 1e-5  # crop-normalised; they agree to 1e-7


def face_picture(path: Path, width: int = 640, height: int = 480, size: float = 240.0, seed: int = 0) -> Path:
    """A face-like picture with texture: skin, eyes with irises, brows, nose, mouth on a noisy background.

    Writes the PNG and a 300-W `.pts` beside it (the 68 points the drawing follows).
    """
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, size=(height // 8, width // 8, 3), dtype=np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    cx, cy = width / 2 + 13.3, height / 2 - 7.6
    pts = face_points68(cx, cy, size)
    s = size / 2
    cv2.ellipse(image, (round(cx), round(cy + 0.1 * s)), (round(s), round(1.15 * s)), 0, 0, 360, (120, 150, 200), -1)
    skin_texture = rng.normal(0, 12, size=image.shape).astype(np.float32)
    image = np.clip(image.astype(np.float32) + cv2.GaussianBlur(skin_texture, (0, 0), 1.5), 0, 255).astype(np.uint8)
    for k in (36, 42):  # eyes: white, iris, pupil
        eye = pts[k:k + 6].mean(axis=0)
        cv2.ellipse(image, (round(eye[0]), round(eye[1])), (round(0.16 * s), round(0.08 * s)), 0, 0, 360,
                    (235, 235, 235), -1, cv2.LINE_AA)
        cv2.circle(image, (round(eye[0]), round(eye[1])), round(0.06 * s), (60, 90, 40), -1, cv2.LINE_AA)
        cv2.circle(image, (round(eye[0]), round(eye[1])), round(0.025 * s), (10, 10, 10), -1, cv2.LINE_AA)
    for a, b in ((17, 22), (22, 27)):
        cv2.polylines(image, [np.round(pts[a:b]).astype(np.int32)], False, (40, 50, 70), 4, cv2.LINE_AA)
    cv2.polylines(image, [np.round(pts[27:36]).astype(np.int32)], False, (70, 90, 140), 3, cv2.LINE_AA)
    cv2.fillPoly(image, [np.round(pts[48:60]).astype(np.int32)], (70, 60, 170), cv2.LINE_AA)
    cv2.polylines(image, [np.round(pts[60:68]).astype(np.int32)], True, (30, 20, 60), 2, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    path.with_suffix(".pts").write_text(pts_text(pts))
    return path


def _faces(kind: str, folder: Path):
    """FaceSamples of a generated picture or of three shared 300-W photos (linked into `folder`)."""
    if kind == "generated":
        face_picture(folder / "9001_1.png")
    else:
        if not SHARED_300W.is_dir():
            pytest.skip(f"shared data not found: {SHARED_300W}")
        folder.mkdir(parents=True)
        for pts in sorted(SHARED_300W.glob("*.pts"))[:3]:
            for f in (pts, pts.with_suffix(".jpg")):
                (folder / f.name).symlink_to(f)
    samples = load_dataset(folder).samples
    assert samples
    return samples


def _rgb01(x_chw: np.ndarray) -> np.ndarray:
    """ImageNet-normalised 3xSxS back to RGB in 0..1."""
    return x_chw * np.reshape(IMAGENET_STD, (3, 1, 1)) + np.reshape(IMAGENET_MEAN, (3, 1, 1))


def _training_crops(samples, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Un-augmented training inputs (N,3,S,S) and crop-normalised points (N,4,2), as validation makes them."""
    task = LandmarkTask(size)
    cache = task.build_cache(samples, workers=0)
    batch = task.make_batch(cache, np.arange(len(cache)), np.random.default_rng(0), torch.Generator(), False,
                            torch.device("cpu"))
    return batch["x"].numpy(), batch["points"].numpy().reshape(len(samples), -1, 2)


def _runtime_crop(sample, meta: ModelMeta, shift_px: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The runtime's input (3,S,S) for the sample's box and its points (4,2) crop-normalised; optionally
    the same crop moved by `shift_px` crop pixels right and down."""
    image = cv2.imread(sample.image_path)
    x, m = landmark_input_from_box(image, sample.box_xyxy, meta)
    if shift_px:
        m = m.copy()
        m[:, 2] += shift_px
        x = normalize(crop_affine(image, m, meta.input_size), meta)
    return x, apply_affine(sample.points_px, m) / meta.input_size


@pytest.mark.parametrize("kind", ["generated", "photo"])
def test_training_crop_is_the_runtime_crop(tmp_path, kind):
    samples = _faces(kind, tmp_path / kind)
    meta = ModelMeta.for_kind("landmarks", "resnet", INPUT_SIZE)
    train_x, train_pts = _training_crops(samples, INPUT_SIZE)
    for k, sample in enumerate(samples):
        train_img = _rgb01(train_x[k])
        x, pts = _runtime_crop(sample, meta, TRAIN_SHIFT_PX)
        mad = 255 * np.abs(train_img - _rgb01(x)).mean()
        assert mad < MAX_MAD_LEVELS, f"{sample.image_path}: crops differ by {mad:.2f} levels"
        np.testing.assert_allclose(train_pts[k], pts, atol=POINTS_ATOL)
        # ... and the check would see a half-pixel move: the crops then differ by more than the bound
        x_half, pts_half = _runtime_crop(sample, meta, 0.5)
        assert 255 * np.abs(train_img - _rgb01(x_half)).mean() > MAX_MAD_LEVELS
        np.testing.assert_allclose(pts_half - train_pts[k], 0.5 / INPUT_SIZE, atol=2e-5)


def test_generated_face_is_centred_in_both_crops(tmp_path):
    """The picture's face is where its points say: the eyes are the darkest spots near them in both crops."""
    samples = _faces("generated", tmp_path / "g")
    meta = ModelMeta.for_kind("landmarks", "resnet", INPUT_SIZE)
    train_x, train_pts = _training_crops(samples, INPUT_SIZE)
    x, pts = _runtime_crop(samples[0], meta)
    for img, points in ((_rgb01(train_x[0]), train_pts[0]), (_rgb01(x), pts)):
        gray = img.mean(axis=0)
        for eye in points[:2] * INPUT_SIZE:
            ex, ey = np.round(eye).astype(int)
            window = gray[ey - 6:ey + 7, ex - 6:ex + 7]
            dy, dx = np.unravel_index(np.argmin(window), window.shape)
            assert abs(dx - 6) <= 2 and abs(dy - 6) <= 2
