"""Reading a benchmark report: a table for people, and two reports side by side with their ratios."""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError
from core.jsonfile import read_json_object

STAGE_LABELS = {"read": "read", "preprocess": "prep", "box_model": "box", "landmark_model": "landm",
                "postprocess": "post", "draw": "draw", "encode": "encode", "untimed": "other"}


def load_report(path: str | Path) -> dict:
    """A report written by `facetrack bench --json`; anything else is an InputError."""
    from tracker.bench.suite import SCHEMA

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    not_report = f"not a facetrack bench report (no \"schema\": \"{SCHEMA}\")"
    report = read_json_object(path, "not JSON", not_report)
    if report.get("schema") != SCHEMA:
        raise InputError(f"{path}: {not_report}")
    return report


def _libs(header: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in header.get("libraries", {}).items())


def _machine(header: dict) -> str:
    cpu = header.get("cpu", {})
    gpu = header.get("gpu", "none")
    gpus = gpu if isinstance(gpu, str) else "; ".join(f"{g['name']} (driver {g['driver']})" for g in gpu)
    return f"{cpu.get('model', '?')}, {cpu.get('cores', '?')} cores ({cpu.get('cores_usable', '?')} usable); GPU {gpus}"


def _load(header: dict) -> str:
    """Load averages at start and end: other work on the machine during the measurement."""
    start = " ".join(str(v) for v in header.get("load_average_start", [])) or "?"
    end = " ".join(str(v) for v in header.get("load_average_end", [])) or "?"
    return f"{start} at start, {end} at end"


def _models(header: dict) -> str:
    parts = []
    for role, m in header.get("weights", {}).get("models", {}).items():
        files = "/".join(f["file"] for f in m.get("files", {}).values()) or "no files"
        size = f", {m['input_size']} px" if "input_size" in m else ""
        parts.append(f"{role} {m.get('name')} ({files}{size})")
    return "; ".join(parts)


def format_header(header: dict) -> list[str]:
    """The lines saying what ran where."""
    s = header.get("settings", {})
    threads = ", ".join(f"{k} {v}" for k, v in header.get("threads", {}).items())
    return [
        f"machine   {_machine(header)}; load average {_load(header)}",
        f"software  {_libs(header)}; threads: {threads}",
        f"weights   {header.get('weights', {}).get('dir')}: {_models(header)}",
        f"source    {header.get('source', {}).get('describe')}",
        f"settings  up to {s.get('frames')} frames/run, warm-up {s.get('warmup')}, repeat {s.get('repeat')} "
        f"(medians, min-max), batches {','.join(str(b) for b in s.get('batches', []))}",
        f"trackers  detector {s.get('detector', 'regressor')}, max faces {_max_faces(s.get('max_faces'))}, detect "
        f"every {s.get('detect_every')}; scenarios {', '.join(s.get('scenarios', ['pipeline']))}",
    ]


def _max_faces(value) -> str:
    return "default" if value is None else ("no limit" if value == 0 else str(value))


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_run(run: dict) -> list[str]:
    """The table of one backend x device."""
    tag = f"[{run['backend']}/{run['device']}]"
    if run["status"] != "ok":
        return [f"{tag} skipped: {run.get('reason')}"]
    providers, files = run.get("providers", {}), run.get("files") or {}
    prov = "; ".join(" ".join(p for p in (k, (files.get(k) or {}).get("file"), ",".join(v)) if p)
                     for k, v in providers.items() if v) or run["names"]["landmarks"]
    lines = [f"{tag} {prov}"]
    if "models" in run:
        lines += _pipeline_lines(run)
    if "faces" in run:
        lines += format_faces(run["faces"])
    if "detectors" in run:
        lines += format_detectors(run["detectors"])
    lines.append(memory_line(run.get("memory", {})))
    return lines


def memory_line(mem: dict) -> str:
    """One memory line of a backend's run: its own peak (VmHWM since the reset before it) and the process
    peak so far, or the process peak alone where a per-backend peak could not be measured."""
    process = f"{_fmt(mem.get('process_peak_rss_mib'), 1)} MiB"
    if mem.get("peak_rss_mib") is None:
        return f"  memory: peak RSS {process} for the whole process so far (no per-backend peak on this system)"
    return (f"  memory: peak RSS {_fmt(mem['peak_rss_mib'], 1)} MiB while this backend ran; the process's peak "
            f"so far, earlier backends included: {process}")


