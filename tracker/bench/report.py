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
    ]


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_run(run: dict) -> list[str]:
    """The table of one backend x device."""
    tag = f"[{run['backend']}/{run['device']}]"
    if run["status"] != "ok":
        return [f"{tag} skipped: {run.get('reason')}"]
    providers = run.get("providers", {})
    prov = "; ".join(f"{k} {','.join(v)}" for k, v in providers.items() if v) or run["names"]["landmarks"]
    lines = [f"{tag} {prov}"]
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
    mem = run.get("memory", {})
    lines.append(f"  memory: peak RSS {_fmt(mem.get('peak_rss_mib'), 1)} MiB while this backend ran "
                 f"(process peak so far {_fmt(mem.get('process_peak_rss_mib'), 1)} MiB)")
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
        for role in ra["models"]:
            if role not in rb["models"]:
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
        for mode, st in ra["stages"].items():
            sb = rb["stages"].get(mode)
            if sb is None:
                continue
            for k, v in st["ms"].items():
                lines.append(_row(f"stage {k} ({mode})", v, sb["ms"].get(k), False, "ms/frame", 3))
        vb = {v["name"]: v for v in rb["end_to_end"]}
        for v in ra["end_to_end"]:
            if v["name"] in vb:
                lines.append(_row(f"e2e {v['name']}", v["fps"]["median"], vb[v["name"]]["fps"]["median"], True,
                                  "fps", 1))
        for v in ra["end_to_end"]:
            w = vb.get(v["name"])
            if w is not None and "cpu_ms_per_frame" in v and "cpu_ms_per_frame" in w:
                lines.append(_row(f"cpu {v['name']}", v["cpu_ms_per_frame"]["median"],
                                  w["cpu_ms_per_frame"]["median"], False, "CPU ms/frame"))
        if ra.get("live") and rb.get("live"):
            lines.append(_row("live capture->output p50", ra["live"]["capture_to_output_ms"]["p50"]["median"],
                              rb["live"]["capture_to_output_ms"]["p50"]["median"], False, "ms", 1))
        lines.append(_row("peak RSS", ra.get("memory", {}).get("peak_rss_mib"),
                          rb.get("memory", {}).get("peak_rss_mib"), False, "MiB", 1))
    if not matched:
        lines.append("no backend/device ran in both reports")
    return "\n".join(lines)
