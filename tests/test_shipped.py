"""The shipped weights and demo clip: loadable, ONNX agrees with PyTorch, the README's main command runs."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core.manifest import default_weights_dir, read_manifest
from facetrack.cli import app

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = default_weights_dir()
DEMO = ROOT / "demo" / "demo.mp4"


def _shipped() -> dict:
    try:
        manifest = read_manifest(WEIGHTS)
    except Exception as exc:  # noqa: BLE001 - any reason means: nothing shipped yet
        pytest.skip(f"no shipped weights ({exc})")
    if not manifest.get("default_landmarks") or "box" not in manifest.get("onnx", {}):
        pytest.skip("shipped weights are incomplete (no default landmark model or no box.onnx yet)")
    return manifest


def test_every_listed_file_exists_and_loads():
    from core.models import load_model
    from export.verify import load_onnx_meta

    manifest = _shipped()
    for name, file in manifest["checkpoints"].items():
        model, ckpt = load_model(WEIGHTS / file)
        assert ckpt["model"] == name
    for table in ("onnx", "onnx_fp16"):
        for name, file in manifest.get(table, {}).items():
            meta = load_onnx_meta(WEIGHTS / file)
            kind = {"box": "box", "centernet": "detector"}.get(name, "landmarks")
            assert meta.model == name and meta.kind == kind


def test_onnx_matches_pytorch_on_the_shipped_models():
    import torch

    from core.models import load_model
    from core.onnx_session import open_session
    from export.verify import output_diff

    manifest = _shipped()
    rng = np.random.default_rng(0)
    for name, file in manifest["onnx"].items():
        model, _ = load_model(WEIGHTS / manifest["checkpoints"][name])
        size = model.config.input_size
        x = rng.standard_normal((3, 3, size, size)).astype(np.float32)
        opened = open_session(WEIGHTS / file, "cpu")  # the runtime's session
        got = opened.session.run(None, {opened.session.get_inputs()[0].name: x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        # a detector's rows: as the export compares them (scores of candidate cells, boxes in input sides)
        assert output_diff(got, want, opened.meta.kind, size) < 1e-4, name


@pytest.mark.slow
def test_readme_main_command_on_the_demo_clip(tmp_path):
    _shipped()
    out, rows = tmp_path / "demo-out.mp4", tmp_path / "demo-out.jsonl"
    result = CliRunner().invoke(app, ["video", str(DEMO), "--out", str(out), "--json", str(rows)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in rows.read_text().splitlines()]
    assert len(lines) == 180
    assert sum(1 for r in lines if r["faces"]) >= 170  # a face in nearly every frame of the demo


@pytest.mark.slow
def test_eval_of_the_shipped_graph_and_checkpoint_agree():
    """`facetrack eval --backend onnx` and `--backend torch` on the held-out test faces: within 0.05 NME."""
    from facetrack.evaluate import EvalJob, evaluate
    from tests.test_shared_data import shared_data_dir

    manifest = _shipped()
    base = shared_data_dir()
    if base is None or not all((base / name).is_dir() for name in ("ytf-keypoints", "300w-helen-train")):
        pytest.skip("shared data sets ytf-keypoints and 300w-helen-train not found (looked beside the repo and "
                    "in $FACETRACK_SHARED_DATA)")
    if manifest["default_landmarks"] not in manifest.get("checkpoints", {}):
        pytest.skip("the default landmark model ships without a checkpoint")
    data = (str(base / "ytf-keypoints"), str(base / "300w-helen-train"))
    reports = {backend: evaluate(EvalJob(data, split="test", what="landmarks", backend=backend, device="cpu"),
                                 lambda line: None)["landmarks"] for backend in ("onnx", "torch")}
    assert reports["onnx"]["faces"] == reports["torch"]["faces"] > 400
    assert abs(reports["onnx"]["nme_mean"] - reports["torch"]["nme_mean"]) < 0.05
    assert reports["onnx"]["nme_mean"] < 10.0