def _pipeline_lines(run: dict) -> list[str]:
    """Models alone, stages, end-to-end variants and live latency of the one-face pipeline scenario."""
    lines = []
    batches = [t["batch"] for t in next(iter(run["models"].values()))["throughput"]]
    lines.append(f"  {'model':<11}{'input':>6}  {'b1 median ms':>12} {'p90 ms':>8}  | items/s "
                 + " ".join(f"{'b' + str(b):>9}" for b in batches))
    for role, m in run["models"].items():
        lat = m["latency_ms"]
        rates = " ".join(f"{t['items_per_s']:>9.1f}" for t in m["throughput"])
        lines.append(f"  {role:<11}{m['input_size']:>6}  {lat['median']:>12.3f} {lat['p90']:>8.3f}  |         {rates}")
    names = list(next(iter(run["stages"].values()))["ms"])
    lines.append(f"  {'stages ms/frame':<19}" + "".join(f"{STAGE_LABELS.get(k, k):>7}" for k in names)
                 + f"{'sum':>8}  slowest -> bound fps")
    for mode, st in run["stages"].items():
        lines.append(f"  {mode:<19}" + "".join(f"{st['ms'][k]:>7.2f}" for k in names)
                     + f"{st['sum_ms']:>8.2f}  {st['slowest']} -> {_fmt(st['bound_fps'], 0)}")
    lines.append(f"  {'end to end':<41}{'fps':>7} {'min-max':>13} {'cpu ms/fr':>10} {'lat p50 ms':>11} "
                 f"{'effic.':>7} {'box/frame':>10}")
    for v in run["end_to_end"]:
        fps = v["fps"]
        cpu = v.get("cpu_ms_per_frame", {}).get("median")
        lines.append(f"  {v['name']:<41}{fps['median']:>7.1f} {fps['min']:>6.1f}-{fps['max']:<6.1f} {_fmt(cpu):>10} "
                     f"{v['latency_ms']['p50']['median']:>11.1f} {_fmt(v['efficiency']):>7} "
                     f"{v['box_calls_per_frame']:>10.2f}")
    live = run.get("live")
    if live:
        p50, p95 = live["capture_to_output_ms"]["p50"], live["capture_to_output_ms"]["p95"]
        lines.append(f"  live 640x480 @ 30 fps (threaded, tracking, draw+mp4): capture->output p50 "
                     f"{p50['median']:.1f} ms ({p50['min']:.1f}-{p50['max']:.1f}) = {live['frame_intervals_p50']:.2f} "
                     f"frame intervals, p95 {p95['median']:.1f} ms; {live['fps']['median']:.1f} fps, "
                     f"dropped {'/'.join(map(str, live['dropped']))} of {'/'.join(map(str, live['captured']))}")
    return lines


FRAME_STAGE_LABELS = {"read": "read", "preprocess": "prep", "detector": "detec", "landmark_model": "landm",
                      "postprocess": "post", "other": "other"}


def format_faces(faces: dict) -> list[str]:
    """The many-faces scenario: one row per face count."""
    width, height = faces.get("size", ["?", "?"])
    lines = [f"  faces in view: composed {width}x{height} clips, detector {faces.get('detector', '?')}, "
             f"detect every {faces.get('detect_every', '?')}; per frame, sequential read + track",
             f"  {'faces':>5} {'grid':>5} {'tile':>8} {'fps':>7} {'ms/fr':>6} {'mean':>6} {'clip fps':>8} "
             + "".join(f"{FRAME_STAGE_LABELS[k]:>6}" for k in FRAME_STAGE_LABELS)
             + f" {'found/fr':>8} {'batch':>6} {'max':>4} {'det/fr':>6} {'landm bN ms':>11}"]
    for layout in faces.get("layouts", []):
        clip = layout["clip"]
        grid = f"{clip['grid'][0]}x{clip['grid'][1]}"
        tile = f"{clip['tile'][0]}x{clip['tile'][1]}"
        ms = layout["ms_per_frame"]
        clip_fps = (layout.get("fps_clip") or {}).get("median")
        stages = "".join(f"{layout['stage_ms'].get(k, 0.0):>6.2f}" for k in FRAME_STAGE_LABELS)
        lines.append(f"  {layout['faces']:>5} {grid:>5} {tile:>8} {_fmt(layout['fps'], 1):>7} {ms['median']:>6.2f} "
                     f"{ms['mean']:>6.2f} {_fmt(clip_fps, 1):>8} {stages} "
                     f"{layout['faces_per_frame']['mean']:>8.2f} {layout['landmark_batch']['median']:>6.1f} "
                     f"{layout['landmark_batch']['max']:>4d} {layout['detector_runs_per_frame']:>6.2f} "
                     f"{_fmt(layout.get('landmark_model_ms_at_batch'), 2):>11}")
    lines.append("  fps: of the median frame; clip fps: whole passes (detector frames included), median of repeats;"
                 " stages: mean ms/frame;")
    lines.append("  batch: landmark crops per model call (median frame, max); landm bN ms: the landmark model alone"
                 " on N crops")
    return lines


