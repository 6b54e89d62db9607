"""Outputs checked before the work (issue 13, item 9): `eval`, `plot`, `train` and `export` refuse an
output they could not write (missing or unwritable folder, a folder for a file, a suffix the writer
cannot write, an output that is an input or another output) with one line and exit 2 before any data is
read or any model runs; `train --out` refuses a folder that already holds a run unless --resume or
--overwrite says what to do with it; `export` without --out says up front that it updates the weights
folder in place. The work itself is replaced by a stand-in that fails the test when it is reached.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests.helpers import one_error_line

runner = CliRunner()


def _never(*args, **kwargs):
    raise AssertionError("the work started before the outputs were checked")


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A folder nothing can be created in: mode 0555 and, since root ignores the mode, a refused probe
    (`tracker.sinks.check_writable_folder` creates a file there to find out)."""
    import tracker.sinks as sinks

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    real = sinks.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(sinks.tempfile, "mkstemp", mkstemp)
    yield folder
    folder.chmod(0o755)


# ---------------------------------------------------------------- eval


@pytest.fixture
def no_evaluation(monkeypatch):
    import facetrack.evaluate as evaluate

    monkeypatch.setattr(evaluate, "evaluate", _never)


@pytest.mark.parametrize("case", ["json_missing_folder", "sheet_missing_folder", "ced_missing_folder",
                                  "json_locked", "sheet_locked", "ced_locked", "json_is_a_folder",
                                  "sheet_suffix", "ced_suffix", "ced_is_json", "json_is_the_data",
                                  "ced_without_landmarks", "sheet_for_box"])
def test_eval_checks_its_outputs_before_evaluating(case, tmp_path, locked, no_evaluation):
    data = tmp_path / "faces.csv"
    data.write_text("not read: the outputs fail first\n")
    missing = tmp_path / "no" / "such"
    option, path, extra, needle = {
        "json_missing_folder": ("--json", missing / "m.json", [], "does not exist"),
        "sheet_missing_folder": ("--sheet", missing / "s.png", [], "does not exist"),
        "ced_missing_folder": ("--ced", missing / "c.png", [], "does not exist"),
        "json_locked": ("--json", locked / "m.json", [], str(locked)),
        "sheet_locked": ("--sheet", locked / "s.png", [], str(locked)),
        "ced_locked": ("--ced", locked / "c.png", [], str(locked)),
        "json_is_a_folder": ("--json", tmp_path, [], "is a folder"),
        "sheet_suffix": ("--sheet", tmp_path / "sheet.xyz", [], ".png"),
        "ced_suffix": ("--ced", tmp_path / "ced", [], "matplotlib cannot write"),
        "ced_is_json": ("--json", tmp_path / "m.png", ["--ced", str(tmp_path / "m.png")], "another output"),
        "json_is_the_data": ("--json", data, [], "is the input"),
        "ced_without_landmarks": ("--ced", tmp_path / "c.png", ["--what", "box"], "--what landmarks or both"),
        "sheet_for_box": ("--sheet", tmp_path / "s.png", ["--what", "box"], "not for --what box"),
    }[case]
    result = runner.invoke(app, ["eval", "--data", str(data), option, str(path), *extra])
    one_error_line(result, 2, option, needle)
    assert data.read_text() == "not read: the outputs fail first\n"


# ---------------------------------------------------------------- plot


@pytest.fixture
def run_folder(tmp_path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}) + "\n")
    return run


@pytest.mark.parametrize("case", ["missing_folder", "locked", "suffix", "is_a_folder", "is_the_metrics"])
def test_plot_checks_out_before_plotting(case, tmp_path, locked, run_folder, monkeypatch):
    import training.plots as plots

    monkeypatch.setattr(plots, "plot_runs", _never)
    out, needle = {"missing_folder": (tmp_path / "no" / "c.png", "does not exist"),
                   "locked": (locked / "c.png", str(locked)),
                   "suffix": (tmp_path / "curves.txt", "matplotlib cannot write a txt file"),
                   "is_a_folder": (tmp_path, "is a folder"),
                   "is_the_metrics": (run_folder / "metrics.jsonl", "is the input")}[case]
    one_error_line(runner.invoke(app, ["plot", str(run_folder), "--out", str(out)]), 2, "--out", needle)


# ---------------------------------------------------------------- train


