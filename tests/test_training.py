"""Training pieces: crops through grid_sample match cv2, flips swap eyes, lr schedule, a dry run, resume."""

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from core.geometry import apply_affine, crop_affine, crop_matrix
from facetrack.cli import app
from tests.datagen import make_300w, make_ytf_csv
from training.augment import affine_theta, flip_points, landmark_crop_params, warp_batch
from training.evaluate import predict_points
from training.train import TrainConfig, get_lr, train

runner = CliRunner()


def test_grid_sample_crop_matches_cv2_warp():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(90, 120, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (7, 7), 2)  # smooth, so interpolation differences stay small
    m = crop_matrix(np.array([60.0, 40.0]), 50.0, 32, angle_deg=17, flip=True)
    ref = crop_affine(image, m, 32).astype(np.float32) / 255
    out = warp_batch(torch.from_numpy(image[None]), [m], 32)[0].permute(1, 2, 0).numpy()
    inner = (slice(4, 28), slice(4, 28))
    assert np.abs(out[inner] - ref[inner]).max() < 0.02


def test_affine_theta_identity():
    theta = affine_theta(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (16, 16), 16)
    assert np.allclose(theta, [[1, 0, 0], [0, 1, 0]])


def test_flip_crop_swaps_eyes_and_keeps_subjects_right_eye_on_image_left():
    rng = np.random.default_rng(3)
    points = np.array([[40.0, 50.0], [60.0, 50.0], [50.0, 60.0], [50.0, 70.0]], dtype=np.float32)
    for _ in range(50):
        m, flipped = landmark_crop_params(rng, np.array([50.0, 55.0]), 60.0, 64, train=True)
        crop_points = apply_affine(points, m)
        if flipped:
            crop_points = flip_points(crop_points)
        assert crop_points[0, 0] < crop_points[1, 0]  # rotation is limited to +-35 degrees


def test_get_lr_warms_up_then_decays():
    lrs = [get_lr(1e-3, p) for p in np.linspace(0, 1, 101)]
    assert lrs[0] < lrs[3] and max(lrs) == pytest.approx(1e-3, rel=1e-3)
    assert lrs[-1] == pytest.approx(2e-5, rel=1e-2)
    assert all(a >= b - 1e-12 for a, b in zip(lrs[4:], lrs[5:]))


def test_flip_test_of_a_mirror_symmetric_model_is_exact():
    class Centre(torch.nn.Module):
        def forward(self, x):  # points at fixed symmetric places
            b = len(x)
            pts = torch.tensor([[0.3, 0.4], [0.7 - 1 / 32, 0.4], [0.5 - 0.5 / 32, 0.6], [0.5 - 0.5 / 32, 0.8]])
            return pts.reshape(1, 8).repeat(b, 1)

    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(predict_points(Centre(), x, flip_test=True), Centre()(x), atol=1e-6)


@pytest.fixture()
def tiny_sets(tmp_path):
    return [make_ytf_csv(tmp_path / "ytf"), make_300w(tmp_path / "w300")]


@pytest.mark.parametrize("task,model", [("landmarks", "nalbert"), ("landmarks", "net"), ("box", "box")])
def test_dry_run_trains_and_writes_run_folder(tmp_path, tiny_sets, task, model):
    cfg = TrainConfig(task=task, model=model, data=tuple(map(str, tiny_sets)), epochs=1, batch_size=4,
                      input_size=64, out=str(tmp_path / "run"), dry_run=True, workers=0)
    summary = train(cfg, log=lambda *_: None)
    run = tmp_path / "run"
    assert summary["epochs_done"] == 1
    for name in ("last.pt", "best.pt", "metrics.jsonl", "curves.png", "config.json", "summary.json"):
        assert (run / name).is_file(), name
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"epoch", "train_loss", "val_loss", "lr", "seconds"} <= set(row)
    assert ("val_nme" in row) if task == "landmarks" else ("iou_mean" in row and "presence_accuracy" in row)


def test_resume_continues_from_last_epoch(tmp_path, tiny_sets):
    base = dict(task="landmarks", model="resnet", data=tuple(map(str, tiny_sets)), batch_size=8, input_size=48,
                out=str(tmp_path / "run"), workers=0, loss="wing")
    train(TrainConfig(epochs=1, **base), log=lambda *_: None)
    logs = []
    summary = train(TrainConfig(epochs=2, resume=True, **base), log=logs.append)
    assert any("resumed" in line and "epoch 1" in line for line in logs)
    assert summary["epochs_done"] == 2
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


def test_train_cli_bad_model_and_bad_data(tmp_path, tiny_sets):
    result = runner.invoke(app, ["train", "landmarks", "--data", str(tiny_sets[0]), "--model", "box",
                                 "--out", str(tmp_path / "r"), "--dry-run"])
    assert result.exit_code == 2 and "not a landmarks model" in result.output
    result = runner.invoke(app, ["train", "box", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_train_cli_dry_run_then_plot(tmp_path, tiny_sets):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "landmarks", "--data", str(tiny_sets[0]), "--data", str(tiny_sets[1]),
                                 "--model", "nalbert", "--input-size", "64", "--batch-size", "4", "--out",
                                 str(out), "--dry-run", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "epoch 1/50" in result.output
    result = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0 and (tmp_path / "c.png").stat().st_size > 1000
