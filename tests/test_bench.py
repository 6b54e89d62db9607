"""`facetrack bench` with tiny random-weight models on the synthetic source: every field, compare, errors.

No timing assertions: only that the figures exist, have the right shape and are positive.
"""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests.helpers import one_error_line
from tracker.bench import STAGE_NAMES

# exit 2 and one `facetrack: error:` line, nothing else
_error_line = partial(one_error_line, code=2, only=True)

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
        # the default runs every scenario: 1, 2, 4, 8 faces in view, and the face finders (no detector here)
        assert run["faces"]["detector"] == "regressor" and run["faces"]["size"] == [1280, 720]
        assert [layout["faces"] for layout in run["faces"]["layouts"]] == [1, 2, 4, 8]
        assert all(LAYOUT_KEYS <= set(layout) for layout in run["faces"]["layouts"])
        assert run["detectors"]["finders"] == ["regressor"] and "centernet" in run["detectors"]["skipped"]
    assert header["settings"]["scenarios"] == ["pipeline", "faces", "detectors"]
    assert header["settings"]["detector"] == "regressor" and header["settings"]["faces"] == [1, 2, 4, 8]
    assert data["memory"]["process_peak_rss_mib"] > 0
    assert "[onnx/cpu]" in output and "[torch/cpu]" in output and "threaded tracking mp4" in output
    assert "faces in view: composed 1280x720" in output and "regressor, source" in output


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
    assert any("8 faces in view, fps" in line for line in lines)
    assert any("regressor per run (source)" in line for line in lines)
    # the runs name the graphs they loaded, and a comparison says when those differ
    assert data["runs"][0]["files"]["landmarks"]["file"] == "landmarks.onnx"
    assert "landmarks landmarks.onnx CPUExecutionProvider" in report[2]
    faster["runs"][0]["files"]["landmarks"] = {"file": "landmarks.int8.onnx", "sha256_16": "0" * 16}
    b_path.write_text(json.dumps(faster))
    result = runner.invoke(app, ["bench", "--compare", str(a_path), str(b_path)])
    assert "note: onnx/cpu ran other model files: a box.onnx, landmarks.onnx; b box.onnx, landmarks.int8.onnx" \
        in result.output, result.output


def test_bench_precision_picks_the_graphs(face_weights, tmp_path):
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(face_weights), "--device", "cpu", *QUICK,
                                 "--scenario", "pipeline", "--precision", "fp16"])
    assert result.exit_code == 2 and "--precision fp16: the weights have no fp16 ONNX graph" in result.output
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(face_weights), "--device", "cpu", *QUICK,
                                 "--scenario", "pipeline", "--precision", "fp32", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["runs"][0]["files"]["landmarks"]["file"] == "landmarks.onnx"


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
    assert "no usable CUDA GPU" in _error_line(result)


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
    assert says in _error_line(result)


def test_weights_without_manifest_exit_2(tmp_path):
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(tmp_path)])
    assert "manifest.json" in _error_line(result)


def test_compare_refuses_other_json(report, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    result = runner.invoke(app, ["bench", "--compare", str(report[1]), str(other)])
    assert "not a facetrack bench report" in _error_line(result)


# ---------------------------------------------------------------- many faces, detector vs regressor
FACES_QUICK = ["--frames", "8", "--warmup", "0", "--repeat", "1", "--backend", "onnx", "--device", "cpu"]
LAYOUT_KEYS = {"faces", "clip", "fps", "fps_clip", "ms_per_frame", "stage_ms", "faces_per_frame", "landmark_batch",
               "landmark_calls_per_frame", "detector_runs_per_frame", "detector_frames_share",
               "landmark_model_ms_at_batch", "frames", "passes"}
FRAME_STAGES = {"read", "preprocess", "detector", "landmark_model", "postprocess", "other"}


def _drawn_face_clip(path: Path, frames: int = 10, width: int = 320, height: int = 240) -> Path:
    """An mp4 of one drawn face (tests.helpers.draw_face_at: four coloured dots) drifting right."""
    import cv2
    import numpy as np

    from tests.helpers import draw_face_at

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    for i in range(frames):
        image = np.full((height, width, 3), 90, np.uint8)
        draw_face_at(image, (width / 2 - 10 + 2 * i, height / 2 - 20), 64.0)
        writer.write(image)
    writer.release()
    return path


def test_composed_grids_tile_the_whole_frame():
    import numpy as np

    from tracker.bench.composed import fill_tile, grid_for, tile_rects

    assert [grid_for(n) for n in (1, 2, 3, 4, 6, 8)] == [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (2, 4)]
    rects = tile_rects(1280, 720, 2, 4)
    assert len(rects) == 8 and sum(w * h for _, _, w, h in rects) == 1280 * 720
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, :320] = 255  # left half white
    tile = fill_tile(image, 320, 360)
    assert tile.shape == (360, 320, 3) and tile[:, 0].min() == 255 and tile[:, -1].max() == 0
    assert fill_tile(image, 320, 360, mirror=True)[:, -1].min() == 255


