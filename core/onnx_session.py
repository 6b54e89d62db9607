"""The one way an ONNX Runtime session is made, and the one check of a graph against its metadata.

Every session in the project comes from `open_session`: the runtime's ONNX backend, export's checks
and the benchmark alike, so they share providers, threads and spinning, and the latency `facetrack
export` prints is the runtime's. `graph_meta` is the metadata check; export also applies it to graphs
it reads with the `onnx` package (fp16 graphs ONNX Runtime's CPU provider may be unable to load).

onnxruntime is imported inside the functions, never at module import; torch never.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.devices import Log, cuda_gpu_usable, default_threads, resolve_device, tensorrt_loadable
from core.errors import InputError, first_line
from core.meta import MetadataError, ModelMeta

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
SPINNING_KEY = "session.intra_op.allow_spinning"

Dim = Any  # a graph dimension: an int when fixed, a name or None when dynamic


@dataclass(frozen=True)
class OnnxSession:
    """An ONNX Runtime session with the metadata of its graph."""

    session: Any  # onnxruntime.InferenceSession
    meta: ModelMeta
    path: Path
    device: str  # 'cpu' | 'cuda': what --device resolved to
    providers: tuple[str, ...]  # the providers the session really runs on, best first


def graph_meta(props: dict[str, str], input_shapes: Sequence[Sequence[Dim]], output_shape: Sequence[Dim],
               source: str) -> ModelMeta:
    """The facetrack ModelMeta of a graph, checked against the graph's inputs and first output.

    props: the graph's metadata_props; input_shapes: one shape per graph input (initializers excluded);
    output_shape: the first output's shape. Dimensions that are not ints are dynamic and match anything.
    A facetrack graph has one NCHW input of 3 x input_size x input_size and an output row of 5 values
    (box: x1,y1,x2,y2,presence_logit) or 2 per point (landmarks). MetadataError (an InputError) when
    the metadata is missing or malformed or disagrees with the graph.
    """
    meta = ModelMeta.from_props(props, source=source)
    if len(input_shapes) != 1:
        raise MetadataError(f"{source}: expected one input, the graph has {len(input_shapes)}")
    shape = [d if isinstance(d, int) else (d or "?") for d in input_shapes[0]]
    expected = [3, meta.input_size, meta.input_size]
    if len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected)):
        raise MetadataError(f"{source}: input shape {shape} disagrees with its metadata "
                            f"(NCHW, 3x{meta.input_size}x{meta.input_size})")
    width = output_shape[-1] if len(output_shape) else None
    per_row = meta.output_width
    if isinstance(width, int) and width != per_row:
        raise MetadataError(f"{source}: a {meta.kind} model with {width} outputs per row; expected {per_row}")
    return meta


def has_cuda_provider() -> bool:
    """True when this onnxruntime build offers the CUDA provider (onnxruntime-gpu)."""
    import onnxruntime as ort

    return CUDA in ort.get_available_providers()


def onnx_providers(device: str) -> list:
    """ONNX Runtime providers for a resolved device, best first.

    cpu: the CPU provider. cuda: TensorRT (when its library loads; engines cached under
    $XDG_CACHE_HOME/facetrack/tensorrt), then CUDA, then CPU for what they cannot run. InputError when
    the build has no GPU provider at all.
    """
    import onnxruntime as ort

    if device != "cuda":
        return [CPU]
    available = ort.get_available_providers()
    providers: list = []
    if TENSORRT in available and tensorrt_loadable():
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facetrack" / "tensorrt"
        providers.append((TENSORRT, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}))
        cache.mkdir(parents=True, exist_ok=True)
    if CUDA in available:
        providers.append(CUDA)
    if not providers:
        raise InputError("--device cuda: this onnxruntime build has no CUDA provider (install onnxruntime-gpu)")
    return providers + [CPU]


def session_options(threads: int | None = None):
    """Session options every facetrack session uses.

    `threads` intra-op threads (None: `default_threads()`), one inter-op thread, sequential execution,
    no spinning (spinning workers would burn the cores capture and rendering need), errors-only logs
    (provider fallbacks are reported by us, once).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry(SPINNING_KEY, "0")
    return options


def open_session(path: str | Path, device: str = "cpu", *, threads: int | None = None,
                 log: Log | None = None) -> OnnxSession:
    """Open a facetrack ONNX graph on ONNX Runtime for --device auto|cpu|cuda.

    threads: intra-op threads (None: `default_threads()`); log: where one-line device fallbacks are said.
    Errors (all InputError, one line): an unknown device or cuda without a usable GPU or GPU provider
    (`resolve_device`, `onnx_providers`); a file ONNX Runtime cannot load ("not a loadable ONNX model");
    metadata missing or disagreeing with the graph (MetadataError, `graph_meta`); --device cuda when the
    session fell back to the CPU provider (with auto: one `log` line and the CPU session).
    """
    import onnxruntime as ort

    path = Path(path)
    resolved = resolve_device(device, cuda_gpu_usable(), log)
    providers = onnx_providers(resolved)
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(threads), providers=providers)
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile...: all mean "not a usable graph"
        raise InputError(f"{path}: not a loadable ONNX model ({first_line(exc)}); re-export it with "
                         "`facetrack export` or point --weights at a good folder") from None
    meta = graph_meta(dict(session.get_modelmeta().custom_metadata_map),
                      [i.shape for i in session.get_inputs()], session.get_outputs()[0].shape, str(path))
    running = tuple(session.get_providers())
    if resolved == "cuda" and running[0] == CPU:
        if device == "cuda":
            raise InputError(f"--device cuda: ONNX Runtime could not start its CUDA provider for {path} "
                             "(CUDA/cuDNN libraries missing?); use --device cpu")
        if log:
            log("ONNX Runtime could not start its CUDA provider; running on CPU")
    return OnnxSession(session, meta, path, resolved, running)
