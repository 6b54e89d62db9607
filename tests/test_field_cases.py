"""The shipped weights on the shared field cases that broke the tracker (../shared/field-cases/README.md):
faces rolled 0/45/90/180 degrees and faces cut by the image border, through `facetrack images` as a user
runs it, scored against the truth's `expect` (`facetrack.fieldcases`). Skipped without the shared folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from facetrack.fieldcases import score_case
from tests.helpers import shared_folder


def field_cases_dir() -> Path | None:
    """../shared/field-cases beside the repository, or $FACETRACK_FIELD_CASES."""
    return shared_folder("field-cases", "FACETRACK_FIELD_CASES")


def _scored(case: str, tmp_path: Path) -> list[dict]:
    base = field_cases_dir()
    if base is None or not (base / case / "truth.json").is_file():
        pytest.skip(f"field case {case} not found (looked beside the repo and in $FACETRACK_FIELD_CASES)")
    rows = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(app, ["images", str(base / case), "--json", str(rows), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    scored = score_case(base / case, [json.loads(line) for line in rows.read_text().splitlines() if line.strip()])
    assert scored
    return scored


@pytest.mark.slow
@pytest.mark.parametrize("case", ["rolled", "small-face", "exif-orientation"])
def test_shipped_weights_pass_the_field_case(case, tmp_path):
    scored = _scored(case, tmp_path)
    assert all(item["pass"] for item in scored), scored


@pytest.mark.slow
def test_half_outside_faces(tmp_path):
    """A face cut at the bottom comes out with its visible points right; the one cut at the left (through
    the right eye) is found by the multi-face detector and its visible points are 13 % of the
    inter-ocular distance off (the case wants no face or 10 %): a known failure of the shipped weights
    (issue 12's closing note), kept strict so that a fix shows."""
    by_file = {item["file"]: item for item in _scored("half-outside", tmp_path)}
    assert by_file["cut_bottom.jpg"]["pass"], by_file
    if by_file["cut_left.jpg"]["pass"]:
        pytest.fail("cut_left.jpg passes now: fold it back into test_shipped_weights_pass_the_field_case")
    assert by_file["cut_left.jpg"]["faces"] <= 1
