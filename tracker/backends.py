"""Model backends: ONNX Runtime (the default, no torch) and torch checkpoints; one small interface.

`create_backend` is the only place an ONNX Runtime session or a torch model is made. Settings come
from the graph's metadata or the checkpoint's meta, never from file names or input shapes.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from core.errors import InputError
from core.manifest import BOX_MODEL, landmark_model_name, model_file, read_manifest
from core.meta import MetadataError, ModelMeta

BACKENDS = ("onnx", "torch")
DEVICES = ("auto", "cpu", "cuda")
Log = Callable[[str], None]


class Backend(Protocol):
    """A loaded model: `predict` maps an NCHW float32 batch to its (B, K) float32 output."""

    name: str  # "onnx:CPUExecutionProvider", "torch:cuda", ...
    meta: ModelMeta

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


def default_threads() -> int:
    """Intra-op threads: 1-2, so capture and rendering keep a core of their own."""
    return max(1, min(2, (os.cpu_count() or 2) // 2))


_GPU_PROBE: bool | None = None


def cuda_gpu_usable() -> bool:
    """True when the CUDA driver loads and reports at least one device (no nvidia-smi, no torch)."""
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


def _tensorrt_loadable() -> bool:
    for name in ("libnvinfer.so.10", "libnvinfer.so") if sys.platform != "win32" else ("nvinfer_10.dll",):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def resolve_device(device: str, gpu_usable: bool, log: Log | None = None) -> str:
    """'cpu' or 'cuda' from --device; cuda without a GPU is an InputError, auto falls back with one line."""
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


# ---------------------------------------------------------------- ONNX Runtime
class OnnxBackend:
    """An ONNX Runtime session with the model's metadata."""

    def __init__(self, session, meta: ModelMeta, path: Path) -> None:
        self.session = session
        self.meta = meta
        self.path = path
        self.providers = list(session.get_providers())
        self.name = f"onnx:{self.providers[0]}"
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the graph on an NCHW float32 batch."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return np.asarray(self.session.run([self._output], {self._input: batch})[0], dtype=np.float32)


def _onnx_providers(device: str) -> list:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device != "cuda":
        return ["CPUExecutionProvider"]
    providers: list = []
    if "TensorrtExecutionProvider" in available and _tensorrt_loadable():
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facetrack" / "tensorrt"
        providers.append(("TensorrtExecutionProvider", {"trt_engine_cache_enable": True,
                                                         "trt_engine_cache_path": str(cache)}))
        cache.mkdir(parents=True, exist_ok=True)
    if "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    if not providers:
        raise InputError("--device cuda: this onnxruntime build has no CUDA provider (install onnxruntime-gpu)")
    return providers + ["CPUExecutionProvider"]


def _create_onnx(path: Path, device: str, threads: int, log: Log | None) -> OnnxBackend:
    import onnxruntime as ort

    asked = device
    device = resolve_device(device, cuda_gpu_usable(), log)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: provider fallbacks are reported by us, once
    # Spinning worker threads would burn the cores that capture and rendering need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=_onnx_providers(device))
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile...: all mean "not a usable graph"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a loadable ONNX model ({first[:200]}); re-export it with "
                         "`facetrack export` or point --weights at a good folder") from None
    meta = ModelMeta.from_props(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
    _check_input(session, meta, path)
    backend = OnnxBackend(session, meta, path)
    if device == "cuda" and backend.providers[0] == "CPUExecutionProvider":
        if asked == "cuda":
            raise InputError(f"--device cuda: ONNX Runtime could not start its CUDA provider for {path} "
                             "(CUDA/cuDNN libraries missing?); use --device cpu")
        if log:
            log("ONNX Runtime could not start its CUDA provider; running on CPU")
    return backend


def _check_input(session, meta: ModelMeta, path: Path) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise MetadataError(f"{path}: expected one input, the graph has {len(inputs)}")
    shape = inputs[0].shape
    fixed = [d for d in shape[1:] if isinstance(d, int)]
    if len(shape) != 4 or (fixed and fixed != [3, meta.input_size, meta.input_size][-len(fixed):]):
        raise MetadataError(f"{path}: input shape {shape} disagrees with its metadata "
                            f"(NCHW, 3x{meta.input_size}x{meta.input_size})")
    width = session.get_outputs()[0].shape[-1]
    expected = 5 if meta.kind == "box" else 2 * len(meta.point_names)
    if isinstance(width, int) and width != expected:
        raise MetadataError(f"{path}: a {meta.kind} model with {width} outputs per row; expected {expected}")


# ---------------------------------------------------------------- torch
class TorchBackend:
    """A torch model rebuilt from a checkpoint."""

    def __init__(self, model, meta: ModelMeta, device: str, path: Path) -> None:
        self.model = model
        self.meta = meta
        self.device = device
        self.path = path
        self.name = f"torch:{device}"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on an NCHW float32 batch."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()


def _create_torch(path: Path, device: str, threads: int, log: Log | None,
                  expect_kind: str | None) -> TorchBackend:
    try:
        import torch

        from core.models import load_model, model_meta
    except ImportError as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from exc  # Ctrl+C while torch was loading
        raise InputError(f"--backend torch needs PyTorch ({exc}); install it or use --backend onnx") from None

    device = resolve_device(device, torch.cuda.is_available(), log)
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)
    model, ckpt = load_model(path, expect_kind=expect_kind)
    if isinstance(ckpt.get("meta"), dict):
        try:
            meta = ModelMeta.from_dict(ckpt["meta"])
        except TypeError as exc:
            raise MetadataError(f"{path}: malformed meta in checkpoint ({exc})") from None
    else:  # older checkpoints: the metadata follows from the stored model config
        meta = model_meta(ckpt["model"], model.config)
    return TorchBackend(model.to(device), meta, device, path)


# ---------------------------------------------------------------- factory
def create_backend(kind: str, model_path: str | Path, device: str = "auto", *, expect_kind: str | None = None,
                   threads: int | None = None, log: Log | None = None) -> Backend:
    """Load a model file with backend `kind` ('onnx' or 'torch') on --device auto|cpu|cuda."""
    path = Path(model_path)
    if kind not in BACKENDS:
        raise InputError(f"--backend {kind}: expected one of {', '.join(BACKENDS)}")
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    threads = threads or default_threads()
    if kind == "onnx":
        backend: Backend = _create_onnx(path, device, threads, log)
    else:
        backend = _create_torch(path, device, threads, log, expect_kind)
    if expect_kind and backend.meta.kind != expect_kind:
        raise MetadataError(f"{path}: holds a {backend.meta.kind} model, expected a {expect_kind} model; "
                            "check which file the weights manifest names for it")
    return backend


def open_models(weights_dir: str | Path, backend: str = "onnx", device: str = "auto",
                landmark_model: str | None = None, threads: int | None = None,
                log: Log | None = None) -> tuple[Backend, Backend]:
    """The (box, landmark) backends named by a weights folder's manifest."""
    fmt = "onnx" if backend == "onnx" else "checkpoints"
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    manifest = read_manifest(weights_dir)
    name = landmark_model_name(manifest, landmark_model, fmt)
    landmark_path = model_file(weights_dir, name, fmt)
    box_path = model_file(weights_dir, BOX_MODEL, fmt)
    said: list[str] = []

    def once(line: str) -> None:  # the device fallback is said once, not once per model
        if log and line not in said:
            said.append(line)
            log(line)

    box = create_backend(backend, box_path, device, expect_kind="box", threads=threads, log=once)
    landmarks = create_backend(backend, landmark_path, device, expect_kind="landmarks", threads=threads, log=once)
    return box, landmarks
