"""Session fixtures shared by the test modules."""

from pathlib import Path

import pytest

from tests.helpers import DotDetectorModel, DotReader, shared_weights


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
                    detector=None):
        return DotDetectorModel(), DotReader(quality=True)

    monkeypatch.setattr(pipeline, "open_models", open_models)
