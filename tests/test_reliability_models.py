"""Reliability: broken, foreign or unsafe model files give one clear line (exit 2), never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from core.meta import MetadataError
from facetrack.cli import app
from tests.helpers import one_error_line, write_clip

runner = CliRunner()


@pytest.fixture
def weights(face_weights, tmp_path) -> Path:
    """A private copy of the tiny weights folder, free to break."""
    return Path(shutil.copytree(face_weights, tmp_path / "weights"))


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_clip(tmp_path / "clip.mp4", frames=3, width=64, height=48)


def _video(clip: Path, weights: Path, tmp_path: Path, *extra: str):
    return runner.invoke(app, ["video", str(clip), "--out", str(tmp_path / "o.mp4"), "--weights", str(weights),
                               "--device", "cpu", *extra])


def _manifest(weights: Path) -> dict:
    return json.loads((weights / "manifest.json").read_text())


def _set_manifest(weights: Path, manifest: dict) -> None:
    (weights / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------- weights folder
@pytest.mark.parametrize("problem", ["no_folder", "no_manifest", "garbage_manifest", "listed_file_missing"])
def test_broken_weights_folder(weights, clip, tmp_path, problem):
    needle = {"no_folder": "weights folder not found", "no_manifest": "not a facetrack weights folder",
              "garbage_manifest": "unreadable manifest", "listed_file_missing": "listed in"}[problem]
    if problem == "no_folder":
        shutil.rmtree(weights)
    elif problem == "no_manifest":
        (weights / "manifest.json").unlink()
    elif problem == "garbage_manifest":
        (weights / "manifest.json").write_text("{not json")
    else:
        (weights / "landmarks.onnx").unlink()
    one_error_line(_video(clip, weights, tmp_path), 2, needle, str(weights))
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("table,value", [("int8_checks", [1, 2]), ("int8_checks", "fast"),
                                         ("int8_checks", {"resnet": "fast"}), ("onnx_int8", {"resnet": ["x"]}),
                                         ("onnx_int8", "box.int8.onnx"), ("onnx", {"resnet": 3})])
def test_a_malformed_manifest_table_is_one_line(weights, clip, tmp_path, table, value):
    """Found by a new user: a table of the wrong shape crashed with a traceback (and an export in place
    moved its new graphs in before crashing)."""
    manifest = _manifest(weights)
    manifest[table] = value
    _set_manifest(weights, manifest)
    one_error_line(_video(clip, weights, tmp_path), 2, f"malformed manifest: {table!r}")
    assert not (tmp_path / "o.mp4").exists()
    before = sorted(p.name for p in weights.iterdir())
    result = runner.invoke(app, ["export", "--weights", str(weights)])
    one_error_line(result, 2, f"malformed manifest: {table!r}")
    assert sorted(p.name for p in weights.iterdir()) == before  # nothing exported into the folder


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_unknown_landmark_model_lists_only_landmark_models(weights, clip, tmp_path, backend):
    line = one_error_line(_video(clip, weights, tmp_path, "--backend", backend, "--landmark-model", "nope"), 2,
                           "--landmark-model nope", "resnet")
    assert "box" not in line.split("(", 1)[1]
    line = one_error_line(_video(clip, weights, tmp_path, "--backend", backend, "--landmark-model", "box"), 2,
                           "a face detector, not a landmark model")


# ---------------------------------------------------------------- wrong kind of model
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_checkpoint_of_another_kind(weights, clip, tmp_path, backend):
    manifest = _manifest(weights)
    table = manifest["onnx" if backend == "onnx" else "checkpoints"]
    table["box"], table["resnet"] = table["resnet"], table["box"]
    _set_manifest(weights, manifest)
    one_error_line(_video(clip, weights, tmp_path, "--backend", backend), 2, "expected a box model",
                    "holds a landmarks model")


# ---------------------------------------------------------------- broken ONNX files
def _break_onnx(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("name: landmarks\nlayers: 12\n")
    elif how == "checkpoint":  # a torch file renamed .onnx
        shutil.copy(path.with_name("landmarks-resnet.pt"), path)


@pytest.mark.parametrize("how", ["truncated", "empty", "text", "checkpoint"])
def test_broken_onnx_file(weights, clip, tmp_path, how):
    _break_onnx(weights / "landmarks.onnx", how)
    one_error_line(_video(clip, weights, tmp_path), 2, str(weights / "landmarks.onnx"), "not a loadable ONNX model")
    from export.verify import load_onnx_meta

    with pytest.raises(InputError) as err:
        load_onnx_meta(weights / "landmarks.onnx")
    assert "\n" not in str(err.value) and str(weights / "landmarks.onnx") in str(err.value)


def _strip_metadata(path: Path, keep: tuple[str, ...] = ()) -> None:
    import onnx

    proto = onnx.load(str(path))
    props = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith("facetrack.")
             or p.key[len("facetrack."):] in keep]
    del proto.metadata_props[:]
    for key, value in props:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


@pytest.mark.parametrize("keep", [(), ("kind", "model", "input_size")])
def test_onnx_without_facetrack_metadata(weights, clip, tmp_path, keep):
    _strip_metadata(weights / "box.onnx", keep)
    one_error_line(_video(clip, weights, tmp_path), 2, str(weights / "box.onnx"), "lacks facetrack metadata",
                    "facetrack export")
    from export.verify import load_onnx_meta

    with pytest.raises(MetadataError, match="lacks facetrack metadata"):
        load_onnx_meta(weights / "box.onnx")


# ---------------------------------------------------------------- torch checkpoints: weights only
class _Payload:
    """Unpickling this would create a marker file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoints_are_read_weights_only(weights, monkeypatch):
    import torch

    from core import models

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(models.torch, "load", spy)
    models.load_model(weights / "box.pt", expect_kind="box")
    assert calls == [True]


def test_pickle_bearing_checkpoint_is_refused(weights, clip, tmp_path):
    import torch

    from core.models import read_checkpoint

    marker = tmp_path / "unpickled"
    ckpt = torch.load(weights / "box.pt", weights_only=True)
    ckpt["extra"] = _Payload(marker)
    torch.save(ckpt, weights / "box.pt")
    with pytest.raises(InputError, match="pickled Python objects"):
        read_checkpoint(weights / "box.pt")
    one_error_line(_video(clip, weights, tmp_path, "--backend", "torch"), 2, str(weights / "box.pt"),
                    "never loaded")
    assert not marker.exists()


@pytest.mark.parametrize("how", ["truncated", "empty", "text", "plain_state_dict", "wrong_types", "wrong_shapes"])
def test_broken_checkpoint(weights, clip, tmp_path, how):
    import torch

    path = weights / "landmarks-resnet.pt"
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("epoch 3 weights")
    elif how == "plain_state_dict":
        torch.save({"layer.weight": torch.zeros(3)}, path)
    elif how == "wrong_types":
        ckpt = torch.load(path, weights_only=True)
        ckpt["config"] = "resnet-64"
        torch.save(ckpt, path)
    else:
        ckpt = torch.load(path, weights_only=True)
        ckpt["state_dict"] = {k: torch.zeros(1) for k in ckpt["state_dict"]}
        torch.save(ckpt, path)
    line = one_error_line(_video(clip, weights, tmp_path, "--backend", "torch"), 2, str(path))
    if how == "text":  # not "pickled Python objects", which it never held
        assert "not a PyTorch file" in line, line


def test_create_backend_reports_missing_model_file(tmp_path):
    from tracker.backends import create_backend

    for kind in ("onnx", "torch"):
        with pytest.raises(InputError, match="model file not found"):
            create_backend(kind, tmp_path / "nothing.onnx", "cpu")
