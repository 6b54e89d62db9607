"""`python -m tracker.cli` (what `torchrun ... -m tracker.cli train ...` runs)."""

from tracker.cli import main

main()
