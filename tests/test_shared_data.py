"""`facetrack data inspect` on the shared real data sets (skipped where they are absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests.helpers import shared_folder


def shared_data_dir() -> Path | None:
    """The shared data folder beside the repository, or $FACETRACK_SHARED_DATA."""
    return shared_folder("data", "FACETRACK_SHARED_DATA")


@pytest.mark.slow
@pytest.mark.parametrize("name, fmt, faces", [
    ("ytf-keypoints", "ytf-csv", 4232),
    ("300w-helen-train", "300w", 870),
    ("dlib-faces", "dlib-xml", 43),
    ("mtfl", "mtfl", 8474),
    ("caltech-webfaces", "caltech", 3615),
])
def test_shared_dataset_counts(name, fmt, faces):
    base = shared_data_dir()
    if base is None or not (base / name).is_dir():
        pytest.skip(f"shared data set {name} not found (looked beside the repo and in $FACETRACK_SHARED_DATA)")
    result = CliRunner().invoke(app, ["data", "inspect", str(base / name), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["format"] == fmt
    assert info["faces"] == faces
    assert sum(info["splits"].values()) == faces
