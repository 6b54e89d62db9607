"""Session fixtures shared by the test modules."""

import os
from pathlib import Path

import pytest

from tests.helpers import DotDetectorModel, DotReader, shared_weights


@pytest.fixture(scope="session", autouse=True)
def _default_run_folders(tmp_path_factory):
    """Runs without an output option write their default run folders into a temporary folder, not into
    the working folder's runs/track (FACETRACK_RUNS, inherited by the commands tests start as processes)."""
    from tracker.outdirs import RUNS_ENV

    before = os.environ.get(RUNS_ENV)
    os.environ[RUNS_ENV] = str(tmp_path_factory.mktemp("default-runs") / "track")
    yield
    if before is None:
        os.environ.pop(RUNS_ENV, None)
    else:
        os.environ[RUNS_ENV] = before


@pytest.fixture(scope="session")
def face_weights(tmp_path_factory) -> Path:
    return shared_weights(tmp_path_factory, "face")


@pytest.fixture(scope="session")
def noface_weights(tmp_path_factory) -> Path:
    return shared_weights(tmp_path_factory, "noface")


@pytest.fixture
def dot_models(monkeypatch):
    """The runtime commands load the dot detector and the dot reader (tests.helpers) instead of a weights
    folder: `tracker.pipeline.open_models` is replaced for the test."""
    import tracker.pipeline as pipeline

    def open_models(weights_dir, backend="onnx", device="auto", landmark_model=None, threads=None, log=None,
                    detector=None, precision="auto"):
        return DotDetectorModel(), DotReader(quality=True)

    monkeypatch.setattr(pipeline, "open_models", open_models)
