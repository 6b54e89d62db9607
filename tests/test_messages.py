"""What the command says: usage errors as one line with exit 2 (also through the real entry point), -h,
plain help (no <bool>, defaults shown), `data inspect --sheet` naming its file, `plot` keeping kinds of run
apart and naming what it could not draw, `bench`'s memory figures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from facetrack.cli import app
from tests.datagen import make_ytf_csv
from tests.helpers import one_error_line

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.parametrize("argv,needles", [
    (["images", "x.jpg", "--backend", "bad"], ["--backend", "'bad' is not one of 'onnx', 'torch'",
                                               "see 'facetrack images --help'"]),
    (["images", "x.jpg", "--nope"], ["No such option: --nope"]),
    (["nosuch"], ["No such command 'nosuch'", "see 'facetrack --help'"]),
    (["train", "landmarks", "--data", "d", "--epochs", "0"], ["--epochs", "see 'facetrack train --help'"]),
    (["images"], ["Missing argument"]),
    (["train"], ["Missing argument 'task'. Choose from: landmarks, box, detector; see 'facetrack train --help'"]),
    (["data", "inspect", "x", "--bad"], ["No such option: --bad", "see 'facetrack data inspect --help'"]),
    (["--nope"], ["No such option: --nope"]),
])
def test_usage_errors_are_one_line_with_exit_2(argv, needles):
    result = runner.invoke(app, argv)
    line = one_error_line(result, 2, *needles)
    assert result.output.strip() == line  # nothing else: no usage block, no box
    assert "Value error" not in line


def test_the_installed_entry_point_prints_one_line_too():
    proc = subprocess.run([sys.executable, "-m", "facetrack", "images", "x.jpg", "--backend", "bad"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("facetrack: error: ")]
    assert len(errors) == 1 and "--backend" in errors[0], proc.stderr
    assert "Usage:" not in proc.stderr and "╭" not in proc.stderr and "Traceback" not in proc.stderr


def test_dash_h_is_help_everywhere():
    for argv in (["-h"], ["images", "-h"], ["data", "inspect", "-h"], ["train", "landmarks", "-h"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0 and "Usage: facetrack" in result.output, (argv, result.output)


def test_help_is_plain_text_without_bool_placeholders():
    for command in ("images", "video", "eval", "train", "export", "bench"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "╭" not in result.output, command
    images = runner.invoke(app, ["images", "--help"]).output
    assert "--no-draw " in images and "--flip-test / --no-flip-test" in images


def test_export_help_shows_its_defaults():
    text = runner.invoke(app, ["export", "--help"]).output
    for default in ("[default: onnx]", "[default: weights/]", "[default: 18]",
                    "[default: the --weights folder itself"):
        assert default in " ".join(text.split()), default


def test_train_landmarks_help_shows_the_landmark_options():
    result = runner.invoke(app, ["train", "landmarks", "--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for option in ("--model <str> Landmarks: resnet (default), resnet-simcc", "--quality / --no-quality",
                   "--split-lookalikes / --no-split-lookalikes", "--loss", "--recipe", "--init-from",
                   "--single-face-only", "--time-budget", "--dry-run"):
        assert option in text, option


def test_data_inspect_says_where_the_sheet_went(tmp_path):
    data = make_ytf_csv(tmp_path / "ytf")
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["data", "inspect", str(data), "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    assert f"contact sheet {sheet}" in result.output and sheet.is_file()


# ---------------------------------------------------------------- plot

def _run(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _rows(**metric) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "elapsed_min": e, **metric} for e in (1, 2, 3)]


def test_plot_puts_landmark_and_box_runs_on_separate_rows_and_names_what_it_skipped(tmp_path):
    from training.plots import sort_runs

    lm = _run(tmp_path / "resnet", _rows(val_nme=5.0))
    box = _run(tmp_path / "box", _rows(iou_mean=0.8, presence_accuracy=0.9))
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = _run(tmp_path / "broken", [])
    (broken / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1, "val_loss": 1, "val_nme": 5}\n{"epo')
    kinds, skipped = sort_runs([lm, box, empty, broken, tmp_path / "gone"])
    assert kinds == {lm: "landmarks", box: "box"}
    assert skipped == {empty: "no metrics.jsonl", broken: "metrics.jsonl line 2 is not JSON",
                       tmp_path / "gone": "no such folder"}

    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(lm), str(box), str(empty), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"not drawn: {empty} (no metrics.jsonl)" in result.output
    assert "2 runs; landmarks, box runs on separate rows" in result.output
    with Image.open(out) as figure:
        width, height = figure.size
    assert height > width * 0.6  # two rows of panels (one row is 11 x 4 inches)


def test_plot_refuses_when_nothing_can_be_drawn(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_metric = _run(tmp_path / "odd", [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}])
    result = runner.invoke(app, ["plot", str(empty), str(no_metric), "--out", str(tmp_path / "c.png")])
    one_error_line(result, 2, "nothing to draw", f"{empty}: no metrics.jsonl",
                   f"{no_metric}: metrics.jsonl has no val_nme, iou_mean or ap50")
    assert not (tmp_path / "c.png").exists()


# ---------------------------------------------------------------- bench memory

def test_the_process_peak_survives_a_per_backend_reset():
    from tracker.bench import system

    if not system.reset_peak_memory():
        pytest.skip("no /proc/self/clear_refs here")
    big = bytearray(200 * 1024 * 1024)
    big[::4096] = b"x" * len(big[::4096])  # touch every page: resident
    first = system.memory_mib()
    del big
    assert system.reset_peak_memory()
    second = system.memory_mib()
    assert second["peak_rss_mib"] < first["peak_rss_mib"] - 150  # the new window starts low
    # the process still remembers the peak (the kernel's high-water mark may miss a page or two of it)
    assert second["process_peak_rss_mib"] >= first["peak_rss_mib"] - 1


def test_the_memory_line_says_one_consistent_thing():
    from tracker.bench.report import memory_line

    line = memory_line({"peak_rss_mib": 231.4, "process_peak_rss_mib": 1190.3})
    assert "231.4 MiB while this backend ran" in line and "1190.3 MiB" in line and "earlier backends" in line
    alone = memory_line({"peak_rss_mib": None, "process_peak_rss_mib": 300.0})
    assert "300.0 MiB for the whole process" in alone and "while this backend ran" not in alone
