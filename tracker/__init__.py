"""facetrack runtime: sources, backends, tracking, drawing and sinks (no torch needed for ONNX).

Imports only the base layer (`core`); the command line (`facetrack`) sits on top of it.
"""

from core import __version__

__all__ = ["__version__"]
