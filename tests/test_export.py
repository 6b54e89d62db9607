"""`facetrack export --format onnx` on tiny random-weight models: files, parity, metadata, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

from core.errors import EXIT_USAGE, InputError
from core.meta import MetadataError, ModelMeta
from core.models import build_model, load_model, make_checkpoint, make_config, save_checkpoint
from core.onnx_session import open_session
from export import checks, install, pipeline, probe
from export.int8 import refuse_int8
from export.onnx_graph import add_metadata
from export.realdata import ImageCache, landmark_inputs, model_inputs
from export.verify import FP32_TOLERANCE, VerificationError, load_onnx_meta, run
from facetrack.cli import app
from tests import datagen
from training.data import load_dataset

runner = CliRunner()

# manifest name -> (architecture, config overrides): two landmark input sizes and the box model
TINY = {
    "resnet": ("resnet", dict(input_size=32, widths=(8, 16), head_channels=8, hidden=16)),
    "small": ("resnet", dict(input_size=48, widths=(8, 16), head_channels=8, hidden=16)),
    "box": ("box", dict(input_size=32, widths=(8, 16), hidden=16)),
    "quality": ("resnet", dict(input_size=32, widths=(8, 16), head_channels=8, hidden=16, quality=True)),
    "simcc": ("resnet-simcc", dict(input_size=32, widths=(8, 16), hidden=16, point_channels=2, quality=True)),
}
FILES = {"resnet": "landmarks.onnx", "small": "landmarks-small.onnx", "box": "box.onnx",
         "quality": "landmarks-quality.onnx", "simcc": "landmarks-simcc.onnx"}


def make_weights(folder: Path, names=tuple(TINY), default: str = "resnet") -> Path:
    """Tiny random-weight checkpoints and their manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    checkpoints = {}
    for key in names:
        arch, overrides = TINY[key]
        model = build_model(arch, make_config(arch, **overrides)).eval()
        save_checkpoint(folder / f"{key}.pt", make_checkpoint(arch, model))
        checkpoints[key] = f"{key}.pt"
    (folder / "manifest.json").write_text(json.dumps({"default_landmarks": default, "checkpoints": checkpoints}))
    return folder


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return datagen.make_ytf_csv(tmp_path_factory.mktemp("ytf"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, faces):
    """One CLI export (fp32 + fp16) of three tiny models into a separate --out folder."""
    base = tmp_path_factory.mktemp("export")
    weights = make_weights(base / "weights")
    manifest = json.loads((weights / "manifest.json").read_text())
    (weights / "manifest.json").write_text(json.dumps({**manifest, "default_detector": "regressor"}))
    before = (weights / "manifest.json").read_text()
    out = base / "out"
    result = runner.invoke(app, ["export", "--format", "onnx", "--weights", str(weights), "--out", str(out),
                                 "--data", str(faces), "--fp16"])
    return {"result": result, "weights": weights, "out": out, "manifest_before": before}


def test_export_round_trip(exported):
    result, out, weights = exported["result"], exported["out"], exported["weights"]
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["onnx"] == FILES
    assert manifest["onnx_fp16"] == {k: v.replace(".onnx", ".fp16.onnx") for k, v in FILES.items()}
    assert manifest["default_landmarks"] == "resnet" and "checkpoints" not in manifest
    assert manifest["default_detector"] == "regressor"  # --out runs with the source's detector
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *FILES.values(), *manifest["onnx_fp16"].values()])  # nothing else copied, no staging
    assert (weights / "manifest.json").read_text() == exported["manifest_before"]
    table = result.stdout
    for word in ("file", "size", "opset", "max|ONNX-PyTorch|", "ORT CPU b1 ms", *FILES.values(), "NME", "IoU",
                 "vs fp32", "real faces: "):
        assert word in table
    assert "random input only" not in table


