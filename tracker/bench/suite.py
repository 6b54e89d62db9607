"""The whole benchmark: for each backend x device, the scenarios asked for (`SCENARIOS`, all by default):

- "pipeline": models alone, stages, end-to-end variants, live latency (the one-face source);
- "faces": the tracker on composed clips with 1, 2, 4, 8 faces in view (`tracker.bench.faces`);
- "detectors": the multi-face detector against the course project's box regressor, per run and on the
  one-face source end to end (`tracker.bench.detectors`).

Every tracker is built as `facetrack video` builds it, with the face finder `--detector` names (default:
the manifest's) and `--max-faces`. Repeated measurements are interleaved across repeats (repeat 1 of
every variant, then repeat 2, ...), so slow drift of a shared machine's load spreads over all variants
instead of favouring one.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import FacetrackError, InputError
from core.manifest import BOX_MODEL, REGRESSOR, detector_model_name, landmark_model_name, read_manifest
from tracker.backends import (
    BACKENDS,
    Backend,
    create_backend,
    cuda_gpu_usable,
    cuda_unsupported,
    default_threads,
    listed_file,
    open_models,
)
from tracker.bench import detectors, faces, measure, system
from tracker.bench.composed import DEFAULT_FACES, DEFAULT_SIZE
from tracker.detect import DETECTORS
from tracker.pipeline import DEFAULT_DETECT_EVERY, Tracker, max_faces_for
from tracker.sources import Source
from tracker.sources.synthetic import is_synthetic, open_video_spec, parse_synthetic

SCHEMA = "facetrack-bench/1"
DEVICES = ("cpu", "cuda")
SYNTHETIC_SPEC = "synthetic?width=640&height=480"
LIVE_FPS = 30.0
SCENARIOS = ("pipeline", "faces", "detectors")
Log = Callable[[str], None]


def default_source() -> Path:
    """The shipped demo clip (640x480, 30 fps) at the repository root."""
    return Path(__file__).resolve().parent.parent.parent / "demo" / "demo.mp4"


def source_spec(source: str | None, frames: int) -> str:
    """SOURCE as given, `synthetic` as a 640x480 synthetic clip of at least `frames` frames."""
    spec = str(default_source()) if source is None else str(source)
    if spec == "synthetic":
        spec = SYNTHETIC_SPEC
    if is_synthetic(spec) and "frames=" not in spec:
        spec += ("&" if "?" in spec else "?") + f"frames={max(1, frames)}"
    return spec


def open_bench_source(source: str | None, frames: int) -> Source:
    """Open the benchmark's source (a fresh one per run: runs close their source)."""
    return open_video_spec(source_spec(source, frames))


@dataclass
class BenchConfig:
    """What to measure, and how long."""

    source: str | None = None  # None: the demo clip
    weights: Path = Path("weights")
    backends: tuple[str, ...] = BACKENDS
    devices: tuple[str, ...] = DEVICES
    frames: int = 300
    warmup: int = 20
    batches: tuple[int, ...] = (1, 8, 32)
    repeat: int = 3
    live_frames: int = 150
    landmark_model: str | None = None
    detect_every: int = DEFAULT_DETECT_EVERY
    threads: int | None = None  # model intra-op threads; None: the runtime's default
    cv_threads: int | None = None  # cv2.setNumThreads for the run; None: leave OpenCV's setting
    detector: str | None = None  # --detector: "centernet" or "regressor"; None: the manifest's default
    precision: str = "auto"  # --precision: which ONNX graph of each model (core.manifest.graph_table)
    max_faces: int | None = None  # --max-faces: None the source's default (tracker.pipeline.max_faces_for), 0 none
    scenarios: tuple[str, ...] = SCENARIOS
    faces: tuple[int, ...] = DEFAULT_FACES  # faces in view of the composed clips
    faces_size: tuple[int, int] = DEFAULT_SIZE  # width, height of the composed clips


