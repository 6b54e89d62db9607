"""`facetrack bench --vs mediapipe`: `facetrack video` against a peer tracker doing the same job, whole processes.

Both jobs read the same clip, track one face, draw on every frame and write an mp4. Each runs as its own
process, the two alternating (in ABBA order, after one unmeasured run of each), and the parent measures
each process: wall seconds, CPU seconds (user + sys of that child alone, `os.wait4`), peak resident memory.
The frame count and the steady-state frames/s (first read to last frame written, models loaded) come from
the job itself: `facetrack video`'s summary line, the peer script's JSON line. The peer runs from its own
virtual environment (`--vs-python`): it is never a dependency of facetrack (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import FacetrackError, InputError, first_line
from core.pathnames import shown
from tracker.bench.system import cpu_info, library_versions, load_average

SCHEMA = "facetrack-bench-vs/1"
PEERS = ("mediapipe",)
PYTHON_ENV = "FACETRACK_MEDIAPIPE_PYTHON"  # default of --vs-python
PEER_WARMUP_FRAMES = 10  # frames the peer leaves out of its own `steady_fps` (reported, not in the ratios)
PROBE_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 1800.0
# What the peer Python must import: mediapipe's FaceMesh (the `solutions` API, gone in mediapipe 1.x) and cv2.
PROBE = "import cv2, mediapipe; from mediapipe.python.solutions import face_mesh; print(mediapipe.__version__)"
SUMMARY = re.compile(r"(\d+) frames in [\d.]+ s \(([\d.]+) FPS(?:, CPU ([\d.]+) ms/frame)?")
MIB_PER_KIB = 1024.0

Log = Callable[[str], None]


@dataclass
class ProcessRun:
    """One child process as the parent measured it: `wall_s` from start to reaped (seconds), `user_s`,
    `sys_s` and `cpu_s` = user + sys (CPU seconds of that child and its waited-for children),
    `max_rss_mib` its peak resident memory (MiB), its exit code and what it wrote."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mib: float
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def measure_process(argv: Sequence[str], timeout_s: float = RUN_TIMEOUT_S, cwd: str | Path | None = None
                    ) -> ProcessRun:
    """Run `argv` to its end and measure it (`ProcessRun`). The CPU time is the child's own resource usage
    (`os.wait4`), so other work of this process or its other children never counts. Killed after `timeout_s`
    seconds (its returncode then says so); Ctrl+C kills and reaps it, then goes on as KeyboardInterrupt."""
    argv = [str(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall_s = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode("utf-8", "replace") for f in (out, err))
    rss = usage.ru_maxrss / (MIB_PER_KIB * MIB_PER_KIB if sys.platform == "darwin" else MIB_PER_KIB)
    return ProcessRun(argv, proc.returncode, wall_s, usage.ru_utime, usage.ru_stime, rss, stdout, stderr)


def peer_script(peer: str = "mediapipe") -> Path:
    """The standalone job script of `peer` (tracker/bench/peers/PEER_job.py), run by the peer's Python."""
    return Path(__file__).resolve().parent / "peers" / f"{peer}_job.py"


def check_peer(peer: str | None, python: str | Path | None) -> str:
    """The peer's version, after checking `--vs PEER` and that `python` imports it; InputError otherwise."""
    if peer not in PEERS:
        raise InputError(f"--vs {peer}: expected one of {', '.join(PEERS)}")
    if python is None:
        raise InputError(f"--vs {peer} needs --vs-python PATH (or {PYTHON_ENV}): the Python of a virtual "
                         "environment with mediapipe 0.10.21, see docs/benchmarks.md")
    where = f"--vs-python {shown(python)}"
    if not Path(python).is_file():
        raise InputError(f"{where}: no such file")
    try:
        probe = subprocess.run([str(python), "-I", "-c", PROBE], capture_output=True, text=True,
                               timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"{where}: cannot run it ({first_line(exc)})") from None
    lines = probe.stdout.strip().splitlines()
    if probe.returncode != 0 or not lines:
        errors = probe.stderr.strip().splitlines()
        why = errors[-1][:200] if errors else f"exit code {probe.returncode}"
        raise InputError(f"{where}: cannot import mediapipe's FaceMesh ({why}); set up its virtual environment "
                         "as docs/benchmarks.md says")
    return lines[-1].strip()


@dataclass
class VersusConfig:
    """What `facetrack bench --vs` runs: the clip, `runs` measured processes of each job, and the options
    `facetrack video` gets (`video_args`, e.g. --weights, --device cpu)."""

    clip: Path
    peer: str
    python: Path
    runs: int = 5
    video_args: list[str] = field(default_factory=list)
    peer_version: str = ""


def facetrack_figures(run: ProcessRun) -> dict:
    """Frames and steady-state fps from `facetrack video`'s summary line on stderr."""
    match = None
    for match in SUMMARY.finditer(run.stderr):
        pass
    if match is None:
        raise FacetrackError(f"facetrack video wrote no summary line: {_last_line(run.stderr)}")
    frames = int(match.group(1))
    run_cpu = float(match.group(3)) if match.group(3) else None
    return {"frames": frames, "steady_fps": float(match.group(2)),
            "run_cpu_ms_per_frame": round(run_cpu, 3) if run_cpu is not None else None}


def peer_figures(run: ProcessRun, peer: str) -> dict:
    """Frames and steady-state fps from the peer script's JSON line (its last line on stdout)."""
    lines = run.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
        run_cpu = data.get("run_cpu_s")
        return {"frames": int(data["frames"]), "steady_fps": float(data["run_fps"]),
                "run_cpu_ms_per_frame": round(1000.0 * run_cpu / int(data["frames"]), 3)
                if run_cpu is not None and data["frames"] else None,
                "steady_fps_after_warmup": data.get("steady_fps"), "faces": data.get("faces"),
                "versions": data.get("versions", {})}
    except (IndexError, ValueError, KeyError, TypeError):
        raise FacetrackError(f"the {peer} job wrote no JSON line: {_last_line(run.stderr)}") from None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(nothing on stderr)"


def _record(tool: str, round_no: int, run: ProcessRun, job: dict) -> dict:
    frames = job["frames"]
    return {"tool": tool, "round": round_no, "frames": frames, "steady_fps": round(job["steady_fps"], 3),
            "process_fps": round(frames / run.wall_s, 3) if run.wall_s > 0 else 0.0,
            "wall_s": round(run.wall_s, 4), "cpu_s": round(run.cpu_s, 4), "user_s": round(run.user_s, 4),
            "sys_s": round(run.sys_s, 4), "cpu_ms_per_frame": round(1000.0 * run.cpu_s / frames, 3) if frames else None,
            "max_rss_mib": round(run.max_rss_mib, 1),
            **{k: v for k, v in job.items() if k not in ("frames", "steady_fps")}}


def _median(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return round(statistics.median(values), 4) if values else None


MEDIAN_KEYS = ("frames", "steady_fps", "process_fps", "wall_s", "cpu_s", "cpu_ms_per_frame", "run_cpu_ms_per_frame",
               "max_rss_mib")


def run_versus(cfg: VersusConfig, log: Log = lambda line: None) -> dict:
    """Run both jobs `cfg.runs` times each, alternating, and return the report (SCHEMA): every run, the
    medians per tool, the ratios facetrack/peer, the machine and its load averages before and after."""
    tools = ("facetrack", cfg.peer)
    with tempfile.TemporaryDirectory(prefix="facetrack-vs-") as tmp:
        argv = {"facetrack": [sys.executable, "-m", "facetrack", "video", str(cfg.clip), "--out",
                              str(Path(tmp) / "facetrack.mp4"), *cfg.video_args],
                cfg.peer: [str(cfg.python), "-I", str(peer_script(cfg.peer)), str(cfg.clip),
                           str(Path(tmp) / f"{cfg.peer}.mp4"), "--warmup", str(PEER_WARMUP_FRAMES)]}

        def one(tool: str, round_no: int) -> dict:
            run = measure_process(argv[tool])
            if run.returncode != 0:
                raise FacetrackError(f"the {tool} job failed (exit code {run.returncode}): {_last_line(run.stderr)}")
            job = facetrack_figures(run) if tool == "facetrack" else peer_figures(run, cfg.peer)
            return _record(tool, round_no, run, job)

        log(f"unmeasured first run of each (imports, disk cache), then {cfg.runs} of each, alternating")
        for tool in tools:
            one(tool, 0)
        load_start = load_average()
        records: list[dict] = []
        for round_no in range(1, cfg.runs + 1):
            for tool in tools if round_no % 2 else tools[::-1]:  # ABBA: neither always goes first
                rec = one(tool, round_no)
                records.append(rec)
                log(f"run {round_no}/{cfg.runs} {tool}: {rec['frames']} frames, {rec['steady_fps']:.1f} fps, "
                    f"{rec['cpu_s']:.2f} CPU s in {rec['wall_s']:.2f} s")
        load_end = load_average()
    summary = {tool: {key: _median([r for r in records if r["tool"] == tool], key) for key in MEDIAN_KEYS}
               for tool in tools}
    ft, peer = summary["facetrack"], summary[cfg.peer]

    def ratio(key: str) -> float | None:
        return round(ft[key] / peer[key], 3) if ft[key] and peer[key] else None

    peer_versions = next((r.get("versions") for r in records if r["tool"] == cfg.peer), {}) or {}
    return {"schema": SCHEMA, "peer": cfg.peer, "clip": str(cfg.clip), "runs_per_tool": cfg.runs,
            "header": {"cpu": cpu_info(), "libraries": library_versions(torch_used=False),
                       "peer_libraries": peer_versions or {cfg.peer: cfg.peer_version},
                       "load_average": {"start": load_start, "end": load_end}},
            "argv": {"facetrack": argv["facetrack"][1:], cfg.peer: argv[cfg.peer]},
            "summary": summary,
            "ratios": {"steady_fps": ratio("steady_fps"), "process_fps": ratio("process_fps"),
                       "cpu_s_per_frame": ratio("cpu_ms_per_frame"),
                       "run_cpu_s_per_frame": ratio("run_cpu_ms_per_frame")},
            "runs": records}


def _cell(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_versus(report: dict) -> str:
    """The comparison as a text table: medians per tool and the facetrack/peer ratio."""
    peer = report["peer"]
    header = report["header"]
    s, p = report["summary"]["facetrack"], report["summary"][peer]
    cpu = header["cpu"]
    load = header["load_average"]
    version = header["peer_libraries"].get(peer, "")
    frames = s["frames"] if s["frames"] == p["frames"] else f"{s['frames']} (facetrack) / {p['frames']} ({peer})"
    runs = report["runs_per_tool"]
    lines = [f"facetrack vs {peer} {version}: {report['clip']}, {frames} frames, {runs} run{'s' * (runs != 1)} "
             "each (medians), alternating whole processes",
             f"machine: {cpu['model']}, {cpu['cores_usable']} of {cpu['cores']} cores usable; load average "
             f"(1/5/15 min) {' '.join(map(str, load['start']))} before, {' '.join(map(str, load['end']))} after",
             f"{'':28}{'facetrack':>11}{peer:>11}{'ratio':>8}"]
    rows = (("steady-state frames/s", "steady_fps", 1, report["ratios"]["steady_fps"]),
            ("whole-process frames/s", "process_fps", 1, report["ratios"]["process_fps"]),
            ("CPU ms per frame", "cpu_ms_per_frame", 2, report["ratios"]["cpu_s_per_frame"]),
            ("  of the run (models loaded)", "run_cpu_ms_per_frame", 2, report["ratios"].get("run_cpu_s_per_frame")),
            ("process wall s", "wall_s", 2, None),
            ("process CPU s (user+sys)", "cpu_s", 2, None),
            ("peak RSS MiB", "max_rss_mib", 0, None))
    for label, key, digits, ratio in rows:
        lines.append(f"{label:28}{_cell(s[key], digits):>11}{_cell(p[key], digits):>11}{_cell(ratio, 2):>8}")
    lines.append(f"ratio = facetrack / {peer}: above 1 is faster for frames/s, costlier for CPU per frame")
    return "\n".join(lines)
