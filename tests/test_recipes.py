"""The README's "Recipes" run as written: every ```bash block of the section, command by command, in a
temporary folder holding small inputs under the names the recipes use (photos/, clip.mp4, clips/), with
the shipped weights. No camera exists here: the webcam recipe runs with a video file as its --camera,
without a window, for a few frames."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from core.manifest import default_weights_dir
from tests.helpers import demo_frames, write_frames_clip

ROOT = Path(__file__).resolve().parents[1]
FACETRACK = str(Path(sys.executable).parent / "facetrack")
OUTPUT_OPTIONS = ("--csv", "--json", "--out", "--out-dir")
WEBCAM_STAND_IN = ["--no-show", "--max-frames", "8"]  # with --camera replaced by clip.mp4


def recipe_blocks() -> list[list[str]]:
    """The commands (one string each, comments dropped) of every ```bash block in README's "## Recipes"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Recipes\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, 'README.md has no "## Recipes" section'
    blocks = re.findall(r"```bash\n(.*?)```", section.group(1), re.DOTALL)
    return [[line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
            for block in blocks]


@pytest.fixture
def workdir(tmp_path) -> Path:
    """photos/ (two photos, one in a subfolder), clip.mp4 (12 frames), clips/ (two clips of 6 frames)."""
    if not (default_weights_dir() / "manifest.json").is_file():
        pytest.skip("no shipped weights")
    frames = demo_frames(12)
    (tmp_path / "photos" / "trip").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "photos" / "a.jpg"), frames[0])
    cv2.imwrite(str(tmp_path / "photos" / "trip" / "b.jpg"), frames[6])
    write_frames_clip(tmp_path / "clip.mp4", frames, fps=30.0)
    (tmp_path / "clips").mkdir()
    write_frames_clip(tmp_path / "clips" / "one.mp4", frames[:6], fps=30.0)
    write_frames_clip(tmp_path / "clips" / "two.mp4", frames[6:], fps=30.0)
    return tmp_path


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] == "facetrack", command
    argv[0] = FACETRACK
    if argv[1] == "webcam":
        argv[argv.index("--camera") + 1] = "clip.mp4"
        argv += WEBCAM_STAND_IN
    return argv


def _outputs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word in OUTPUT_OPTIONS]


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    argv = _argv(command)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    for name in _outputs(argv):
        path = cwd / name
        assert path.exists(), f"{command}: {name} not written"
        assert (any(path.iterdir()) if path.is_dir() else path.stat().st_size > 0), f"{command}: {name} empty"
    return done


def _blocks_of(subcommand: str) -> list[list[str]]:
    blocks = [block for block in recipe_blocks() if block and block[0].split()[1] == subcommand]
    assert blocks, f'README "Recipes" has no facetrack {subcommand} block'
    return blocks


def test_the_recipes_cover_what_a_new_user_needs():
    first = [block[0].split()[1] for block in recipe_blocks()]
    assert {"images", "video", "webcam", "export"} <= set(first)


@pytest.mark.parametrize("subcommand", ["images", "video", "webcam"])
def test_recipe_runs_as_written(subcommand, workdir):
    for block in _blocks_of(subcommand):
        for command in block:
            _run(command, workdir)
    if subcommand == "images":
        lines = (workdir / "faces.csv").read_text().splitlines()
        assert lines[0].startswith("image,") and len(lines) >= 3  # header, a face in each photo
        assert not any(p.suffix == ".jpg" for p in workdir.iterdir())  # no annotated copies beside
    if subcommand == "video":
        assert sorted(p.name for p in (workdir / "tracked").iterdir() if not p.name.startswith(".")) == [
            "one.jsonl", "one.mp4", "two.jsonl", "two.mp4"]


@pytest.mark.slow
def test_export_recipe_runs_as_written(workdir):
    """Export into a folder of its own, then run that folder's fp16 graphs with the shipped detector."""
    for block in _blocks_of("export"):
        done = [_run(command, workdir) for command in block]
    models = [line for line in done[-1].stderr.splitlines() if "models:" in line]
    assert models and "fp16" in models[0], done[-1].stderr
    assert "centernet" in models[0]  # the export kept the weights' default detector


def test_int8_on_the_shipped_weights_is_refused_as_the_recipes_say(workdir):
    done = subprocess.run([FACETRACK, "video", "clip.mp4", "--precision", "int8", "--json", "x.jsonl"],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "no int8 ONNX graph" in done.stderr, done.stderr
