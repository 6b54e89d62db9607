"""Peer jobs for `facetrack bench --vs`: standalone scripts run by another project's Python.

They import nothing from facetrack (the peer's own virtual environment has none of it) and are run by
path (`tracker.bench.versus.peer_script`), never imported by facetrack.
"""
