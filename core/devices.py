"""Where models run: --device auto|cpu|cuda, the usable-GPU probe, the TensorRT probe, model threads.

No torch and no onnxruntime here: the probes load the CUDA driver and TensorRT libraries with ctypes,
so asking "is there a GPU?" costs neither import.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable

from core.errors import InputError

DEVICES = ("auto", "cpu", "cuda")
Log = Callable[[str], None]

_GPU_PROBE: bool | None = None  # the probe's answer, cached for the process (tests pin it)


def default_threads() -> int:
    """Intra-op threads for a model: 1-2, so capture and rendering keep a core of their own."""
    return max(1, min(2, (os.cpu_count() or 2) // 2))


PIPELINE_THREADS = 3  # a threaded run's own threads: capture, inference, output (tracker.runtime)


def helper_threads(cores: int | None = None) -> int:
    """Threads for OpenCV's pool and the H.264 encoder during a threaded run: the cores the pipeline's
    own three threads leave, at least 1 (1 on 2-4 cores). On 2 cores their default pools (2 and 3
    threads) cost 0.8 ms CPU a frame in hand-offs and slowed the run (docs/benchmarks.md, issue 15)."""
    return max(1, (cores or os.cpu_count() or 1) - PIPELINE_THREADS)


def cuda_gpu_usable() -> bool:
    """True when the CUDA driver loads and reports at least one device (no nvidia-smi, no torch); cached."""
    global _GPU_PROBE
    if _GPU_PROBE is None:
        _GPU_PROBE = _probe_cuda_driver()
    return _GPU_PROBE


def _probe_cuda_driver() -> bool:
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return False
            count = ctypes.c_int(0)
            return lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
        except (AttributeError, OSError):
            return False
    return False


def tensorrt_loadable() -> bool:
    """True when the TensorRT 10 runtime library loads (ONNX Runtime's TensorRT provider needs it)."""
    for name in ("libnvinfer.so.10", "libnvinfer.so") if sys.platform != "win32" else ("nvinfer_10.dll",):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def resolve_device(device: str, gpu_usable: bool, log: Log | None = None) -> str:
    """'cpu' or 'cuda' from --device auto|cpu|cuda.

    An unknown name, or cuda without a usable GPU, is an InputError; auto without a GPU falls back to
    cpu and says so in one `log` line.
    """
    if device not in DEVICES:
        raise InputError(f"--device {device}: expected one of {', '.join(DEVICES)}")
    if device == "cuda" and not gpu_usable:
        raise InputError("--device cuda: no usable CUDA GPU found (driver missing or no device); use --device cpu")
    if device == "auto":
        if gpu_usable:
            return "cuda"
        if log:
            log("no usable CUDA GPU; running on CPU")
        return "cpu"
    return device
