"""`facetrack data inspect` through typer's CliRunner."""

from __future__ import annotations

import json

import cv2
from typer.testing import CliRunner

from facetrack.cli import app
from tests import datagen

runner = CliRunner()


def test_inspect_json_counts(tmp_path):
    root = datagen.make_aflw(tmp_path / "aflw").parent
    result = runner.invoke(app, ["data", "inspect", str(root), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["format"] == "aflw"
    assert info["faces"] == datagen.AFLW_EXPECTED_FACES
    assert info["skipped"] == datagen.AFLW_EXPECTED_SKIPPED
    assert sum(info["splits"].values()) == info["faces"]
    assert set(info["face_size_px"]) == {"p5", "p50", "p95"}


def test_inspect_format_override_and_single_face(tmp_path):
    both = datagen.make_300w(tmp_path)
    datagen.make_dlib_xml(both)
    result = runner.invoke(app, ["data", "inspect", str(both), "--json", "--format", "300w"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["faces"] == datagen.SET_300W_EXPECTED_FACES
    result = runner.invoke(app, ["data", "inspect", str(both), "--json", "--single-face-only"])
    info = json.loads(result.stdout)
    assert info["format"] == "dlib-xml" and info["faces"] == 1 and info["skipped"]["multi_face_image"] == 3


def test_inspect_table_output(tmp_path):
    result = runner.invoke(app, ["data", "inspect", str(datagen.make_ytf_csv(tmp_path)), "--seed", "1"])
    assert result.exit_code == 0, result.output
    for word in ("faces", "nan_value", "train", "val", "test", "p50", "inter-ocular"):
        assert word in result.stdout


def test_inspect_sheet_writes_png(tmp_path):
    sheet = tmp_path / "sheet.png"
    root = datagen.make_dlib_xml(tmp_path / "faces")
    result = runner.invoke(app, ["data", "inspect", str(root), "--json", "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 160 and image.shape[1] >= 4 * 160
    assert json.loads(result.stdout)["sheet"] == str(sheet)


def test_inspect_bad_path_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facetrack: error: ")
    assert "Traceback" not in result.output


def test_inspect_not_a_dataset_exit_2(tmp_path):
    db = datagen.make_aflw(tmp_path, without_table="FaceRect")
    result = runner.invoke(app, ["data", "inspect", str(db)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "FaceRect" in result.stderr and "Traceback" not in result.output


def test_inspect_sheet_in_missing_folder_fails_first(tmp_path):
    root = datagen.make_dlib_xml(tmp_path / "faces")
    result = runner.invoke(app, ["data", "inspect", str(root), "--sheet", str(tmp_path / "no" / "sheet.png")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and result.stdout == ""


def test_data_cmd_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, facetrack.cli.data_cmd; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, "importing the CLI pulled in torch"