def unavailable(backend: str, device: str, manifest: dict) -> str | None:
    """Why backend x device cannot run here, or None. Never asks ONNX Runtime for CUDA without a GPU."""
    table = manifest.get("onnx" if backend == "onnx" else "checkpoints") or {}
    if not table:
        return f"the weights manifest lists no {'ONNX files' if backend == 'onnx' else 'checkpoints'}"
    if backend == "torch" and importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if device == "cuda":
        if not cuda_gpu_usable():
            return "no usable CUDA GPU (driver missing or no device)"
        return cuda_unsupported(backend)
    return None


def _weights_header(folder: Path, manifest: dict, landmark: str | None, finder: str = BOX_MODEL) -> dict:
    models = {}  # "box": the face finder the trackers use (the box regressor or a multi-face detector)
    for role, name in (("box", finder), ("landmarks", landmark)):
        files = {}
        for fmt in ("onnx", "onnx_fp16", "onnx_int8", "checkpoints"):
            rel = (manifest.get(fmt) or {}).get(name) if name else None
            path = folder / rel if rel else None
            if path is not None and path.is_file():
                files[fmt] = {"file": rel, "bytes": path.stat().st_size, "sha256_16": system.file_digest(path)}
        models[role] = {"name": name, "files": files}
    return {"dir": str(folder.resolve()), "models": models}


def _header(cfg: BenchConfig, spec: str, source: Source, manifest: dict, landmark: str | None,
            finder: str = BOX_MODEL) -> dict:
    import cv2

    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["facetrack", *sys.argv[1:]]) if sys.argv else "",
        "cpu": system.cpu_info(),
        "gpu": system.gpu_info(),
        "platform": sys.platform,
        "libraries": system.library_versions(torch_used=False),
        "threads": {"opencv": cv2.getNumThreads(), "model_intra_op": cfg.threads or default_threads()},
        "load_average_start": system.load_average(),
        "weights": _weights_header(cfg.weights, manifest, landmark, finder),
        "source": {"spec": spec, "describe": source.describe(), "width": source.width, "height": source.height,
                   "fps": source.fps, "frame_count": source.frame_count, "live": source.live},
        "settings": {"frames": cfg.frames, "warmup": cfg.warmup, "repeat": cfg.repeat, "batches": list(cfg.batches),
                     "live_frames": cfg.live_frames, "detect_every": cfg.detect_every,
                     "backends": list(cfg.backends), "devices": list(cfg.devices),
                     "scenarios": list(cfg.scenarios), "detector": _finder_label(finder),
                     "max_faces": cfg.max_faces, "faces": list(cfg.faces), "faces_size": list(cfg.faces_size)},
    }


def run_bench(cfg: BenchConfig, log: Log | None = None) -> dict:
    """Measure every requested backend x device; the report as a JSON-ready dict."""
    import cv2

    if cfg.frames < 1 or cfg.repeat < 1 or cfg.warmup < 0 or cfg.live_frames < 0:
        raise InputError("--frames and --repeat must be at least 1, --warmup and --live-frames at least 0")
    if (cfg.threads is not None and cfg.threads < 1) or (cfg.cv_threads is not None and cfg.cv_threads < 0):
        raise InputError("--threads must be at least 1 and --cv-threads at least 0")
    _check_scenarios(cfg)
    cv_before = cv2.getNumThreads()
    if cfg.cv_threads is not None:
        cv2.setNumThreads(cfg.cv_threads)
    try:
        return _run_bench(cfg, log or (lambda line: None))
    finally:
        cv2.setNumThreads(cv_before)