def format_detectors(det: dict) -> list[str]:
    """The face finders' cost: per run on the same frames, and a one-face source end to end with each."""
    every = det.get("detect_every", "?")
    lines = [f"  face finders (tracker runs one every {every} frames)"
             + "".join(f"; {name} skipped: {why}" for name, why in det.get("skipped", {}).items()),
             f"  {'per run':<28}{'ms med':>8} {'p90':>7} {'prep':>6} {'model':>6} {'post':>6} "
             f"{'faces':>6} {'ms/frame at ' + str(every):>16}"]
    for label, runs in det.get("per_run", {}).items():
        for name, r in runs.items():
            st = r["stage_ms"]
            lines.append(f"  {name + ', ' + label:<28}{r['ms_per_run']['median']:>8.3f} {r['ms_per_run']['p90']:>7.3f} "
                         f"{st['preprocess']:>6.2f} {st['model']:>6.2f} {st['postprocess']:>6.2f} "
                         f"{r['faces_per_run']['mean']:>6.2f} {r['ms_per_frame_at_detect_every']:>16.3f}")
    single = det.get("single_face", {})
    if single:
        lines.append(f"  {'one-face source, end to end':<28}{'fps':>8} {'ms/fr clip':>10} {'(min-max)':>15} "
                     f"{'det runs/fr':>11} {'faces/fr':>9}")
        for name, e in single.items():
            clip = e.get("clip_ms_per_frame") or {}
            span = f"{_fmt(clip.get('min'))}-{_fmt(clip.get('max'))}"
            lines.append(f"  {name:<28}{_fmt(e['fps'], 1):>8} {_fmt(clip.get('median'), 3):>10} {span:>15} "
                         f"{e['detector_runs_per_frame']:>11.3f} {e['faces_per_frame']['mean']:>9.2f}")
    b = det.get("budget")
    if b:
        verdict = "within" if b["within"] else "OVER"
        if not b.get("comparable", True):
            found = ", ".join(f"{k} {v:.2f}" for k, v in b.get("faces_per_frame", {}).items())
            verdict = f"not comparable (faces per frame: {found})"
        lines.append(f"  one-face slowdown with the detector: {b['slowdown_ms_per_frame']:+.3f} ms/frame; allowed "
                     f"{b['allowed_ms_per_frame']:.3f} (its own cost every {every} frames): {verdict}; "
                     f"fps ratio detector/regressor {_fmt(b.get('fps_ratio'), 3)}")
    return lines


def format_report(report: dict) -> str:
    """The whole report as a readable table."""
    lines = ["facetrack bench " + report["header"].get("created", ""), *format_header(report["header"])]
    for run in report["runs"]:
        lines += ["", *format_run(run)]
    lines += ["", "efficiency = end-to-end fps / (1000 / slowest stage ms); stages from a separate sequential pass;",
              "cpu ms/fr = process CPU time (all threads) per frame: steady under other load, unlike fps"]
    return "\n".join(lines)


# ---------------------------------------------------------------- comparing two reports
def _ratio(a, b, higher_is_better: bool) -> str:
    if not a or not b:
        return "-"
    return f"{(b / a) if higher_is_better else (a / b):.2f}x"


def _row(label: str, a, b, higher_is_better: bool, unit: str, digits: int = 2) -> str:
    rule = "b/a" if higher_is_better else "a/b"
    ratio = _ratio(a, b, higher_is_better)
    return f"  {label:<46}{_fmt(a, digits):>10}{_fmt(b, digits):>10}  {rule} {ratio:>7}  {unit}"


