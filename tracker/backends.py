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
from core.freshness import graph_out_of_date
from core.manifest import (
    AUTO,
    BOX_MODEL,
    PRECISIONS,
    check_run_precision,
    detector_model_name,
    landmark_model_name,
    model_file,
    read_manifest,
)
from core.meta import MetadataError, ModelMeta
from core.onnx_session import OnnxSession, has_cuda_provider, open_session
from tracker.weights_source import WeightsSource, weights_source

BACKENDS = ("onnx", "torch")
__all__ = ["BACKENDS", "Backend", "Log", "OnnxBackend", "TorchBackend", "check_precision", "create_backend",
           "cuda_gpu_usable", "describe", "cuda_unsupported", "default_threads", "open_models", "resolve_device"]


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


def describe(backend: Backend) -> str:
    """How a loaded model runs, for the models line: its backend name, then its precision: an ONNX graph's
    as its metadata says ("onnx:CPUExecutionProvider fp16"), a checkpoint's fp32 ("torch:cpu fp32")."""
    precision = backend.meta.extra.get("precision") if isinstance(backend, OnnxBackend) else "fp32"
    return f"{backend.name} {precision}" if precision else backend.name


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


def check_precision(backend: str, precision: str) -> None:
    """--precision with --backend: 'auto', 'fp32', 'fp16' or 'int8' pick an ONNX graph; a checkpoint
    (--backend torch) runs in fp32, so it takes 'auto' or 'fp32' only. InputError otherwise."""
    if precision != AUTO and precision not in PRECISIONS:
        raise InputError(f"--precision {precision}: expected one of {', '.join((AUTO, *PRECISIONS))}")
    if backend == "torch" and precision not in (AUTO, "fp32"):
        raise InputError(f"--precision {precision} picks an ONNX graph; --backend torch runs the checkpoints in "
                         "fp32 (use --backend onnx)")


def runs_on_cpu(device: str) -> bool:
    """Whether an ONNX Runtime session for --device auto|cpu|cuda runs on the CPU: cpu, or auto without a
    usable GPU or without a GPU provider in this onnxruntime build (cuda never falls back: it fails)."""
    if device == "cpu":
        return True
    if device == "auto":
        return not (cuda_gpu_usable() and has_cuda_provider())
    return False


def listed_file(folder: str | Path, model: str, backend: str, device: str, precision: str = AUTO) -> Path:
    """The file of a model the weights folder lists that `backend` runs on --device `device`: its checkpoint
    (torch), or its ONNX graph at `precision` (`core.manifest.model_file`; auto takes the int8 graph where
    `int8_preferred` when the session will run on the CPU, `runs_on_cpu`). InputError as `model_file`."""
    fmt = "onnx" if backend == "onnx" else "checkpoints"
    return model_file(folder, model, fmt, precision, cpu=fmt == "onnx" and runs_on_cpu(device))


def _open_listed(folder: Path, manifest: dict, model: str, kind: str, backend: str, device: str, precision: str,
                 threads: int | None, log: Log) -> Backend:
    """The backend of a model the weights folder lists; an ONNX graph older than the folder's checkpoint
    of the same model is said (`core.freshness`)."""
    path = listed_file(folder, model, backend, device, precision)
    loaded = create_backend(backend, path, device, expect_kind=kind, threads=threads, log=log)
    checkpoint = (manifest.get("checkpoints") or {}).get(model)
    if backend == "onnx" and checkpoint:
        note = graph_out_of_date(path, loaded.meta, folder / checkpoint)
        if note:
            log(f"warning: {note}")
    return loaded


def _open_trained(source: WeightsSource, device: str, threads: int | None, log: Log, landmark_model: str | None,
                  detector: str | None) -> Backend:
    """A training checkpoint given as --weights, with torch; InputError when an option picks the same slot."""
    trained = create_backend("torch", source.checkpoint, device, threads=threads, log=log)
    kind = trained.meta.kind
    if kind == "landmarks" and landmark_model:
        raise InputError(f"--landmark-model {landmark_model}: --weights {source.checkpoint} is a landmark model "
                         "already; give one of them")
    wanted = None if detector is None else detector_model_name({}, detector)
    if kind != "landmarks" and detector is not None and wanted != (BOX_MODEL if kind == "box" else trained.meta.model):
        raise InputError(f"--detector {detector}: --weights {source.checkpoint} is a {kind} model "
                         f"({trained.meta.model}); give one of them")
    other = "face detector" if kind == "landmarks" else "landmark model"
    log(f"{source.checkpoint}: a training checkpoint ({kind} {trained.meta.model}), run with torch; the "
        f"{other} from {source.folder}")
    return trained


def check_listed_precision(weights_dir: str | Path | None, backend: str, landmark_model: str | None,
                           detector: str | None, precision: str) -> None:
    """Before any model opens (a pool's workers load them each): InputError when the weights folder's
    manifest lacks a `precision` graph of a model the run would load (`core.manifest.check_run_precision`),
    or names no such model. A checkpoint given as --weights is checked as it loads."""
    if backend != "onnx" or precision == AUTO:
        return
    source = weights_source(weights_dir)
    if source.checkpoint is not None:
        return
    manifest = read_manifest(source.folder)
    check_run_precision(manifest, [detector_model_name(manifest, detector),
                                   landmark_model_name(manifest, landmark_model, "onnx")], precision)


def open_models(weights_dir: str | Path | None, backend: str = "onnx", device: str = "auto",
                landmark_model: str | None = None, threads: int | None = None,
                log: Log | None = None, detector: str | None = None, precision: str = AUTO) -> tuple[Backend, Backend]:
    """The (face detector, landmark) backends of a --weights value (`tracker.weights_source`: a weights
    folder, whose manifest names them; or a training run folder or checkpoint, which replaces the model of
    its kind, run with torch, the other one coming from the shipped weights; None: the shipped weights).
    `detector` is a --detector name (`core.manifest.detector_model_name`: None for the manifest's
    default); `precision` which ONNX graph of each model runs (`core.manifest.graph_table`: 'auto', 'fp32',
    'fp16', 'int8'). The first backend is a multi-face detector (kind "detector") or the box regressor
    (kind "box"). An ONNX graph older than its checkpoint beside it is said through `log`, once per model.
    InputError / MetadataError for missing or wrong weights, an option they cannot serve."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    check_precision(backend, precision)
    said: list[str] = []

    def once(line: str) -> None:  # the device fallback is said once, not once per model
        if log and line not in said:
            said.append(line)
            log(line)

    source = weights_source(weights_dir)
    trained = None if source.checkpoint is None else _open_trained(source, device, threads, once, landmark_model,
                                                                   detector)
    manifest = read_manifest(source.folder)
    fmt = "onnx" if backend == "onnx" else "checkpoints"
    args = (backend, device, precision, threads, once)
    finder = None if trained is not None and trained.meta.kind != "landmarks" else \
        detector_model_name(manifest, detector)
    name = None if trained is not None and trained.meta.kind == "landmarks" else \
        landmark_model_name(manifest, landmark_model, fmt)
    if backend == "onnx":  # one error for the run, whose advice suits both models
        check_run_precision(manifest, [m for m in (finder, name) if m is not None], precision)
    if finder is None:
        box = trained
    else:
        box = _open_listed(source.folder, manifest, finder, "box" if finder == BOX_MODEL else "detector", *args)
    landmarks = trained if name is None else _open_listed(source.folder, manifest, name, "landmarks", *args)
    return box, landmarks
