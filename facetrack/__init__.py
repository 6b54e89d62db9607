"""facetrack's command line: `facetrack COMMAND` (also `python -m facetrack`), on top of every layer.

Before anything imports `core`, `tracker`, `training` or `export` (generic names another installed project
may use too), `facetrack.packages` checks that they are facetrack's own: a clash that breaks facetrack
prints one `facetrack: error: ...` line and exits 2.
"""

from facetrack.packages import check_or_exit

check_or_exit()

__all__ = ["__version__"]


def __getattr__(name: str):
    """`__version__`, the project's (`core.__version__`), read when first asked for."""
    if name == "__version__":
        from core import __version__

        return __version__
    raise AttributeError(f"module 'facetrack' has no attribute {name!r}")
