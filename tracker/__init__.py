"""facetrack runtime: sources, backends, tracking, drawing and sinks (no torch needed for ONNX).

Imports only the base layer (`core`); the command line (`facetrack`) sits on top of it. The Python API
(`from tracker import FaceTracker`, README "Python") is loaded on first use, so `import tracker` stays light.
"""

from core import __version__
from core.errors import FacetrackError, InputError

_LAZY = {"FaceTracker": "tracker.api", "Face": "tracker.results", "Result": "tracker.results"}

__all__ = ["Face", "FaceTracker", "FacetrackError", "InputError", "Result", "__version__"]


def __getattr__(name: str):
    """`FaceTracker`, `Face` and `Result`, imported from their modules when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
