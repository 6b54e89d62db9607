"""facetrack's command line: `facetrack COMMAND` (also `python -m facetrack`), on top of every layer."""

from core import __version__

__all__ = ["__version__"]
