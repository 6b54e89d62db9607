"""`python -m facetrack` (what `torchrun ... -m facetrack train ...` runs)."""

from facetrack.cli import main

main()