def _run_bench(cfg: BenchConfig, say: Log) -> dict:
    try:
        manifest = read_manifest(cfg.weights)
    except InputError as exc:
        hint = "" if "--weights" in str(exc) else " (pass --weights DIR: a folder made by `facetrack export`)"
        raise InputError(f"{exc}{hint}") from None
    try:
        landmark = landmark_model_name(manifest, cfg.landmark_model)
    except InputError:
        landmark = None
    finder = detector_model_name(manifest, cfg.detector)  # InputError for an unknown --detector
    spec = source_spec(cfg.source, cfg.frames)
    probe = open_video_spec(spec)  # fails fast on a bad source, before any model is loaded
    try:
        header = _header(cfg, spec, probe, manifest, landmark, finder)
    finally:
        probe.close()
    pairs = [(backend, device) for backend in cfg.backends for device in cfg.devices]
    reasons = {pair: unavailable(*pair, manifest) for pair in pairs}
    if all(reasons.values()):  # said before any progress line: a bad request is one line
        raise InputError("nothing to benchmark (" + "; ".join(f"{b}/{d}: {r}" for (b, d), r in reasons.items()) + ")")
    say(header["source"]["describe"])
    runs = []
    for backend, device in pairs:
        reason = reasons[(backend, device)]
        if reason is None:
            system.reset_peak_memory()
            try:
                box, landmarks = open_models(cfg.weights, backend, device, cfg.landmark_model, cfg.threads,
                                             detector=cfg.detector, precision=cfg.precision)
            except FacetrackError as exc:
                reason = str(exc)
        if reason is not None:
            say(f"{backend}/{device}: skipped ({reason})")
            runs.append({"backend": backend, "device": device, "status": "skipped", "reason": reason})
            continue
        runs.append(_bench_backend(cfg, spec, header["source"]["live"], backend, device, box, landmarks, say,
                                   manifest))
        for role, loaded in (("box", box), ("landmarks", landmarks)):
            model = header["weights"]["models"][role]
            model.setdefault("architecture", loaded.meta.model)
            model.setdefault("input_size", loaded.meta.input_size)
        del box, landmarks
    if not any(r["status"] == "ok" for r in runs):
        said = "; ".join(f"{r['backend']}/{r['device']}: {r['reason']}" for r in runs)
        raise InputError(f"nothing to benchmark ({said})")
    torch_used = any(r["status"] == "ok" and r["backend"] == "torch" for r in runs)
    header["libraries"] = system.library_versions(torch_used)
    if torch_used:
        header["threads"]["torch"] = sys.modules["torch"].get_num_threads()
    header["load_average_end"] = system.load_average()
    return {"schema": SCHEMA, "header": header, "runs": runs, "memory": system.memory_mib()}


def _check_scenarios(cfg: BenchConfig) -> None:
    unknown = [s for s in cfg.scenarios if s not in SCENARIOS]
    if unknown or not cfg.scenarios:
        raise InputError(f"--scenario {','.join(cfg.scenarios)}: expected all or some of {', '.join(SCENARIOS)}")
    if cfg.detector is not None and cfg.detector not in DETECTORS:
        raise InputError(f"--detector {cfg.detector}: expected one of {', '.join(DETECTORS)}")
    if not cfg.faces or min(cfg.faces) < 1 or max(cfg.faces) > 64:
        raise InputError(f"--faces {','.join(map(str, cfg.faces))}: expected face counts from 1 to 64, like 1,2,4,8")
    if min(cfg.faces_size) < 32:
        raise InputError(f"--faces-size {cfg.faces_size[0]}x{cfg.faces_size[1]}: expected at least 32x32")
    max_faces_for(cfg.max_faces, "video")  # InputError for a negative --max-faces


def _finder_label(finder: str) -> str:
    """The --detector name of a manifest's face finder: "regressor" for the box model."""
    return REGRESSOR if finder == BOX_MODEL else finder


def _tracker(box: Backend, landmarks: Backend, detect_every: int, live: bool, max_faces: int | None = None) -> Tracker:
    # As `facetrack video` builds it: smoothing and live mode only for live sources, --max-faces as given
    # (None: no limit for files, DEFAULT_LIVE_MAX_FACES for live sources; 0: no limit).
    mode = "live" if live else "video"
    return Tracker(box, landmarks, detect_every=detect_every, smooth=live, mode=mode,
                   max_faces=max_faces_for(max_faces, mode))


