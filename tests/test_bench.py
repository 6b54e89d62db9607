"""`facetrack bench` with tiny random-weight models on the synthetic source: every field, compare, errors.

No timing assertions: only that the figures exist, have the right shape and are positive.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tracker.bench import STAGE_NAMES

runner = CliRunner()
QUICK = ["--frames", "6", "--warmup", "1", "--repeat", "1", "--batch", "1,2", "--live-frames", "4"]
VARIANTS = {f"{t} {m} {o}" for t in ("threaded", "sequential") for m in ("tracking", "detect-every-frame")
            for o in ("mp4", "no-output")}


@pytest.fixture(scope="module")
def report(face_weights, tmp_path_factory) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("bench") / "a.json"
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(face_weights), "--device", "cpu", *QUICK,
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), out, result.output


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facetrack: error: "), result.output
    return lines[0]


def test_report_has_every_field(report):
    data, _, output = report
    assert data["schema"] == "facetrack-bench/1"
    header = data["header"]
    assert header["cpu"]["model"] and header["cpu"]["cores"] >= 1
    assert header["gpu"] == "none" or all({"name", "driver"} <= set(g) for g in header["gpu"])
    assert {"numpy", "cv2", "onnxruntime", "torch"} <= set(header["libraries"])  # torch: its backend ran
    assert (header["source"]["width"], header["source"]["height"]) == (640, 480)
    models = header["weights"]["models"]
    assert models["box"]["input_size"] == 64 and models["landmarks"]["input_size"] == 48
    assert models["landmarks"]["name"] == "resnet" and "onnx" in models["landmarks"]["files"]
    assert header["settings"]["repeat"] == 1 and header["settings"]["batches"] == [1, 2]

    runs = {(r["backend"], r["device"]): r for r in data["runs"]}
    assert set(runs) == {("onnx", "cpu"), ("torch", "cpu")}
    assert runs[("onnx", "cpu")]["providers"]["box"] == ["CPUExecutionProvider"]
    for run in runs.values():
        assert run["status"] == "ok"
        for role in ("box", "landmarks"):
            m = run["models"][role]
            assert m["latency_ms"]["median"] > 0 and m["latency_ms"]["p90"] >= m["latency_ms"]["min"]
            assert [t["batch"] for t in m["throughput"]] == [1, 2]
            assert all(t["items_per_s"] > 0 for t in m["throughput"])
        for mode in ("tracking", "detect-every-frame"):
            st = run["stages"][mode]
            assert set(STAGE_NAMES) <= set(st["ms"]) and st["slowest"] in STAGE_NAMES
            assert st["bound_fps"] > 0 and st["without_output"]["slowest"] not in ("draw", "encode")
        variants = {v["name"]: v for v in run["end_to_end"]}
        assert set(variants) == VARIANTS
        for v in variants.values():
            assert v["frames"] == 6 and v["fps"]["min"] <= v["fps"]["median"] <= v["fps"]["max"]
            assert len(v["fps"]["runs"]) == 1 and v["efficiency"] > 0 and v["cpu_ms_per_frame"]["median"] >= 0
            assert v["box_calls_per_frame"] == (1.0 if v["detect_every"] == 1 else pytest.approx(1 / 6, abs=0.01))
        assert run["live"]["capture_to_output_ms"]["p50"]["median"] > 0 and run["live"]["frame_intervals_p50"] >= 0
        assert run["memory"]["peak_rss_mib"] > 0 and run["memory"]["process_peak_rss_mib"] > 0
    assert data["memory"]["process_peak_rss_mib"] > 0
    assert "[onnx/cpu]" in output and "[torch/cpu]" in output and "threaded tracking mp4" in output


def test_compare_prints_ratios(report, tmp_path):
    data, a_path, _ = report
    faster = copy.deepcopy(data)
    for run in faster["runs"]:
        for v in run.get("end_to_end", []):
            v["fps"]["median"] *= 2
        for m in run.get("models", {}).values():
            m["latency_ms"]["median"] /= 4
    b_path = tmp_path / "b.json"
    b_path.write_text(json.dumps(faster))
    result = runner.invoke(app, ["bench", "--compare", str(a_path), str(b_path)])
    assert result.exit_code == 0, result.output
    assert "Throughput and fps: b/a" in result.output and "a/b" in result.output
    lines = result.output.splitlines()
    fps_line = next(line for line in lines if "e2e threaded tracking mp4" in line)
    assert "b/a" in fps_line and "2.00x" in fps_line
    lat_line = next(line for line in lines if "landmarks model latency b1 median" in line)
    assert "a/b" in lat_line and "4.00x" in lat_line


def test_unavailable_cuda_is_skipped_with_a_reason(monkeypatch, face_weights):
    import tracker.bench.suite as suite
    from core.manifest import read_manifest

    monkeypatch.setattr(suite, "cuda_gpu_usable", lambda: False)
    manifest = read_manifest(face_weights)
    assert "no usable CUDA GPU" in suite.unavailable("onnx", "cuda", manifest)
    assert suite.unavailable("onnx", "cpu", manifest) is None
    assert "no checkpoints" in suite.unavailable("torch", "cpu", {"onnx": {"box": "b.onnx"}, "checkpoints": {}})


def test_nothing_runnable_is_one_line(monkeypatch, face_weights):
    import tracker.bench.suite as suite

    monkeypatch.setattr(suite, "cuda_gpu_usable", lambda: False)
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(face_weights), "--device", "cuda", *QUICK])
    assert "no usable CUDA GPU" in _one_line_error(result)


@pytest.mark.parametrize("args, says", [
    (["missing.mp4"], "no such file"),
    (["synthetic", "--backend", "tensorflow"], "--backend tensorflow"),
    (["synthetic", "--device", "tpu"], "--device tpu"),
    (["synthetic", "--batch", "1,x"], "--batch"),
    (["synthetic", "--repeat", "0"], "--repeat"),
])
def test_bad_input_exits_2_with_one_line(face_weights, tmp_path, args, says):
    if args[0] == "missing.mp4":
        args = [str(tmp_path / "missing.mp4"), *args[1:]]
    result = runner.invoke(app, ["bench", *args, "--weights", str(face_weights)])
    assert says in _one_line_error(result)


def test_weights_without_manifest_exit_2(tmp_path):
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(tmp_path)])
    assert "manifest.json" in _one_line_error(result)


def test_compare_refuses_other_json(report, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    result = runner.invoke(app, ["bench", "--compare", str(report[1]), str(other)])
    assert "not a facetrack bench report" in _one_line_error(result)