def test_metadata_read_back(exported):
    out, weights = exported["out"], exported["weights"]
    for key, file in FILES.items():
        arch, overrides = TINY[key]
        expected = ModelMeta.from_dict(torch.load(weights / f"{key}.pt", weights_only=True)["meta"])
        for name, precision in ((file, "fp32"), (file.replace(".onnx", ".fp16.onnx"), "fp16")):
            proto = onnx.load(str(out / name))
            meta = ModelMeta.from_props({p.key: p.value for p in proto.metadata_props}, source=name)
            assert meta == expected == load_onnx_meta(out / name)
            assert meta.input_size == overrides["input_size"] and meta.model == arch
            assert meta.extra["precision"] == precision
            assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
            assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
        half = onnx.load(str(out / file.replace(".onnx", ".fp16.onnx")))
        assert {t.data_type for t in half.graph.initializer if t.data_type in (1, 10)} == {TensorProto.FLOAT16}


def test_parity_dynamic_batch(exported, faces):
    out, weights = exported["out"], exported["weights"]
    samples = load_dataset(faces).samples[:4]
    for key, file in FILES.items():
        model, _ = load_model(weights / f"{key}.pt")
        meta = load_onnx_meta(out / file)
        session = open_session(out / file).session
        assert session.get_inputs()[0].shape[0] not in (1, 2, 4)  # symbolic batch dimension
        rng = np.random.default_rng(1)
        real = model_inputs(samples, meta, ImageCache()).x
        assert len(real) >= 1 and np.isfinite(real).all()
        for batch in (1, 4):
            s = meta.input_size
            for x in (rng.standard_normal((batch, 3, s, s)).astype(np.float32), np.concatenate([real] * 4)[:batch]):
                got = run(session, x)
                with torch.no_grad():
                    want = model(torch.from_numpy(x)).numpy()
                assert got.shape == want.shape == (batch, meta.output_width)
                quality = key in ("quality", "simcc")
                assert meta.output_width == {"box": 5, "simcc": 9 + 4}.get(key, 9 if quality else 8)
                assert meta.quality == quality and meta.point_scores == (key == "simcc")
                assert np.abs(got - want).max() <= FP32_TOLERANCE


def test_landmark_crops_are_the_runtime_crops(faces):
    sample = load_dataset(faces).samples[0]
    meta = ModelMeta.for_kind("landmarks", "resnet", 48)
    real = landmark_inputs([sample], meta, ImageCache())
    assert real.x.shape == (1, 3, 48, 48) and real.x.dtype == np.float32
    pts = real.target.reshape(4, 2)
    assert ((pts > 0.1) & (pts < 0.9)).all()  # a face square 1.3 x the box: points well inside the crop
    assert pts[0, 0] < pts[1, 0] and pts[3, 1] > pts[0, 1]  # right eye left of left eye, mouth below


def test_bad_format_exits_2_listing_formats(tmp_path):
    result = runner.invoke(app, ["export", "--format", "tensorrt", "--weights", str(tmp_path)])
    assert result.exit_code == EXIT_USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facetrack: error: ")
    assert "tensorrt" in lines[0] and "onnx" in lines[0]
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(tmp_path, faces):
    weights = make_weights(tmp_path / "w", names=("resnet",))
    for args, words in (
        (["--int8"], "--calib"),
        (["--calib", str(faces)], "--int8"),
        (["--weights", str(tmp_path / "nowhere")], "not found"),
    ):
        cmd = ["export", "--weights", str(weights), *args] if args[0] != "--weights" else ["export", *args]
        result = runner.invoke(app, cmd)
        assert result.exit_code == EXIT_USAGE, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr


