"""The shipped weights on the shared field cases that broke the tracker (../shared/field-cases/README.md):
faces rolled 0/45/90/180 degrees and faces cut by the image border, through `facetrack images` as a user
runs it, scored against the truth's `expect` (`facetrack.fieldcases`). Skipped without the shared folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from facetrack.fieldcases import score_case
from tests.helpers import shared_folder


def field_cases_dir() -> Path | None:
    """../shared/field-cases beside the repository, or $FACETRACK_FIELD_CASES."""
    return shared_folder("field-cases", "FACETRACK_FIELD_CASES")


def _rows(case: str, tmp_path: Path) -> tuple[Path, list[dict]]:
    """(the case's folder, the `facetrack images --json` rows of it with the shipped weights); skipped when the
    case is not here."""
    base = field_cases_dir()
    if base is None or not (base / case / "truth.json").is_file():
        pytest.skip(f"field case {case} not found (looked beside the repo and in $FACETRACK_FIELD_CASES)")
    rows = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(app, ["images", str(base / case), "--json", str(rows), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return base / case, [json.loads(line) for line in rows.read_text().splitlines() if line.strip()]


def _scored(case: str, tmp_path: Path) -> list[dict]:
    scored = score_case(*_rows(case, tmp_path))
    assert scored
    return scored


@pytest.mark.slow
@pytest.mark.parametrize("case", ["rolled", "small-face", "exif-orientation", "half-outside"])
def test_shipped_weights_pass_the_field_case(case, tmp_path):
    scored = _scored(case, tmp_path)
    assert all(item["pass"] for item in scored), scored


@pytest.mark.slow
def test_half_outside_faces(tmp_path):
    """Faces cut by the image border: the one cut at the left (its right eye outside) is no face, as the
    tracker reports no face with an eye outside the frame (`tracker.pipeline.eyes_in_frame`; before, its
    visible nose came 12.5 % off); the one cut at the bottom (through the mouth) keeps its visible points
    within 10 % of the inter-ocular distance, eyes in order."""
    by_file = {item["file"]: item for item in _scored("half-outside", tmp_path)}
    assert by_file["cut_left.jpg"]["faces"] == 0 and by_file["cut_left.jpg"]["pass"]
    bottom = by_file["cut_bottom.jpg"]
    assert bottom["faces"] == 1 and all(bottom["eyes_in_order"]) and bottom["pass"], bottom
    assert bottom["in_frame_error_iod"] < 0.10


def _point_truth(case: str, tmp_path: Path) -> dict[str, dict]:
    from facetrack.fieldcases import score_point_truth

    return score_point_truth(*_rows(case, tmp_path))


def _mean(scored: dict[str, dict], unmodified: bool, key: str = "nme"):
    values = [np.asarray(item[key]) for name, item in scored.items()
              if name.startswith("unmodified/") == unmodified and item["found"]]
    return np.mean(values, axis=0)


@pytest.mark.slow
def test_dark_faces_are_found_and_nearly_as_accurate_as_in_normal_light(tmp_path):
    """../shared/field-cases/dark: every face found, as in normal light, NME within 15 % of the same photos
    unmodified (its README)."""
    scored = _point_truth("dark", tmp_path)
    assert all(item["found"] for item in scored.values()), scored
    dark, normal = _mean(scored, False), _mean(scored, True)
    assert dark <= 1.15 * normal, (dark, normal)


@pytest.mark.slow
def test_masked_faces_keep_their_visible_points_and_doubt_the_covered_ones(tmp_path):
    """../shared/field-cases/mask: every masked face found, the eyes (visible) stay accurate, and the covered
    nose and mouth score lower than the same points on the same faces unmasked (its README). The detector
    trained with occluders (runs/detector3) finds the one its predecessor missed (a child squinting, eyes
    shut, most of the face under the mask)."""
    scored = _point_truth("mask", tmp_path)
    masked = {name: item for name, item in scored.items() if not name.startswith("unmodified/")}
    missed = sorted(name for name, item in masked.items() if not item["found"])
    assert missed == [], missed
    errors = _mean(scored, False, "errors")
    assert errors[0] < 5.0 and errors[1] < 5.0, errors  # right and left eye, % of the inter-ocular distance
    covered, bare = _mean(scored, False, "point_scores"), _mean(scored, True, "point_scores")
    assert covered[2] < bare[2] - 0.1 and covered[3] < bare[3] - 0.1, (covered, bare)  # nose tip, mouth
    # the face's confidence drops when most of it is covered (runs/default-r6: 0.86 against 0.99), and stays
    # above min_quality (0.5) so the face is still tracked
    masked_quality, bare_quality = _mean(scored, False, "quality"), _mean(scored, True, "quality")
    assert 0.5 < masked_quality < bare_quality - 0.1, (masked_quality, bare_quality)
