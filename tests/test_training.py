"""Training pieces: crops through grid_sample match cv2, flips swap eyes at any roll, lr schedule, dry runs (no
checkpoint files), one epoch on mixed conventions with the quality head, --time-budget within an epoch,
resume, negatives training only the quality logit."""

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from core.errors import InputError
from core.geometry import apply_affine, crop_affine, crop_matrix
from core.metrics import quality_metrics
from core.models import build_model, load_model, make_config, points_layer
from facetrack.cli import app
from tests.datagen import make_300w, make_caltech, make_mtfl, make_ytf_csv
from training.augment import affine_theta, flip_points, landmark_crop_params, warp_batch
from training.data.samples import CONVENTIONS
from training.evaluate import predict_points
from training.tasks import QUALITY_WEIGHT, LandmarkTask
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


def _mouth_side(points: np.ndarray) -> float:
    """The mouth's coordinate along the face frame's y axis (the eye line turned +90 degrees, y down):
    positive for a face whose labels keep the subject's right eye on the right at any roll."""
    x = points[1] - points[0]
    y = np.array([-x[1], x[0]])
    return float((points[3] - (points[0] + points[1]) / 2) @ y)


def test_flip_crop_swaps_eyes_at_any_roll():
    rng = np.random.default_rng(3)
    points = np.array([[40.0, 50.0], [60.0, 50.0], [50.0, 60.0], [50.0, 70.0]], dtype=np.float32)
    angles, flips = [], 0
    for _ in range(200):
        m, flipped = landmark_crop_params(rng, np.array([50.0, 55.0]), 60.0, 64, train=True)
        crop_points = apply_affine(points, m)
        if flipped:
            # a mirror image without the eye swap is a face seen from behind: the mouth on the other side
            assert _mouth_side(crop_points) < 0
            crop_points = flip_points(crop_points)
        flips += flipped
        assert _mouth_side(crop_points) > 0
        eye_line = crop_points[1] - crop_points[0]
        angles.append(abs(np.degrees(np.arctan2(eye_line[1], eye_line[0]))))
    angles = np.array(angles)
    # roll: about 70 % near level (N(0, 12) clipped to 35 degrees), the rest anywhere
    assert 0.6 < (angles <= 35.01).mean() < 0.9 and (angles > 90).mean() > 0.08
    assert 60 < flips < 140


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


@pytest.mark.parametrize("task,model", [("landmarks", "nalbert"), ("landmarks", "net"), ("landmarks", "resnet-simcc"),
                                        ("box", "box"), ("detector", "centernet")])
def test_dry_run_trains_and_writes_run_folder(tmp_path, tiny_sets, task, model):
    cfg = TrainConfig(task=task, model=model, data=tuple(map(str, tiny_sets)), epochs=1, batch_size=4,
                      input_size=64, out=str(tmp_path / "run"), dry_run=True, workers=0)
    logs = []
    summary = train(cfg, log=logs.append)
    run = tmp_path / "run"
    assert summary["epochs_done"] == 1
    for name in ("metrics.jsonl", "curves.png", "config.json", "summary.json"):
        assert (run / name).is_file(), name
    # the checkpoints are built and read back in memory, never written (a real one is tens of MB)
    assert not (run / "last.pt").exists() and not (run / "best.pt").exists()
    assert not list(run.glob("*.tmp")) and any("checked in memory, not written" in line for line in logs)
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"epoch", "train_loss", "val_loss", "lr", "seconds"} <= set(row)
    expected = {"landmarks": {"val_nme"}, "box": {"iou_mean", "presence_accuracy"},
                "detector": {"ap50", "recall", "false_per_image", "false_on_empty"}}[task]
    assert expected <= set(row)


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


