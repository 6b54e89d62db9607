"""The same training code under torchrun: two CPU processes with the gloo backend."""

import json
import os
import subprocess
import sys

import pytest

from tests.datagen import make_ytf_csv


@pytest.mark.slow
def _free_port() -> int:
    """A TCP port free on this machine now (a fixed one collides with another run on the same host)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_two_cpu_processes(tmp_path):
    data = make_ytf_csv(tmp_path / "ytf")
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "facetrack", "train", "landmarks", "--data", str(data), "--model", "nalbert",
           "--input-size", "64", "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--workers", "0",
           "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "2 processes" in proc.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # only rank 0 logs
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