def test_faces_scenario_finds_as_many_faces_as_tiles(tmp_path):
    from tests.helpers import DotFaceDetector, DotReader
    from tracker.bench.faces import faces_scenario
    from tracker.pipeline import Tracker
    from tracker.sources import open_video

    clip = _drawn_face_clip(tmp_path / "face.mp4")
    report = faces_scenario(lambda: open_video(clip), lambda lm: Tracker(DotFaceDetector(), lm, detect_every=4),
                            DotReader(quality=True), counts=(1, 2, 4, 8), size=(640, 360), frames=8, repeat=1,
                            warmup=2, folder=tmp_path)
    assert report["size"] == [640, 360] and report["counts"] == [1, 2, 4, 8]
    layouts = report["layouts"]
    assert [layout["faces"] for layout in layouts] == [1, 2, 4, 8]
    for layout in layouts:
        assert LAYOUT_KEYS <= set(layout) and set(layout["stage_ms"]) == FRAME_STAGES
        assert layout["frames"] == 8 and layout["fps"] > 0 and layout["ms_per_frame"]["median"] > 0
        assert layout["clip"]["size"] == [640, 360] and len(layout["clip"]["offsets"]) == layout["faces"]
        n = layout["faces"]
        assert layout["faces_per_frame"]["mean"] == pytest.approx(n), layout["faces_per_frame"]
        # every tracked face in one landmark batch: n crops per call on frames between detector runs
        assert layout["landmark_batch"]["max"] == n and layout["landmark_batch"]["median"] == n
        assert layout["detector_runs_per_frame"] == pytest.approx(2 / 8)  # frames 0 and 4
    means = [layout["faces_per_frame"]["mean"] for layout in layouts]
    assert means == sorted(means) and len(set(means)) == 4
    assert {p.name for p in tmp_path.glob("faces-*.mp4")} == {f"faces-{n}.mp4" for n in (1, 2, 4, 8)}


@pytest.fixture()
def dot_models(monkeypatch):
    """`facetrack bench` with the dot-reading fakes: a multi-face detector model behind the real GridDetector
    and a landmark model that reads the dots."""
    import tracker.bench.suite as suite
    from tests.helpers import DotDetectorModel, DotReader

    monkeypatch.setattr(suite, "open_models", lambda *args, **kwargs: (DotDetectorModel(), DotReader(quality=True)))


