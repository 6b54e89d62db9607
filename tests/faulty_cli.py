"""`python -m tests.faulty_cli webcam --camera 'synthetic?...&stall_after=25' ...`: the real CLI, with a
camera that fails (tests/fakes.py) behind `synthetic?...` specs.

Run from the repository root. A fault such as a hanging read is best tested in a process of its own:
the stuck read thread ends with that process instead of lingering in the test run.
"""

from __future__ import annotations

import tracker.session as session
from facetrack.cli import main
from tests.fakes import faulty_camera_opener

if __name__ == "__main__":
    session.open_camera_input = faulty_camera_opener(session.open_camera_input)
    main()