def test_time_budget_ends_an_epoch_midway(tmp_path, tiny_sets, monkeypatch):
    import training.train as train_module

    class Clock:  # every reading one second later: the 10 s budget runs out a few steps into the epoch
        now = 0.0

        def time(self) -> float:
            self.now += 1.0
            return self.now

    monkeypatch.setattr(train_module, "time", Clock())
    logs = []
    cfg = TrainConfig(task="landmarks", model="resnet", data=(str(tiny_sets[0]),), epochs=3, batch_size=2,
                      input_size=48, out=str(tmp_path / "run"), workers=0, time_budget_min=10 / 60,
                      split_lookalikes=False)
    summary = train(cfg, log=logs.append)
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary["epochs_done"] == 1 and len(rows) == 1
    assert 1 <= rows[0]["steps"] < rows[0]["steps_planned"], rows[0]
    assert any(f"--time-budget reached after {rows[0]['steps']} of {rows[0]['steps_planned']} steps" in line
               for line in logs)


def test_train_cli_dry_run_then_plot(tmp_path, tiny_sets):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "landmarks", "--data", str(tiny_sets[0]), "--data", str(tiny_sets[1]),
                                 "--model", "nalbert", "--input-size", "64", "--batch-size", "4", "--out",
                                 str(out), "--dry-run", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "epoch 1/50" in result.output
    result = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0 and (tmp_path / "c.png").stat().st_size > 1000


def test_one_epoch_on_mixed_conventions_with_quality(tmp_path):
    sets = [make_ytf_csv(tmp_path / "ytf"), make_mtfl(tmp_path / "mtfl"), make_caltech(tmp_path / "caltech")]
    logs = []
    cfg = TrainConfig(task="landmarks", model="resnet", data=tuple(map(str, sets)), epochs=1, batch_size=8,
                      input_size=48, out=str(tmp_path / "run"), workers=0, quality=True)  # not a dry run: writes .pt
    summary = train(cfg, log=logs.append)
    run = tmp_path / "run"
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    groups = row["val_nme_by_group"]
    assert groups and set(groups) <= {"ytf-csv", "mtfl/lfw", "mtfl/net", "mtfl/aflw", "caltech"}
    assert all(np.isfinite(v) for v in groups.values())
    assert 0 <= row["val_quality_accuracy"] <= 1 and 0 <= row["val_quality_auc"] <= 1
    assert any("learned convention offsets" in line for line in logs)
    assert any("look-alike" in line for line in logs)
    for name in ("best.pt", "last.pt"):
        model, ckpt = load_model(run / name, expect_kind="landmarks")
        assert model(torch.zeros(2, 3, 48, 48)).shape == (2, 9)
        assert ckpt["meta"]["quality"] is True
        assert ckpt["train_config"]["quality"] is True and ckpt["train_config"]["split_lookalikes"] is True
        offsets = ckpt["convention_offsets"]
        assert set(offsets) == set(CONVENTIONS) and offsets["ibug68"] == [[0.0, 0.0]] * 4
        assert np.abs(np.array(offsets["mtfl"])).sum() > 0  # one Adam step moved them
    assert summary["convention_offsets"] == ckpt["convention_offsets"]
    config = json.loads((run / "config.json").read_text())
    assert config["quality"] is True and config["split_lookalikes"] is True


