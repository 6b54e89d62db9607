"""`facetrack eval`: the runtime's crops and backends on ground-truth boxes; metrics JSON with every field,
per source group, pictures written, the training split rebuilt, ONNX and torch in agreement, clear errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core.models import make_checkpoint, read_checkpoint, save_checkpoint
from facetrack.cli import app
from tests.datagen import make_300w, make_caltech, make_mtfl, make_ytf_csv
from tests.helpers import shared_weights, write_weights

runner = CliRunner()
LANDMARK_KEYS = {"faces", "nme_mean", "nme_median", "failure_rate", "per_point", "per_group", "passes", "model"}


@pytest.fixture(scope="module")
def wiggly_weights(tmp_path_factory):
    """Tiny models whose points depend strongly on the image: the second pass sees another crop."""
    return write_weights(tmp_path_factory.mktemp("wiggly") / "w", wiggle=8.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-data")
    return {"ytf": make_ytf_csv(root / "ytf"), "300w": make_300w(root / "w300"), "mtfl": make_mtfl(root / "mtfl"),
            "caltech": make_caltech(root / "caltech")}


def _eval(tmp_path, weights, data_paths, *args, name="m.json"):
    out = tmp_path / name
    argv = ["eval", "--weights", str(weights), "--json", str(out), "--device", "cpu"]
    for path in data_paths:
        argv += ["--data", str(path)]
    result = runner.invoke(app, argv + list(args))
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.output


def test_eval_writes_json_sheet_and_ced(face_weights, data, tmp_path):
    report, output = _eval(tmp_path, face_weights, data.values(), "--sheet", str(tmp_path / "s.png"),
                           "--ced", str(tmp_path / "c.png"))
    lm, box = report["landmarks"], report["box"]
    assert LANDMARK_KEYS <= set(lm) and report["backend"] == "onnx" and lm["passes"] == 3
    assert set(lm["per_point"]) == {"right_eye", "left_eye", "nose_tip", "mouth_center"}
    assert set(lm["per_group"]) == {"ytf-csv", "300w", "mtfl/lfw", "mtfl/net", "mtfl/aflw", "caltech"}
    assert lm["per_group"]["mtfl/aflw"]["convention"] == "mtfl" and lm["per_group"]["300w"]["convention"] == "ibug68"
    assert sum(g["faces"] for g in lm["per_group"].values()) == lm["faces"]
    assert "quality_mean" not in lm  # the model gives none
    assert {"images", "iou_mean", "iou_recall", "presence_accuracy"} <= set(box)
    assert lm["faces"] > 0 and 0 <= box["iou_mean"] <= 1 and 0 <= box["presence_accuracy"] <= 1
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "c.png").stat().st_size > 1000
    assert "per source" in output and "mtfl/aflw" in output


def test_onnx_and_torch_agree(wiggly_weights, data, tmp_path):
    paths = [data["ytf"], data["300w"]]
    onnx, _ = _eval(tmp_path, wiggly_weights, paths, "--what", "landmarks", "--backend", "onnx", name="o.json")
    torch_, _ = _eval(tmp_path, wiggly_weights, paths, "--what", "landmarks", "--backend", "torch", name="t.json")
    assert onnx["landmarks"]["faces"] == torch_["landmarks"]["faces"] > 0
    assert onnx["landmarks"]["crops_per_face"] == torch_["landmarks"]["crops_per_face"] > 1.5
    assert abs(onnx["landmarks"]["nme_mean"] - torch_["landmarks"]["nme_mean"]) < 0.05
    for group, row in onnx["landmarks"]["per_group"].items():
        assert abs(row["nme_mean"] - torch_["landmarks"]["per_group"][group]["nme_mean"]) < 0.05


def test_passes_and_flip_test(wiggly_weights, face_weights, data, tmp_path):
    one, _ = _eval(tmp_path, wiggly_weights, [data["ytf"]], "--what", "landmarks", "--passes", "1", name="1.json")
    two, _ = _eval(tmp_path, wiggly_weights, [data["ytf"]], "--what", "landmarks", "--passes", "2", name="2.json")
    three, _ = _eval(tmp_path, wiggly_weights, [data["ytf"]], "--what", "landmarks", name="default.json")
    flip, _ = _eval(tmp_path, wiggly_weights, [data["ytf"]], "--what", "landmarks", "--passes", "2", "--flip-test",
                    name="3.json")
    two, flip, one, three = two["landmarks"], flip["landmarks"], one["landmarks"], three["landmarks"]
    assert three["passes"] == 3 and two["crops_per_face"] <= three["crops_per_face"] <= 3.0  # the default
    assert one["passes"] == 1 and one["crops_per_face"] == 1.0
    assert 1.0 < two["crops_per_face"] <= 2.0 and two["nme_mean"] != one["nme_mean"]
    assert flip["flip_test"] and flip["crops_per_face"] == two["crops_per_face"] + 1
    # a model at its own fixed point: the second crop would be the first, so it is skipped
    fixed, _ = _eval(tmp_path, face_weights, [data["ytf"]], "--what", "landmarks", name="4.json")
    assert fixed["landmarks"]["crops_per_face"] == 1.0
    result = runner.invoke(app, ["eval", "--data", str(data["ytf"]), "--weights", str(wiggly_weights),
                                 "--passes", "4"])
    assert result.exit_code == 2 and "--passes" in result.output


def test_a_quality_model_reports_its_quality(tmp_path_factory, data, tmp_path):
    weights = shared_weights(tmp_path_factory, "lowquality")
    report, output = _eval(tmp_path, weights, [data["ytf"], data["caltech"]], "--what", "landmarks")
    lm = report["landmarks"]
    assert lm["quality"] is True and lm["below_min_quality"] == 1.0 and 0 < lm["quality_mean"] < 0.1
    assert lm["per_group"]["caltech"]["below_min_quality"] == 1.0
    assert lm["crops_per_face"] >= 4  # low quality: the turned crops were tried
    assert "quality" in output


def test_split_follows_the_training_run(tmp_path_factory, data, tmp_path):
    weights = write_weights(tmp_path_factory.mktemp("trained") / "w")
    path = weights / "landmarks-resnet.pt"
    ckpt = read_checkpoint(path)
    ckpt["train_config"] = {"seed": 3, "split_lookalikes": True, "data": [str(data["ytf"])]}
    save_checkpoint(path, ckpt)
    report, output = _eval(tmp_path, weights, [data["ytf"]], "--split", "test", "--what", "landmarks")
    assert report["seed"] == 3 and report["split_lookalikes"] is True
    assert "look-alike copies merged" in output and "note:" not in output
    report, output = _eval(tmp_path, weights, [data["ytf"], data["300w"]], "--split", "test", "--seed", "0",
                           "--what", "landmarks", name="n.json")
    assert report["seed"] == 0 and "note: the model was trained on ytf" in output


def test_old_checkpoints_give_todays_split(face_weights, data, tmp_path):
    assert "train_config" not in read_checkpoint(face_weights / "landmarks-resnet.pt")
    report, _ = _eval(tmp_path, face_weights, [data["ytf"]], "--split", "test", "--what", "landmarks")
    assert report["seed"] == 0 and report["split_lookalikes"] is False
    everything, _ = _eval(tmp_path, face_weights, [data["ytf"]], "--what", "landmarks", name="a.json")
    assert everything["landmarks"]["faces"] > report["landmarks"]["faces"] > 0


def test_eval_errors(face_weights, data, tmp_path):
    ytf = str(data["ytf"])
    for args, needle in ([["--split", "bogus"], "unknown split"], [["--what", "nose"], "--what"],
                         [["--json", str(tmp_path / "no" / "x.json")], "does not exist"],
                         [["--landmark-model", "nalbert"], "not in the weights manifest"]):
        result = runner.invoke(app, ["eval", "--data", ytf, "--weights", str(face_weights), *args])
        assert result.exit_code == 2 and needle in result.output, result.output
    result = runner.invoke(app, ["eval", "--data", ytf, "--weights", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "weights folder not found" in result.output
    for args, needle in ([["--precision", "int8"], "the weights have no int8 ONNX graph"],
                         [["--precision", "fp16", "--backend", "torch"], "--backend torch runs the checkpoints"]):
        result = runner.invoke(app, ["eval", "--data", ytf, "--weights", str(face_weights), "--what", "landmarks",
                                     *args])
        assert result.exit_code == 2 and needle in result.output, result.output


def test_eval_scores_the_graph_the_tracker_runs(face_weights, data, tmp_path):
    """--precision auto on the CPU: the int8 graph where the manifest's export record says it fits, as
    `facetrack video` runs it; --precision fp32 the fp32 graph."""
    import shutil

    import numpy as np

    from core.manifest import read_manifest, write_manifest
    from export.int8 import write_int8
    from export.verify import load_onnx_meta

    folder = Path(shutil.copytree(face_weights, tmp_path / "w"))
    manifest = read_manifest(folder)
    fp32 = folder / manifest["onnx"]["resnet"]
    meta = load_onnx_meta(fp32)
    calib = np.random.default_rng(0).uniform(-2, 2, (8, 3, meta.input_size, meta.input_size)).astype(np.float32)
    write_int8(fp32, folder / "landmarks.int8.onnx", meta, calib)
    manifest["onnx_int8"] = {"resnet": "landmarks.int8.onnx"}
    manifest["int8_checks"] = {"resnet": {"accuracy_cost": 0.0, "unit": "NME points", "cpu_ms": 1.0,
                                          "fp32_cpu_ms": 2.0}}
    write_manifest(folder, manifest)
    auto, output = _eval(tmp_path, folder, [data["ytf"]], "--what", "landmarks", name="a.json")
    assert auto["landmarks"]["file"] == "landmarks.int8.onnx" and "landmarks.int8.onnx" in output
    fp32_report, _ = _eval(tmp_path, folder, [data["ytf"]], "--what", "landmarks", "--precision", "fp32",
                           name="f.json")
    assert fp32_report["landmarks"]["file"] == fp32.name


def test_checkpoints_only_weights_work_with_the_torch_backend(tmp_path, data):
    import torch

    from core.manifest import write_manifest
    from core.models import build_model, make_config

    torch.manual_seed(0)
    folder = tmp_path / "w"
    folder.mkdir()
    for name, file in (("resnet", "lm.pt"), ("box", "box.pt")):
        model = build_model(name, make_config(name, input_size=64))
        save_checkpoint(folder / file, make_checkpoint(name, model, half=True))
    write_manifest(folder, {"default_landmarks": "resnet", "checkpoints": {"resnet": "lm.pt", "box": "box.pt"},
                            "onnx": {}})
    report, _ = _eval(tmp_path, folder, [data["300w"]], "--backend", "torch")
    assert report["landmarks"]["faces"] == 4 and report["box"]["images"] == 4
    result = runner.invoke(app, ["eval", "--data", str(data["300w"]), "--weights", str(folder)])
    assert result.exit_code == 2 and "no onnx file" in result.output


def test_points_move_into_each_sets_convention_by_the_learned_offsets():
    from facetrack.evaluate import LandmarkRun, in_own_conventions
    from training.data.samples import FaceSample

    points = np.array([[[10, 10], [30, 10], [20, 20], [20, 30]]] * 2, dtype=np.float32)  # level, iod 20 px
    samples = [FaceSample(f"{k}.jpg", points[k], np.array([0, 0, 40, 40], np.float32), str(k), src, (64, 64),
                          convention=conv) for k, (src, conv) in enumerate([("ytf-csv", "ibug68"),
                                                                            ("caltech", "caltech")])]
    run = LandmarkRun(samples, points.copy(), np.full(2, np.nan), [None, None], np.ones(2))
    offsets = {"ibug68": np.zeros((4, 2)), "caltech": np.array([[0, 0], [0, 0], [0, 0.2], [0.05, 0]])}
    moved = in_own_conventions(run, offsets)
    assert np.array_equal(moved.points_px[0], points[0])  # the 68-point face is left alone
    # Caltech's nose 0.2 inter-ocular distances (4 px) further down, its mouth 1 px towards the left eye
    assert np.allclose(moved.points_px[1] - points[1], [[0, 0], [0, 0], [0, 4], [1, 0]], atol=1e-5)
    assert np.array_equal(run.points_px, points)  # the run itself is not changed


def test_eval_detector_reports_ap_recall_by_source_size_and_threshold(face_weights, data, tmp_path):
    """`--what detector` through the runtime's detector path (here the course project's regressor, which
    finds one face a photo): AP and recall per source and size, composed photos, no-face frames for the
    detector and for the whole tool, recall by threshold, and a sheet of the faces it missed."""
    sheet = tmp_path / "missed.png"
    report, output = _eval(tmp_path, face_weights, [data["ytf"], data["caltech"]], "--what", "detector",
                           "--detector", "regressor", "--sheet", str(sheet))
    det = report["detector"]
    assert det["detector"] == "regressor" and det["threshold"] == 0.95
    photos = det["photos"]
    assert {"all", "ytf-csv", "caltech", "size:small", "size:medium", "size:large"} <= set(photos)
    assert photos["all"]["faces"] == photos["ytf-csv"]["faces"] + photos["caltech"]["faces"]
    assert 0.0 <= photos["all"]["ap50"] <= 1.0 and 0.0 <= photos["all"]["recall"] <= 1.0
    # Caltech's photos hold several faces: one box a photo cannot find them all
    assert photos["caltech"]["recall"] < 1.0
    for key in ("no_face_frames", "no_face_frames_with_decoys"):
        assert set(det[key]) == {"frames", "false_rate", "tool_false_rate"}
    thresholds = [row["min_score"] for row in det["by_threshold"]]
    assert thresholds == sorted(thresholds)
    recalls = [row["recall"] for row in det["by_threshold"]]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold never finds more
    assert sheet.stat().st_size > 1000 and "AP@0.5" in output


def test_a_training_checkpoint_is_scored_with_torch(face_weights, data, tmp_path):
    """`--weights RUN` (a training run folder) or a checkpoint file: its landmark model, run with torch,
    scores as the same model in a weights folder does."""
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(face_weights / "landmarks-resnet.pt", run / "best.pt")
    listed, _ = _eval(tmp_path, face_weights, [data["ytf"]], "--what", "landmarks", "--backend", "torch",
                      name="listed.json")
    for given in (run, run / "best.pt"):
        trained, output = _eval(tmp_path, given, [data["ytf"]], "--what", "landmarks", name="trained.json")
        lm = trained["landmarks"]
        assert lm["backend"] == "torch" and lm["file"] == "best.pt" and lm["checkpoint"] == str(run / "best.pt")
        assert trained["landmarks"]["nme_mean"] == pytest.approx(listed["landmarks"]["nme_mean"], abs=1e-4)
        assert "a training checkpoint (resnet), run with torch" in output
    shutil.copy(face_weights / "box.pt", tmp_path / "box.pt")
    for args, needle in (([str(tmp_path / "box.pt"), "--what", "landmarks"], "a box model's checkpoint"),
                         ([str(run), "--what", "detector"], "a training checkpoint is scored with --what landmarks"),
                         ([str(run), "--landmark-model", "resnet"], "is a model already"),
                         ([str(run), "--precision", "int8"], "a training checkpoint runs with torch in fp32")):
        result = runner.invoke(app, ["eval", "--data", str(data["ytf"]), "--weights", *args])
        assert result.exit_code == 2 and needle in result.output, result.output


def test_a_precision_some_model_lacks_is_refused_before_any_work(face_weights, data, tmp_path):
    """eval runs the landmark and box models (or the detector and landmarks): a --precision one of them lacks
    is one line before any face is scored, its advice fit for all of them."""
    out = tmp_path / "never.json"
    for what in ("both", "landmarks", "detector"):
        result = runner.invoke(app, ["eval", "--data", str(data["ytf"]), "--weights", str(face_weights), "--what",
                                     what, "--precision", "fp16", "--json", str(out)])
        assert result.exit_code == 2 and "no fp16 ONNX graph" in result.output, result.output
        assert "landmarks (" not in result.output and not out.exists()