def compare_reports(a: dict, b: dict, name_a: str = "a", name_b: str = "b") -> str:
    """Two reports side by side; every ratio reads '> 1: b is better'."""
    ha, hb = a["header"], b["header"]
    lines = [f"a: {name_a}", f"   {_machine(ha)}; load average {_load(ha)}", f"   {_libs(ha)}",
             f"b: {name_b}", f"   {_machine(hb)}; load average {_load(hb)}", f"   {_libs(hb)}"]
    ma, mb = ha.get("weights", {}).get("models", {}), hb.get("weights", {}).get("models", {})
    for role in sorted(set(ma) & set(mb)):
        da = {k: f.get("sha256_16") for k, f in ma[role].get("files", {}).items()}
        db = {k: f.get("sha256_16") for k, f in mb[role].get("files", {}).items()}
        if da != db:
            lines.append(f"note: the {role} model files differ between a and b")
    ran_a = {(r["backend"], r["device"]): r.get("files") for r in a["runs"] if r["status"] == "ok"}
    for r in b["runs"]:
        key = (r["backend"], r["device"])
        if r["status"] == "ok" and key in ran_a and ran_a[key] and r.get("files") and ran_a[key] != r["files"]:
            names = lambda files: ", ".join((f or {}).get("file", "?") for f in files.values())  # noqa: E731
            lines.append(f"note: {key[0]}/{key[1]} ran other model files: a {names(ran_a[key])}; b {names(r['files'])}")
    if ha.get("source", {}).get("describe") != hb.get("source", {}).get("describe"):
        lines.append(f"note: different sources: a {ha['source'].get('describe')}; b {hb['source'].get('describe')}")
    lines += ["", "ratios: > 1 means b is better. Throughput and fps: b/a. Latency, ms and memory: a/b.",
              f"  {'':<46}{'a':>10}{'b':>10}"]
    runs_b = {(r["backend"], r["device"]): r for r in b["runs"] if r["status"] == "ok"}
    matched = False
    for ra in a["runs"]:
        rb = runs_b.get((ra["backend"], ra["device"]))
        if ra["status"] != "ok" or rb is None:
            continue
        matched = True
        lines.append(f"[{ra['backend']}/{ra['device']}]")
        for role in ra.get("models", {}):
            if role not in rb.get("models", {}):
                continue
            pa, pb = ra["models"][role], rb["models"][role]
            lines.append(_row(f"{role} model latency b1 median", pa["latency_ms"]["median"],
                              pb["latency_ms"]["median"], False, "ms", 3))
            lines.append(_row(f"{role} model latency b1 p90", pa["latency_ms"]["p90"], pb["latency_ms"]["p90"],
                              False, "ms", 3))
            tb = {t["batch"]: t for t in pb["throughput"]}
            for t in pa["throughput"]:
                if t["batch"] in tb:
                    lines.append(_row(f"{role} model throughput batch {t['batch']}", t["items_per_s"],
                                      tb[t["batch"]]["items_per_s"], True, "items/s", 1))
        for mode, st in ra.get("stages", {}).items():
            sb = rb.get("stages", {}).get(mode)
            if sb is None:
                continue
            for k, v in st["ms"].items():
                lines.append(_row(f"stage {k} ({mode})", v, sb["ms"].get(k), False, "ms/frame", 3))
        vb = {v["name"]: v for v in rb.get("end_to_end", [])}
        for v in ra.get("end_to_end", []):
            if v["name"] in vb:
                lines.append(_row(f"e2e {v['name']}", v["fps"]["median"], vb[v["name"]]["fps"]["median"], True,
                                  "fps", 1))
        for v in ra.get("end_to_end", []):
            w = vb.get(v["name"])
            if w is not None and "cpu_ms_per_frame" in v and "cpu_ms_per_frame" in w:
                lines.append(_row(f"cpu {v['name']}", v["cpu_ms_per_frame"]["median"],
                                  w["cpu_ms_per_frame"]["median"], False, "CPU ms/frame"))
        if ra.get("live") and rb.get("live"):
            lines.append(_row("live capture->output p50", ra["live"]["capture_to_output_ms"]["p50"]["median"],
                              rb["live"]["capture_to_output_ms"]["p50"]["median"], False, "ms", 1))
        lines += _compare_faces(ra, rb)
        lines.append(_row("peak RSS", ra.get("memory", {}).get("peak_rss_mib"),
                          rb.get("memory", {}).get("peak_rss_mib"), False, "MiB", 1))
    if not matched:
        lines.append("no backend/device ran in both reports")
    return "\n".join(lines)


def _compare_faces(ra: dict, rb: dict) -> list[str]:
    """Rows for the many-faces and face-finder scenarios when both runs have them."""
    lines = []
    fb = {layout["faces"]: layout for layout in (rb.get("faces") or {}).get("layouts", [])}
    for layout in (ra.get("faces") or {}).get("layouts", []):
        other = fb.get(layout["faces"])
        if other is not None:
            lines.append(_row(f"{layout['faces']} faces in view, fps (median frame)", layout["fps"], other["fps"],
                              True, "fps", 1))
            lines.append(_row(f"{layout['faces']} faces in view, found per frame", layout["faces_per_frame"]["mean"],
                              other["faces_per_frame"]["mean"], True, "faces"))
    da, db = ra.get("detectors") or {}, rb.get("detectors") or {}
    for label, runs in da.get("per_run", {}).items():
        for name, r in runs.items():
            o = db.get("per_run", {}).get(label, {}).get(name)
            if o is not None:
                lines.append(_row(f"{name} per run ({label})", r["ms_per_run"]["median"], o["ms_per_run"]["median"],
                                  False, "ms", 3))
    for name, e in da.get("single_face", {}).items():
        o = db.get("single_face", {}).get(name)
        if o is not None and e.get("clip_ms_per_frame") and o.get("clip_ms_per_frame"):
            lines.append(_row(f"one face with {name}, ms per frame", e["clip_ms_per_frame"]["median"],
                              o["clip_ms_per_frame"]["median"], False, "ms/frame", 3))
    return lines