def _finders(cfg: BenchConfig, manifest: dict, backend: str, device: str, box: Backend
             ) -> tuple[dict[str, Backend], dict[str, str]]:
    """Both face finders for the detectors scenario ({--detector name: backend}; the one loaded already
    is reused), and {name: why it is missing}."""
    fmt = "onnx" if backend == "onnx" else "checkpoints"
    loaded = _finder_label(detector_model_name(manifest, cfg.detector))
    found: dict[str, Backend] = {}
    skipped: dict[str, str] = {}
    for name in DETECTORS:
        if name == loaded:
            found[name] = box
            continue
        model = detector_model_name(manifest, name)
        tables = (fmt, "onnx_fp16") if fmt == "onnx" else (fmt,)
        if not any((manifest.get(table) or {}).get(model) for table in tables):
            skipped[name] = f"the weights manifest lists no {fmt} file for {model!r}"
            continue
        try:
            path = listed_file(cfg.weights, model, backend, device, cfg.precision)  # as video runs it
            found[name] = create_backend(backend, path, device,
                                         expect_kind="box" if model == BOX_MODEL else "detector", threads=cfg.threads)
        except FacetrackError as exc:
            skipped[name] = str(exc)
    return found, skipped


def _file_digest(backend: Backend) -> dict | None:
    """The model file a backend loaded: its name and sha256 prefix (None: not from a file)."""
    path = getattr(backend, "path", None)
    if path is None or not Path(path).is_file():
        return None
    return {"file": Path(path).name, "sha256_16": system.file_digest(Path(path))}


def _bench_backend(cfg: BenchConfig, spec: str, live: bool, backend: str, device: str, box: Backend,
                   landmarks: Backend, say: Log, manifest: dict | None = None) -> dict:
    tag = f"{backend}/{device}"
    entry: dict = {"backend": backend, "device": device, "status": "ok",
                   "names": {"box": box.name, "landmarks": landmarks.name},
                   "providers": {"box": getattr(box, "providers", None),
                                 "landmarks": getattr(landmarks, "providers", None)},
                   "files": {"box": _file_digest(box), "landmarks": _file_digest(landmarks)}}
    with tempfile.TemporaryDirectory(prefix="facetrack-bench-") as tmp:
        if "pipeline" in cfg.scenarios:
            _pipeline(cfg, spec, live, tag, box, landmarks, say, entry, Path(tmp))
        clips = Path(tmp) / "faces"
        if "faces" in cfg.scenarios:
            say(f"{tag}: {', '.join(map(str, cfg.faces))} faces in view ({cfg.faces_size[0]}x{cfg.faces_size[1]})")
            clips.mkdir()
            entry["faces"] = faces.faces_scenario(
                lambda: open_video_spec(spec),
                lambda lm: _tracker(box, lm, cfg.detect_every, False, cfg.max_faces), landmarks,
                counts=cfg.faces, size=cfg.faces_size, frames=cfg.frames, repeat=cfg.repeat, warmup=cfg.warmup,
                folder=clips, log=lambda line: say(f"{tag}: {line}"))
            entry["faces"]["detector"] = _finder_label(detector_model_name(manifest or {}, cfg.detector))
            entry["faces"]["detect_every"] = cfg.detect_every
        if "detectors" in cfg.scenarios:
            finders, skipped = _finders(cfg, manifest or {}, backend, device, box)
            sets = {}
            if "faces" in entry:
                most = max(entry["faces"]["layouts"], key=lambda layout: layout["faces"])
                path = clips / most["clip"]["file"]
                sets[f"composed, {most['faces']} faces"] = lambda: open_video_spec(str(path))
            say(f"{tag}: face finders: {', '.join(finders)}"
                + "".join(f"; {name} skipped ({why})" for name, why in skipped.items()))
            entry["detectors"] = detectors.detectors_scenario(
                finders, lambda finder: _tracker(finder, landmarks, cfg.detect_every, live, cfg.max_faces),
                lambda: open_video_spec(spec), detect_every=cfg.detect_every, frames=cfg.frames, repeat=cfg.repeat,
                warmup=cfg.warmup, skipped=skipped, frame_sets=sets, log=lambda line: say(f"{tag}: {line}"))
            entry["detectors"]["files"] = {name: _file_digest(b) for name, b in finders.items()}
    entry["memory"] = system.memory_mib()
    return entry