@pytest.fixture
def training(monkeypatch) -> list:
    """training.train.train replaced: records the config it was called with, writes nothing."""
    import training.train as train_module

    calls: list = []

    def fake_train(cfg, log=print):
        calls.append(cfg)
        return {"epochs_done": 0, "minutes": 0.0, "best": None}

    monkeypatch.setattr(train_module, "train", fake_train)
    return calls


def _train(out: Path, *extra: str):
    return runner.invoke(app, ["train", "landmarks", "--data", "unused.csv", "--out", str(out), *extra])


@pytest.mark.parametrize("held", ["metrics.jsonl", "last.pt", "best.pt"])
def test_train_refuses_a_folder_that_holds_a_run(held, tmp_path, training):
    run = tmp_path / "run"
    run.mkdir()
    (run / held).write_text("a run")
    line = one_error_line(_train(run), 2, f"--out {run}", held, "--resume", "--overwrite")
    assert "already holds a training run" in line and not training
    assert (run / held).read_text() == "a run"
    assert _train(run, "--resume").exit_code == 0 and training[-1].resume
    assert _train(run, "--overwrite").exit_code == 0 and not training[-1].resume
    one_error_line(_train(run, "--resume", "--overwrite"), 2, "--resume and --overwrite")


def test_train_into_a_new_or_unused_folder_starts(tmp_path, training):
    assert _train(tmp_path / "runs" / "new").exit_code == 0  # made with its parents by training
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a run")
    assert _train(tmp_path / "empty").exit_code == 0
    assert [Path(cfg.out).name for cfg in training] == ["new", "empty"]


@pytest.mark.parametrize("case", ["under_a_file", "locked", "is_a_file"])
def test_train_checks_out_before_reading_data(case, tmp_path, locked, training):
    (tmp_path / "file").write_text("x")
    out, needle = {"under_a_file": (tmp_path / "file" / "run", "is a file"),
                   "locked": (locked / "run", str(locked)),
                   "is_a_file": (tmp_path / "file", "is a file")}[case]
    one_error_line(_train(out), 2, "--out", needle)
    assert not training


# ---------------------------------------------------------------- export


@pytest.fixture
def exporting(monkeypatch) -> list:
    """export.pipeline.export_weights replaced: records where it was asked to write, writes nothing."""
    import export.pipeline as pipeline

    calls: list = []

    def fake_export(weights_dir, out_dir=None, **kwargs):
        calls.append((Path(weights_dir), out_dir))
        return SimpleNamespace(rows=[], notes=[], refused=[], out_dir=Path(out_dir or weights_dir),
                               manifest=Path(out_dir or weights_dir) / "manifest.json")

    monkeypatch.setattr(pipeline, "export_weights", fake_export)
    return calls


def test_export_without_out_says_it_updates_the_weights_folder_first(tmp_path, exporting, monkeypatch):
    import core.manifest as manifest

    weights = tmp_path / "w"
    weights.mkdir()
    result = runner.invoke(app, ["export", "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"no --out: updating the weights folder {weights} in place") and "--out DIR" in first
    monkeypatch.setattr(manifest, "default_weights_dir", lambda: weights)  # as if it were the shipped weights/
    result = runner.invoke(app, ["export"])
    assert result.exit_code == 0 and result.output.startswith(f"no --out: updating the shipped weights folder "
                                                              f"{weights} in place"), result.output
    result = runner.invoke(app, ["export", "--weights", str(weights), "--out", str(tmp_path / "new" / "graphs")])
    assert result.exit_code == 0 and "in place" not in result.output, result.output
    assert exporting == [(weights, None), (weights, None), (weights, tmp_path / "new" / "graphs")]


@pytest.mark.parametrize("case", ["out_is_a_file", "out_locked", "weights_locked"])
def test_export_checks_where_it_writes_before_exporting(case, tmp_path, locked, exporting):
    weights = tmp_path / "w"
    weights.mkdir()
    (tmp_path / "file").write_text("x")
    args, needle = {"out_is_a_file": (["--out", str(tmp_path / "file")], "is a file"),
                    "out_locked": (["--out", str(locked / "graphs")], str(locked)),
                    "weights_locked": (["--weights", str(locked)], "not given: the weights folder")}[case]
    if case != "weights_locked":
        args += ["--weights", str(weights)]
    one_error_line(runner.invoke(app, ["export", *args]), 2, "--out", needle)
    assert not exporting