def test_negatives_train_quality_only():
    task = LandmarkTask(32, quality=True)
    model = build_model("resnet", make_config("resnet", input_size=32, quality=True)).eval()
    trainer = task.train_module(model)
    x = torch.randn(4, 3, 32, 32)
    batch = {"x": x, "points": torch.rand(4, 8), "face": torch.tensor([1.0, 0.0, 1.0, 0.0]),
             "convention": torch.zeros(4, dtype=torch.long), "flipped": torch.zeros(4, dtype=torch.bool),
             "box": torch.rand(4, 4)}
    loss, out = task.loss(trainer, batch)
    assert out.shape == (4, 9)
    moved = dict(batch, points=batch["points"].clone())
    moved["points"][[1, 3]] += 100.0  # a negative's points: not trained on
    assert task.loss(trainer, moved)[0].item() == pytest.approx(loss.item(), rel=1e-6)
    points = out[:, :8].detach()
    expected = F.mse_loss(points[[0, 2]], batch["points"][[0, 2]]) + \
        QUALITY_WEIGHT * F.binary_cross_entropy_with_logits(out[:, 8].detach(), batch["face"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # all negatives: no point loss at all, and still a gradient for the quality logit
    none = dict(batch, face=torch.zeros(4))
    loss, out = task.loss(trainer, none)
    assert loss.item() == pytest.approx(
        QUALITY_WEIGHT * F.binary_cross_entropy_with_logits(out[:, 8].detach(), torch.zeros(4)).item(), rel=1e-5)
    loss.backward()
    assert points_layer(model).bias.grad[8] != 0 and points_layer(model).bias.grad[:8].abs().max() == 0


def test_quality_metrics_accuracy_and_auc():
    m = quality_metrics(np.array([2.0, 1.0, -1.0, 0.5, -3.0]), np.array([1, 1, 0, 0, 0]))
    assert m["quality_accuracy"] == pytest.approx(0.8)  # 0.5 -> p 0.62, called a face
    assert m["quality_auc"] == pytest.approx(1.0)
    m = quality_metrics(np.array([0.0, 0.0, 1.0, -1.0]), np.array([1, 0, 0, 1]))
    # pairs (face, negative): (0, 0) a tie counts half, (0, 1), (-1, 0), (-1, 1) the negative above: 0
    assert m["quality_auc"] == pytest.approx(0.5 / 4)


def test_training_resolves_devices_as_the_runtime_does():
    from core.errors import InputError
    from training.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="--device tpu: expected one of auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(InputError, match="no usable CUDA GPU"):
            resolve_device("cuda")


def test_course_recipe_trains_with_adam_at_a_constant_lr_on_plain_crops(tmp_path, tiny_sets):
    cfg = TrainConfig(task="landmarks", model="nalbert", data=tuple(map(str, tiny_sets)), epochs=2, batch_size=8,
                      input_size=64, out=str(tmp_path / "run"), workers=0, recipe="course", max_samples=16)
    train(cfg, log=lambda *_: None)
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == [1e-3, 1e-3]  # no warm-up, no decay
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(g["weight_decay"] == 0.0 for g in state["optimizer"]["param_groups"])
    with pytest.raises(InputError, match="course recipe"):
        train(TrainConfig(**{**cfg.__dict__, "quality": True}), log=lambda *_: None)
    with pytest.raises(InputError, match="unknown recipe"):
        train(TrainConfig(**{**cfg.__dict__, "recipe": "vintage"}), log=lambda *_: None)


def test_checkpoints_and_shipped_weights_name_the_data_they_were_trained_on(tmp_path, tiny_sets):
    from core.meta import data_terms
    from training.ship import ship_checkpoint

    mtfl = make_mtfl(tmp_path / "mtfl")
    cfg = TrainConfig(task="landmarks", model="resnet", data=(*map(str, tiny_sets), str(mtfl)), epochs=1,
                      batch_size=4, input_size=48, out=str(tmp_path / "run"), max_samples=8, workers=0)
    train(cfg, log=lambda *_: None)
    meta = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["meta"]
    assert meta["data_terms"] == ("trained on YouTube-Faces keypoints, 300-W HELEN and MTFL: non-commercial "
                                  "research use only")
    shipped = ship_checkpoint(tmp_path / "run" / "best.pt", tmp_path / "weights")
    assert torch.load(shipped, weights_only=True)["meta"]["data_terms"] == meta["data_terms"]
    assert data_terms([]).startswith("trained on YouTube-Faces keypoints and 300-W HELEN")
    assert data_terms(["caltech", "caltech", "mystery"]) == ("trained on Caltech 10k WebFaces and mystery: "
                                                             "non-commercial research use only")


def test_a_fresh_run_in_a_used_folder_starts_its_log_again_and_init_from_checks_the_kind(tmp_path, tiny_sets):
    base = dict(task="landmarks", model="resnet", data=tuple(map(str, tiny_sets)), epochs=1, batch_size=4,
                input_size=48, out=str(tmp_path / "run"), max_samples=8, workers=0)
    train(TrainConfig(**base), log=lambda *_: None)
    logs = []
    train(TrainConfig(**base), log=logs.append)
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1] and any("replacing its metrics.jsonl" in line for line in logs)
    box = dict(base, task="box", model="box", out=str(tmp_path / "box"))
    train(TrainConfig(**box), log=lambda *_: None)
    with pytest.raises(InputError, match="holds a box model"):
        train(TrainConfig(**dict(base, init_from=str(tmp_path / "box" / "best.pt"), out=str(tmp_path / "r2"))),
              log=lambda *_: None)
    logs = []
    train(TrainConfig(**dict(base, resume=True, epochs=2, init_from=str(tmp_path / "box" / "best.pt"))),
          log=logs.append)
    assert any("--init-from" in line and "ignored" in line for line in logs)


def test_source_weights_show_a_source_more_often_in_an_epoch():
    from training.distributed import Dist, weighted_items
    from training.train import epoch_items, item_weights

    items = weighted_items(np.array([2.0, 1.0, 0.0, 0.5] * 500), np.random.default_rng(0))
    counts = np.bincount(items % 4, minlength=4) / 500  # item i of each block of four, on average
    assert counts[0] == 2.0 and counts[1] == 1.0 and counts[2] == 0.0 and 0.4 < counts[3] < 0.6

    class Cache:  # what a landmark cache gives the weighting: its items' sources
        groups = np.array(["ytf-csv", "mtfl/lfw", "ytf-csv", "caltech"])

        def __len__(self):
            return 4

    weights = item_weights(Cache(), {"ytf-csv": 3, "caltech": 0})
    assert weights.tolist() == [3.0, 1.0, 3.0, 0.0] and epoch_items(Cache(), weights) == 7
    assert item_weights(Cache(), {}) is None and epoch_items(Cache(), None) == 4
    order = Dist().epoch_order(4, np.random.default_rng(1), weights)
    assert sorted(order.tolist()) == [0, 0, 0, 1, 2, 2, 2]
    assert sorted(Dist().epoch_order(4, np.random.default_rng(1)).tolist()) == [0, 1, 2, 3]
    with pytest.raises(InputError, match="no training faces from 300w; the sources are caltech, mtfl/lfw, ytf-csv"):
        item_weights(Cache(), {"300w": 2})
    with pytest.raises(InputError, match=">= 0"):
        item_weights(Cache(), {"caltech": -1})
    with pytest.raises(InputError, match="finite"):
        item_weights(Cache(), {"caltech": float("inf")})
    with pytest.raises(InputError, match="every training face is weighted 0"):
        item_weights(Cache(), {"ytf-csv": 0, "mtfl/lfw": 0, "caltech": 0})


def test_train_cli_source_weight(tmp_path, tiny_sets):
    from facetrack.cli.train_cmd import parse_source_weights

    assert parse_source_weights(["ytf-csv=2", "mtfl/lfw=0.5"]) == {"ytf-csv": 2.0, "mtfl/lfw": 0.5}
    for bad in ("ytf-csv", "ytf-csv=x", "=2", "ytf-csv=-1", "ytf-csv=inf", "ytf-csv=1e12", "ytf-csv=nan"):
        result = runner.invoke(app, ["train", "landmarks", "--data", str(tiny_sets[0]), "--source-weight", bad,
                                     "--out", str(tmp_path / "r"), "--dry-run"])
        assert result.exit_code == 2 and "expected SOURCE=W" in result.output and "Traceback" not in result.output
    out = tmp_path / "weighted"
    result = runner.invoke(app, ["train", "landmarks", "--data", str(tiny_sets[0]), "--source-weight", "ytf-csv=2",
                                 "--input-size", "48", "--batch-size", "4", "--epochs", "1", "--workers", "0",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["source_weights"] == {"ytf-csv": 2.0}
    _, ckpt = load_model(out / "best.pt", expect_kind="landmarks")
    assert ckpt["train_config"]["source_weights"] == {"ytf-csv": 2.0}