def _pipeline(cfg: BenchConfig, spec: str, live: bool, tag: str, box: Backend, landmarks: Backend, say: Log,
              entry: dict, tmp: Path) -> None:
    """The one-face scenario: models alone, stages, end-to-end variants, live latency (into `entry`)."""
    say(f"{tag}: models alone ({box.name})")
    entry["models"] = {role: measure.model_benchmark(b, cfg.batches, cfg.frames, cfg.warmup)
                       for role, b in (("box", box), ("landmarks", landmarks))}
    modes = {"tracking": cfg.detect_every, "detect-every-frame": 1}
    out = tmp / "out.mp4"

    def source() -> Source:
        return open_video_spec(spec)

    if cfg.warmup:
        measure.stage_pass(source(), _tracker(box, landmarks, cfg.detect_every, live, cfg.max_faces), cfg.warmup, out)
    say(f"{tag}: stages")
    stages = {}
    for mode, every in modes.items():
        passes = [measure.stage_pass(source(), _tracker(box, landmarks, every, live, cfg.max_faces), cfg.frames, out)[0]
                  for _ in range(cfg.repeat)]
        stages[mode] = measure.summarize_stages(passes, output=True)
        stages[mode]["without_output"] = measure.summarize_stages(passes, output=False)
    entry["stages"] = stages
    say(f"{tag}: end to end, 8 variants x {cfg.repeat}")
    variants = [(threaded, mode, output) for threaded in (True, False) for mode in modes
                for output in (True, False)]
    runs: dict[tuple, list[dict]] = {v: [] for v in variants}
    for _ in range(cfg.repeat):
        for v in variants:
            threaded, mode, output = v
            runs[v].append(measure.end_to_end_run(source(), _tracker(box, landmarks, modes[mode], live, cfg.max_faces),
                                                  cfg.frames, threaded, out if output else None))
    entry["end_to_end"] = [_variant(v, runs[v], modes, stages) for v in variants]
    if cfg.live_frames:
        say(f"{tag}: live latency, {cfg.live_frames} frames at {LIVE_FPS:g} fps x {cfg.repeat}")
        live_spec = f"{SYNTHETIC_SPEC}&fps={LIVE_FPS:g}&frames={cfg.live_frames}&live=1"
        lives = [measure.live_run(parse_synthetic(live_spec, live=True),
                                  _tracker(box, landmarks, cfg.detect_every, True, cfg.max_faces), out)
                 for _ in range(cfg.repeat)]
        interval = 1000.0 / LIVE_FPS
        p50 = measure.spread([r["output_p50_ms"] for r in lives])
        entry["live"] = {
            "source": live_spec, "threaded": True, "tracking": True, "output": "mp4",
            "capture_to_output_ms": {"p50": p50, "p95": measure.spread([r["output_p95_ms"] for r in lives])},
            "capture_to_render_start_p50_ms": measure.spread([r["render_start_p50_ms"] for r in lives]),
            "frame_intervals_p50": round(p50["median"] / interval, 2),
            "fps": measure.spread([r["fps"] for r in lives], 2),
            "dropped": [r["dropped"] for r in lives], "captured": [r["captured"] for r in lives],
        }


def _variant(v: tuple, results: list[dict], modes: dict, stages: dict) -> dict:
    threaded, mode, output = v
    fps = measure.spread([r["fps"] for r in results], 2)
    st = stages[mode] if output else stages[mode]["without_output"]
    bound = st["bound_fps"]
    frames = [r["frames"] for r in results]
    return {
        "name": f"{'threaded' if threaded else 'sequential'} {mode} {'mp4' if output else 'no-output'}",
        "threaded": threaded, "tracking": mode == "tracking", "detect_every": modes[mode],
        "output": "mp4" if output else "none",
        "fps": fps,
        "cpu_ms_per_frame": measure.spread([r["cpu_ms_per_frame"] for r in results], 3),
        "frames": int(sorted(frames)[len(frames) // 2]),
        "latency_ms": {"p50": measure.spread([r["latency_p50_ms"] for r in results], 2),
                       "p95": measure.spread([r["latency_p95_ms"] for r in results], 2)},
        "box_calls_per_frame": round(sum(r["box_calls"] for r in results) / max(1, sum(frames)), 3),
        "stage_ms_in_run": {k: round(float(sorted(r["stage_ms"][k] for r in results)[len(results) // 2]), 4)
                            for k in results[0]["stage_ms"]},
        "slowest_stage": st["slowest"], "bound_fps": bound,
        "efficiency": round(fps["median"] / bound, 3) if bound else None,
    }

