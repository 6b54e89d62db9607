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


@pytest.mark.slow
@pytest.mark.parametrize("case", ["rolled", "half-outside"])
def test_shipped_weights_pass_the_field_case(case, tmp_path):
    base = field_cases_dir()
    if base is None or not (base / case / "truth.json").is_file():
        pytest.skip(f"field case {case} not found (looked beside the repo and in $FACETRACK_FIELD_CASES)")
    rows = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(app, ["images", str(base / case), "--json", str(rows), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    scored = score_case(base / case, [json.loads(line) for line in rows.read_text().splitlines() if line.strip()])
    assert scored and all(item["pass"] for item in scored), scored
