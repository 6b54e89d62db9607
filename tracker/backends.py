"""Model backends: ONNX Runtime (the default, no torch) and torch checkpoints; one small interface.

`create_backend` is where the runtime loads a model: ONNX graphs through `core.onnx_session.open_session`
(the project's one session factory: providers, threads, GPU probe, metadata check), checkpoints by
rebuilding the torch model (torch is imported here only, lazily). Settings come from the graph's
metadata or the checkpoint's meta, never from file names or input shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from core.devices import Log, cuda_gpu_usable, default_threads, resolve_device
from core.errors import InputError
from core.manifest import FACE_FINDERS, detector_model_name, landmark_model_name, model_file, read_manifest
from core.meta import MetadataError, ModelMeta
from core.onnx_session import OnnxSession, has_cuda_provider, open_session

BACKENDS = ("onnx", "torch")
__all__ = ["BACKENDS", "Backend", "Log", "OnnxBackend", "TorchBackend", "create_backend",
           "cuda_gpu_usable", "cuda_unsupported", "default_threads", "open_models", "resolve_device"]


class Backend(Protocol):
    """A loaded model: `predict` maps an NCHW float32 batch to its (B, K) float32 output."""

    name: str  # "onnx:CPUExecutionProvider", "torch:cuda", ...
    meta: ModelMeta

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------- ONNX Runtime
class OnnxBackend:
    """An ONNX Runtime session (from `core.onnx_session.open_session`) with the model's metadata."""

    def __init__(self, opened: OnnxSession) -> None:
        self.session = opened.session
        self.meta = opened.meta
        self.path = opened.path
        self.providers = list(opened.providers)
        self.name = f"onnx:{self.providers[0]}"
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the graph on an NCHW float32 batch."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return np.asarray(self.session.run([self._output], {self._input: batch})[0], dtype=np.float32)


def cuda_unsupported(backend: str) -> str | None:
    """Why `backend` cannot use a (present) CUDA GPU here, or None; imports torch only for 'torch'."""
    if backend == "onnx":
        return None if has_cuda_provider() else "this onnxruntime build has no CUDA provider"
    import torch

    return None if torch.cuda.is_available() else "torch sees no CUDA device"


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

        from core.models import aligned_meta, load_model, model_meta
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
    return TorchBackend(model.to(device), aligned_meta(meta, model), device, path)


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
        backend: Backend = OnnxBackend(open_session(path, device, threads=threads, log=log))
    else:
        backend = _create_torch(path, device, threads, log, expect_kind)
    if expect_kind and backend.meta.kind != expect_kind:
        raise MetadataError(f"{path}: holds a {backend.meta.kind} model, expected a {expect_kind} model; "
                            "check which file the weights manifest names for it")
    return backend


def open_models(weights_dir: str | Path, backend: str = "onnx", device: str = "auto",
                landmark_model: str | None = None, threads: int | None = None,
                log: Log | None = None, detector: str | None = None) -> tuple[Backend, Backend]:
    """The (face detector, landmark) backends named by a weights folder's manifest; `detector` is a
    --detector name (`core.manifest.detector_model_name`: None for the manifest's default). The first
    is a multi-face detector (kind "detector") or the box regressor (kind "box")."""
    fmt = "onnx" if backend == "onnx" else "checkpoints"
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    manifest = read_manifest(weights_dir)
    name = landmark_model_name(manifest, landmark_model, fmt)
    landmark_path = model_file(weights_dir, name, fmt)
    finder = detector_model_name(manifest, detector)
    box_path = model_file(weights_dir, finder, fmt)
    said: list[str] = []

    def once(line: str) -> None:  # the device fallback is said once, not once per model
        if log and line not in said:
            said.append(line)
            log(line)

    kind = "box" if finder == FACE_FINDERS[-1] else "detector"
    box = create_backend(backend, box_path, device, expect_kind=kind, threads=threads, log=once)
    landmarks = create_backend(backend, landmark_path, device, expect_kind="landmarks", threads=threads, log=once)
    return box, landmarks
