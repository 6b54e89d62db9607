"""Reliability under load: a long run keeps memory flat, counts every frame and keeps its queues bounded.

Runs scripts/soak.py in a fresh process (so the test process's own memory does not blur the numbers);
the full 20,000-frame soak is `python scripts/soak.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"


def _soak(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(SOAK), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    assert out.stdout.strip().endswith("soak: ok")
    return result


@pytest.mark.slow
def test_soak_file_run_has_flat_memory_and_exact_count(face_weights):
    result = _soak("--frames", "3000", "--width", "64", "--height", "48", "--every", "250", "--warmup", "500",
                   "--weights", str(face_weights), "--max-growth-mb", "15")
    assert result["processed"] == result["rows"] == result["video_frames"] == 3000
    assert result["rss_growth_after_warmup_mb"] < 15
    assert result["queue_peak"]["frames"] <= result["queue_bound"]["frames"]
    assert result["queue_peak"]["results"] <= result["queue_bound"]["results"]


@pytest.mark.slow
def test_soak_live_run_accounts_for_every_frame(face_weights):
    result = _soak("--frames", "600", "--width", "64", "--height", "48", "--every", "100", "--warmup", "200",
                   "--weights", str(face_weights), "--live")
    assert result["processed"] + result["dropped"] == result["captured"] == 600
    assert result["rows"] == result["processed"]
    assert result["queue_peak"]["frames"] <= 1 and result["queue_peak"]["results"] <= 2
