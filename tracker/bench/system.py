"""What machine and software a benchmark ran on, and how much memory it used: the report's header."""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path

MIB = 1024.0


def cpu_info() -> dict:
    """CPU model, logical cores, and the cores this process may use."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {"model": model or platform.processor() or platform.machine(), "cores": os.cpu_count() or 0,
            "cores_usable": usable}


def gpu_info() -> list[dict] | str:
    """GPUs and driver from nvidia-smi, or "none" (no nvidia-smi, or it lists nothing)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "none"
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return "none"
    gpus = []
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2] if len(parts) > 2 else ""})
    return gpus or "none"


def library_versions(torch_used: bool) -> dict:
    """Versions of the libraries the measured code ran on (torch only when a torch backend ran)."""
    import cv2
    import numpy
    import onnxruntime

    from core import __version__

    versions = {"facetrack": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
                "cv2": cv2.__version__, "onnxruntime": onnxruntime.__version__}
    if torch_used and "torch" in sys.modules:
        versions["torch"] = sys.modules["torch"].__version__
    return versions


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other work on a shared machine shows here)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's sha256: the same digest means the same model file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _status_kib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# The process's peak so far, kept across resets: resetting VmHWM also resets what getrusage's ru_maxrss
# reports (Linux takes the larger of the two at the time of asking), so neither remembers an earlier peak.
_process_peak_kib = 0.0
_reset_done = False  # VmHWM was reset at least once: it measures since the last reset


def _peak_now_kib() -> float:
    """The larger of VmHWM and ru_maxrss now, KiB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    maxrss_kib = maxrss / 1024.0 if sys.platform == "darwin" else float(maxrss)  # bytes on macOS
    return max(maxrss_kib, _status_kib("VmHWM") or 0.0)


def reset_peak_memory() -> bool:
    """Start a new peak-memory window: remember the process peak so far, then reset this process's VmHWM to
    its current RSS (Linux `clear_refs` 5). False where unsupported (the window is then the whole process)."""
    global _process_peak_kib, _reset_done
    _process_peak_kib = max(_process_peak_kib, _peak_now_kib())
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    _reset_done = True
    return True


def memory_mib() -> dict:
    """Resident memory in MiB: `peak_rss_mib`, the peak since the last `reset_peak_memory` (None where no
    reset happened or none is possible: then only the process peak is known); `process_peak_rss_mib`, the
    peak of the whole process so far (never below an earlier reading, resets or not); `rss_mib`, now."""
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    process = max(_process_peak_kib, _peak_now_kib())
    return {"peak_rss_mib": round(hwm / MIB, 1) if hwm is not None and _reset_done else None,
            "process_peak_rss_mib": round(process / MIB, 1),
            "rss_mib": round(rss / MIB, 1) if rss is not None else None}
