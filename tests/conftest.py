"""Session fixtures shared by the test modules."""

from pathlib import Path

import pytest

from tests.helpers import shared_weights


@pytest.fixture(scope="session")
def face_weights(tmp_path_factory) -> Path:
    return shared_weights(tmp_path_factory, "face")


@pytest.fixture(scope="session")
def noface_weights(tmp_path_factory) -> Path:
    return shared_weights(tmp_path_factory, "noface")