def test_load_onnx_meta_rejects_broken_and_foreign_files(exported, tmp_path):
    good = (exported["out"] / "landmarks.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n")
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "foreign",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 32, 32])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    for path in (truncated, text, tmp_path / "missing.onnx"):
        with pytest.raises(InputError) as info:
            load_onnx_meta(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert info.value.exit_code == EXIT_USAGE
    with pytest.raises(MetadataError, match="facetrack metadata"):
        load_onnx_meta(foreign)
    # facetrack metadata that contradicts the graph's input shape
    proto = onnx.load_from_string(good)
    add_metadata(proto, ModelMeta.for_kind("landmarks", "resnet", 64))
    lying = tmp_path / "lying.onnx"
    onnx.save(proto, str(lying))
    with pytest.raises(MetadataError, match="input shape"):
        load_onnx_meta(lying)


def test_random_input_only_without_data(exported, monkeypatch):
    monkeypatch.setattr(probe, "default_data_path", lambda: None)
    none = probe.make_probe(None, None)
    assert none.samples == [] and "random input only" in none.source
    model, ckpt = load_model(exported["weights"] / "resnet.pt")
    meta = ModelMeta.from_dict(ckpt["meta"])
    check = checks.verify_onnx_fp32(exported["out"] / "landmarks.onnx", model, meta, none)
    assert check.score is None and "random input only" in check.row.accuracy
    assert check.row.max_diff <= FP32_TOLERANCE and check.row.cpu_ms > 0


def test_fp16_that_cpu_cannot_run_is_reported_not_refused(exported, monkeypatch, faces):
    def no_cpu(path, *args, **kwargs):
        raise InputError(f"{path}: ONNX Runtime cannot load it (no float16 kernel)")

    monkeypatch.setattr(checks, "cpu_session", no_cpu)
    model, ckpt = load_model(exported["weights"] / "resnet.pt")
    meta = ModelMeta.from_dict(ckpt["meta"])
    real = probe.make_probe(faces, None)
    check, note = checks.verify_variant(exported["out"] / "landmarks.fp16.onnx", model, meta, real, 1.0, "fp16")
    assert check.row.cpu_ms is None and "CPU cannot run" in check.row.accuracy
    assert "meant for CUDA" in note


def test_failed_parity_removes_files_and_keeps_manifest(tmp_path, faces, monkeypatch):
    weights = make_weights(tmp_path / "w", names=("resnet",))
    before = (weights / "manifest.json").read_text()
    monkeypatch.setattr(checks, "FP32_TOLERANCE", -1.0)  # nothing can pass
    result = runner.invoke(app, ["export", "--weights", str(weights), "--data", str(faces)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "differs from PyTorch" in lines[0]
    assert sorted(p.name for p in weights.iterdir()) == ["manifest.json", "resnet.pt"]
    assert (weights / "manifest.json").read_text() == before


def test_int8_refusal_rule():
    lm = ModelMeta.for_kind("landmarks", "resnet", 32)
    box = ModelMeta.for_kind("box", "box", 32)
    assert refuse_int8("a.onnx", lm, 5.0, 5.4, 10) == pytest.approx(0.4)
    assert refuse_int8("a.onnx", lm, 5.0, 4.0, 10) == pytest.approx(-1.0)  # int8 better: fine
    with pytest.raises(VerificationError, match="loses 0.600 NME points"):
        refuse_int8("a.onnx", lm, 5.0, 5.6, 10)
    with pytest.raises(VerificationError, match="IoU"):
        refuse_int8("b.onnx", box, 0.8, 0.7, 10)
    with pytest.raises(VerificationError):
        refuse_int8("a.onnx", lm, 5.0, float("nan"), 10)


@pytest.mark.slow
def test_int8_accept_then_refuse(tmp_path, faces, monkeypatch):
    monkeypatch.setattr(probe, "default_data_path", lambda: None)  # hold out part of the calibration set
    weights = make_weights(tmp_path / "w", names=("resnet",))
    result = pipeline.export_weights(weights, calib=faces, int8=True, log=lambda _: None,
                                     int8_max_nme_loss=float("inf"))
    row = next(r for r in result.rows if r.file == "landmarks.int8.onnx")
    assert row.delta is not None and np.isfinite(row.delta) and row.cpu_ms > 0
    assert "held out from calibration" in result.source
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["onnx_int8"] == {"resnet": "landmarks.int8.onnx"}
    assert manifest["onnx"] == {"resnet": "landmarks.onnx"} and manifest["checkpoints"] == {"resnet": "resnet.pt"}
    assert load_onnx_meta(weights / "landmarks.int8.onnx").extra["precision"] == "int8"
    assert any("box" in note for note in result.notes)
    # what the export measured of it, for --precision auto; only the convolutions are quantised
    record = manifest["int8_checks"]["resnet"]
    assert set(manifest["int8_checks"]) == {"resnet"} and record["unit"] == "NME points"
    assert record["accuracy_cost"] == round(row.delta, 4) and record["cpu_ms"] > 0 and record["fp32_cpu_ms"] > 0
    assert any(note.startswith("landmarks.int8.onnx: ") and "--precision auto" in note for note in result.notes)
    graph = onnx.load(str(weights / "landmarks.int8.onnx")).graph
    constants = {t.name for t in graph.initializer}
    int8_weights = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in constants}
    assert {n.op_type for n in graph.node if int8_weights & set(n.input)} == {"Conv"}
    [first] = [n for n in graph.node if n.op_type == "Conv" and n.input[0] == graph.input[0].name]
    assert first.input[1] in constants  # the convolution reading the image keeps its float weights
    assert {n.op_type for n in graph.node if n.op_type == "Gemm" and n.input[1] in constants} == {"Gemm"}

    # refused for accuracy: the int8 graph is left out, the fp32 graphs are written and listed all the same
    out = tmp_path / "refused"
    refused = pipeline.export_weights(weights, out_dir=out, calib=faces, int8=True, log=lambda _: None,
                                      int8_max_nme_loss=row.delta - 0.01)
    [why] = refused.refused
    assert why.startswith("landmarks.int8.onnx: int8 loses") and why.endswith("refused")
    assert "(refused)" in next(r for r in refused.rows if r.file == "landmarks.int8.onnx").accuracy
    assert sorted(p.name for p in out.iterdir()) == ["landmarks.onnx", "manifest.json"]  # no staging left
    assert json.loads((out / "manifest.json").read_text())["onnx"] == {"resnet": "landmarks.onnx"}
    assert "onnx_int8" not in json.loads((out / "manifest.json").read_text())
    # in place: the int8 graph of the earlier export is unlisted (it is older than the new fp32 graph)
    refused = pipeline.export_weights(weights, calib=faces, int8=True, log=lambda _: None,
                                      int8_max_nme_loss=row.delta - 0.01)
    assert refused.refused and "onnx_int8" not in json.loads((weights / "manifest.json").read_text())
    assert "int8_checks" not in json.loads((weights / "manifest.json").read_text())  # its record went with it
    assert any("landmarks.int8.onnx" in note for note in refused.notes)


def test_export_cli_refusing_int8_still_writes_the_fp32_graphs(tmp_path, faces, monkeypatch):
    def refuse(file, *args, **kwargs):
        raise VerificationError(f"{file}: int8 loses 9.000 NME points against fp32 (limit 0.5); refused")

    monkeypatch.setattr(pipeline, "refuse_int8", refuse)
    weights = make_weights(tmp_path / "w", names=("resnet", "box"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "--weights", str(weights), "--out", str(out), "--int8", "--calib",
                                 str(faces), "--data", str(faces)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("facetrack: error:")]
    assert len(errors) == 1 and "landmarks.int8.onnx: int8 loses" in errors[0] and "box.int8.onnx" in errors[0]
    assert f"the other graphs were written to {out}" in errors[0]
    assert "landmarks.onnx" in result.output and "(refused)" in result.output  # the table came first
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["onnx"] == {"resnet": "landmarks.onnx", "box": "box.onnx"} and "onnx_int8" not in manifest
    assert not list(out.glob("*.int8.onnx"))


def test_export_cmd_imports_no_torch():
    code = "import sys, facetrack.cli.export_cmd; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, "importing the CLI pulled in torch"


def test_manifest_unlists_variants_an_export_did_not_renew(tmp_path):
    weights = make_weights(tmp_path / "w", names=("resnet",))
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest["onnx_fp16"] = {"resnet": "landmarks.fp16.onnx", "other": "landmarks-other.fp16.onnx"}
    (weights / "manifest.json").write_text(json.dumps(manifest))
    tables = {"onnx": {"resnet": "landmarks.onnx"}, "onnx_fp16": {}, "onnx_int8": {}}
    path, unlisted = install.list_graphs(weights, weights, manifest, tables, ["resnet"])
    written = json.loads(path.read_text())
    assert written["onnx"] == {"resnet": "landmarks.onnx"} and written["checkpoints"] == {"resnet": "resnet.pt"}
    assert written["onnx_fp16"] == {"other": "landmarks-other.fp16.onnx"} and "onnx_int8" not in written
    assert unlisted == ["landmarks.fp16.onnx"]


def test_calibration_faces_are_held_out(faces):
    split = probe.make_probe(faces, faces)  # the same small set: split, never shared
    calib_images = {s.image_path for s in split.calib_samples}
    assert split.samples and split.calib_samples and "held out from calibration" in split.source
    assert not calib_images & {s.image_path for s in split.samples}