@pytest.mark.parametrize("max_faces, found", [(None, [1, 2, 4]), ("2", [1, 2, 2])])
def test_cli_faces_scenario_passes_max_faces_to_the_tracker(dot_models, face_weights, tmp_path, max_faces, found):
    clip = _drawn_face_clip(tmp_path / "face.mp4")
    out = tmp_path / "faces.json"
    extra = ["--max-faces", max_faces] if max_faces else []
    result = runner.invoke(app, ["bench", str(clip), "--weights", str(face_weights), *FACES_QUICK, "--scenario",
                                 "faces", "--faces", "4,1,2", "--faces-size", "640x360", *extra, "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["header"]["settings"]["scenarios"] == ["faces"]
    assert data["header"]["settings"]["max_faces"] == (int(max_faces) if max_faces else None)
    run = data["runs"][0]
    assert "models" not in run and "end_to_end" not in run and "detectors" not in run
    layouts = run["faces"]["layouts"]
    assert [layout["faces"] for layout in layouts] == [1, 2, 4]
    assert [layout["faces_per_frame"]["max"] for layout in layouts] == found
    assert "faces in view: composed 640x360" in result.output and "2x2  320x180" in result.output


def test_cli_detectors_scenario_without_a_detector_says_so(face_weights, tmp_path):
    out = tmp_path / "det.json"
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(face_weights), *FACES_QUICK,
                                 "--scenario", "detectors", "--json", str(out)])
    assert result.exit_code == 0, result.output
    det = json.loads(out.read_text())["runs"][0]["detectors"]
    assert det["finders"] == ["regressor"] and "centernet" in det["skipped"] and det["budget"] is None
    reg = det["per_run"]["source"]["regressor"]
    assert reg["runs"] == 8 and reg["ms_per_run"]["median"] > 0 and reg["faces_per_run"]["mean"] == 1.0
    assert reg["ms_per_frame_at_detect_every"] == pytest.approx(reg["ms_per_run"]["median"] / 10, abs=1e-3)
    assert det["single_face"]["regressor"]["fps"] > 0
    assert "centernet skipped" in result.output


@pytest.mark.slow
def test_cli_detector_against_regressor_with_a_tiny_centernet(face_weights, tmp_path):
    import shutil

    import torch

    from core.manifest import set_model_file
    from core.models import build_model, model_meta
    from export.onnx_graph import export_onnx

    weights = tmp_path / "w"
    shutil.copytree(face_weights, weights)
    torch.manual_seed(0)
    model = build_model("centernet", {"input_size": 128}).eval()
    export_onnx(model, model_meta("centernet", model.config), weights / "detector.onnx")
    set_model_file(weights, "onnx", "centernet", "detector.onnx", default=True)
    out = tmp_path / "det.json"
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(weights), *FACES_QUICK, "--faces", "1,4",
                                 "--faces-size", "320x180", "--scenario", "faces,detectors", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["header"]["settings"]["detector"] == "centernet"
    assert data["header"]["weights"]["models"]["box"]["name"] == "centernet"
    det = data["runs"][0]["detectors"]
    assert det["finders"] == ["centernet", "regressor"] and det["skipped"] == {}
    assert set(det["per_run"]) == {"source", "composed, 4 faces"}
    for runs in det["per_run"].values():
        assert set(runs) == {"centernet", "regressor"} and all(r["runs"] == 8 for r in runs.values())
    assert set(det["single_face"]) == {"centernet", "regressor"}
    budget = det["budget"]
    assert {"slowdown_ms_per_frame", "allowed_ms_per_frame", "within", "comparable"} <= set(budget)
    assert budget["allowed_ms_per_frame"] == pytest.approx(
        det["per_run"]["source"]["centernet"]["ms_per_run"]["median"] / 10, abs=1e-3)
    assert det["files"]["centernet"]["file"] == "detector.onnx"
    # --detector regressor: every tracker of the run uses the box regressor instead
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(weights), *FACES_QUICK, "--faces", "1",
                                 "--faces-size", "320x180", "--scenario", "faces", "--detector", "regressor",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["runs"][0]["faces"]["detector"] == "regressor"
    assert data["header"]["weights"]["models"]["box"]["name"] == "box"


@pytest.mark.parametrize("args, says", [
    (["--detector", "yolo"], "--detector yolo"),
    (["--detector", "centernet"], "centernet"),  # these weights have none
    (["--scenario", "speed"], "--scenario speed"),
    (["--faces", "1,x"], "--faces"),
    (["--faces", "0,2"], "--faces"),
    (["--faces-size", "big"], "--faces-size"),
    (["--max-faces", "-1"], "--max-faces"),
])
def test_bad_faces_options_exit_2_with_one_line(face_weights, args, says):
    result = runner.invoke(app, ["bench", "synthetic", "--weights", str(face_weights), *FACES_QUICK, *args])
    assert result.exit_code == 2, result.output
    assert says in result.output, result.output
