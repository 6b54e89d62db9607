"""`facetrack eval`: metrics JSON with every field, pictures written, clear errors."""

import json

import torch
from typer.testing import CliRunner

from core.manifest import write_manifest
from core.models import build_model, make_checkpoint, make_config, save_checkpoint
from facetrack.cli import app
from tests.datagen import make_300w, make_ytf_csv

runner = CliRunner()


def _weights(folder):
    torch.manual_seed(0)
    folder.mkdir()
    lm = build_model("resnet", make_config("resnet", input_size=64))
    box = build_model("box", make_config("box", input_size=64))
    save_checkpoint(folder / "landmarks-resnet.pt", make_checkpoint("resnet", lm, half=True))
    save_checkpoint(folder / "box.pt", make_checkpoint("box", box, half=True))
    write_manifest(folder, {"default_landmarks": "resnet",
                            "checkpoints": {"resnet": "landmarks-resnet.pt", "box": "box.pt"}, "onnx": {}})
    return folder


def test_eval_writes_json_sheet_and_ced(tmp_path):
    weights = _weights(tmp_path / "w")
    ytf, w300 = make_ytf_csv(tmp_path / "ytf"), make_300w(tmp_path / "w300")
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["eval", "--data", str(ytf), "--data", str(w300), "--weights", str(weights),
                                 "--json", str(out), "--sheet", str(tmp_path / "s.png"), "--ced",
                                 str(tmp_path / "c.png"), "--flip-test"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    lm, box = report["landmarks"], report["box"]
    assert {"faces", "nme_mean", "nme_median", "failure_rate", "per_point"} <= set(lm)
    assert set(lm["per_point"]) == {"right_eye", "left_eye", "nose_tip", "mouth_center"}
    assert {"images", "iou_mean", "iou_recall", "presence_accuracy"} <= set(box)
    assert lm["faces"] > 0 and 0 <= box["iou_mean"] <= 1 and 0 <= box["presence_accuracy"] <= 1
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "c.png").stat().st_size > 1000


def test_eval_split_and_errors(tmp_path):
    weights = _weights(tmp_path / "w")
    ytf = make_ytf_csv(tmp_path / "ytf")
    result = runner.invoke(app, ["eval", "--data", str(ytf), "--weights", str(weights), "--split", "test",
                                 "--what", "landmarks", "--json", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    faces_test = json.loads((tmp_path / "t.json").read_text())["landmarks"]["faces"]
    result = runner.invoke(app, ["eval", "--data", str(ytf), "--weights", str(weights), "--what", "landmarks",
                                 "--json", str(tmp_path / "a.json")])
    assert json.loads((tmp_path / "a.json").read_text())["landmarks"]["faces"] > faces_test
    for args, needle in ([["--split", "bogus"], "unknown split"], [["--what", "nose"], "--what"],
                         [["--json", str(tmp_path / "no" / "x.json")], "does not exist"]):
        result = runner.invoke(app, ["eval", "--data", str(ytf), "--weights", str(weights), *args])
        assert result.exit_code == 2 and needle in result.output, result.output
    result = runner.invoke(app, ["eval", "--data", str(ytf), "--weights", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "weights folder not found" in result.output
