"""One session factory, one metadata check, one manifest writer: runtime and export meet in core."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from core.devices import default_threads
from core.errors import EXIT_USAGE, InputError
from core.manifest import read_manifest, remove_model_file, set_model_file, update_manifest, write_manifest
from core.meta import MetadataError
from core.onnx_session import SPINNING_KEY, graph_meta, open_session
from tracker.backends import create_backend

ROOT = Path(__file__).resolve().parent.parent


def _settings(session) -> tuple:
    options = session.get_session_options()
    return (options.intra_op_num_threads, options.inter_op_num_threads, str(options.execution_mode),
            options.get_session_config_entry(SPINNING_KEY), tuple(session.get_providers()))


def test_export_measures_with_the_runtime_session_settings(face_weights):
    from export.checks import cpu_session

    path = face_weights / "landmarks.onnx"
    runtime = create_backend("onnx", path, "cpu").session
    export = cpu_session(path)
    assert _settings(export) == _settings(runtime)
    assert _settings(runtime) == (default_threads(), 1, "ExecutionMode.ORT_SEQUENTIAL", "0",
                                  ("CPUExecutionProvider",))


def _without_metadata(src: Path, dst: Path) -> Path:
    proto = onnx.load(str(src))
    del proto.metadata_props[:]
    onnx.save(proto, str(dst))
    return dst


def test_graph_without_metadata_is_one_metadata_error_line(face_weights, tmp_path):
    from export.verify import load_onnx_meta

    bare = _without_metadata(face_weights / "box.onnx", tmp_path / "bare.onnx")
    with pytest.raises(MetadataError) as by_session:
        open_session(bare)
    message = str(by_session.value)
    assert message.startswith(f"{bare} lacks facetrack metadata kind, model, input_size")
    assert "facetrack export" in message and "\n" not in message and by_session.value.exit_code == EXIT_USAGE
    with pytest.raises(MetadataError) as by_backend:
        create_backend("onnx", bare, "cpu")
    with pytest.raises(MetadataError) as by_proto:  # export reads graphs with the onnx package: same check
        load_onnx_meta(bare)
    assert str(by_backend.value) == str(by_proto.value) == message


def test_metadata_check_on_shapes():
    props = {"facetrack." + k: v for k, v in {
        "kind": "box", "model": "box", "input_size": "64", "layout": "NCHW", "color": "RGB",
        "mean": "0.5,0.5,0.5", "std": "0.25,0.25,0.25", "output": "x1,y1,x2,y2,presence_logit",
        "coords": "letterbox_normalized"}.items()}
    meta = graph_meta(props, [["batch", 3, 64, 64]], ["batch", 5], "box.onnx")
    assert meta.kind == "box" and meta.input_size == 64 and meta.mean == (0.5, 0.5, 0.5)
    assert graph_meta(props, [[None, 3, None, None]], [], "box.onnx") == meta  # dynamic dims match anything
    for inputs, output, words in (
        ([["batch", 3, 64, 64], ["batch", 3, 64, 64]], ["batch", 5], "expected one input, the graph has 2"),
        ([["batch", 3, 32, 32]], ["batch", 5], "input shape ['batch', 3, 32, 32] disagrees"),
        ([["batch", 64, 64, 3]], ["batch", 5], "(NCHW, 3x64x64)"),
        ([[3, 64, 64]], ["batch", 5], "input shape"),
        ([["batch", 3, 64, 64]], ["batch", 8], "a box model with 8 outputs per row; expected 5"),
    ):
        with pytest.raises(MetadataError) as info:
            graph_meta(props, inputs, output, "box.onnx")
        assert str(info.value).startswith("box.onnx") and words in str(info.value)


def test_unloadable_graph_and_impossible_device(face_weights, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes((face_weights / "box.onnx").read_bytes()[:100])
    with pytest.raises(InputError, match="not a loadable ONNX model") as info:
        open_session(broken)
    assert str(info.value).startswith(str(broken)) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="--device tpu"):
        open_session(face_weights / "box.onnx", "tpu")


# ---------------------------------------------------------------- the manifest writer
def test_manifest_changes_go_through_one_writer(tmp_path):
    folder = tmp_path / "w"
    path = set_model_file(folder, "checkpoints", "resnet", "landmarks-resnet.pt", default=True)
    assert path == folder / "manifest.json"
    assert json.loads(path.read_text()) == {"checkpoints": {"resnet": "landmarks-resnet.pt"}, "onnx": {},
                                            "default_landmarks": "resnet"}
    assert path.read_text().endswith("}\n") and not list(folder.glob(".*.tmp"))
    set_model_file(folder, "onnx_fp16", "resnet", "landmarks.fp16.onnx")
    (folder / "landmarks.fp16.onnx").write_bytes(b"graph")
    assert remove_model_file(folder, "onnx_fp16", "resnet") == folder / "landmarks.fp16.onnx"
    assert not (folder / "landmarks.fp16.onnx").exists()
    assert read_manifest(folder)["onnx_fp16"] == {} and read_manifest(folder)["default_landmarks"] == "resnet"
    with pytest.raises(InputError, match="no onnx_fp16 file for model 'resnet'"):
        remove_model_file(folder, "onnx_fp16", "resnet")
    # a face detector made the default is the default detector, never the default landmark model
    set_model_file(folder, "checkpoints", "centernet", "detector.pt", default=True)
    assert read_manifest(folder)["default_detector"] == "centernet"
    assert read_manifest(folder)["default_landmarks"] == "resnet"
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable manifest"):
        update_manifest(folder, lambda manifest: manifest.clear())
    assert (folder / "manifest.json").read_text() == "{not json"  # an unreadable manifest is left alone


def test_ship_keeps_one_graph_per_model(tmp_path):
    pytest.importorskip("torch")
    from training.ship import ship_one_graph_per_model

    folder = tmp_path / "w"
    files = {"onnx": {"resnet": "landmarks.onnx", "nalbert": "landmarks-nalbert.onnx", "box": "box.onnx"},
             "onnx_fp16": {"resnet": "landmarks.fp16.onnx", "nalbert": "landmarks-nalbert.fp16.onnx",
                           "box": "box.fp16.onnx"},
             "onnx_int8": {"resnet": "landmarks.int8.onnx", "nalbert": "landmarks-nalbert.int8.onnx",
                           "box": "box.int8.onnx"}}
    fit = {"accuracy_cost": 0.01, "unit": "NME points", "cpu_ms": 1.0, "fp32_cpu_ms": 3.0}
    checks = {"resnet": fit, "nalbert": {**fit, "cpu_ms": 2.9}, "box": {**fit, "unit": "IoU", "cpu_ms": 5.0}}
    # nalbert: barely faster in int8, box: slower
    folder.mkdir()
    for file in (file for table in files.values() for file in table.values()):
        (folder / file).write_bytes(b"graph")
    write_manifest(folder, {"default_landmarks": "resnet", "checkpoints": {}, **files, "int8_checks": checks})
    # what scripts/ship_weights.sh ships: fp16 graphs of nalbert and the default, beside the default's int8 one
    manifest = ship_one_graph_per_model(folder, ["nalbert", "resnet"])
    assert manifest["onnx"] == {"box": "box.onnx"}
    assert manifest["onnx_fp16"] == {"nalbert": "landmarks-nalbert.fp16.onnx", "resnet": "landmarks.fp16.onnx"}
    # the int8 graph that --precision auto runs on the CPU stays, with its record
    assert manifest["onnx_int8"] == {"resnet": "landmarks.int8.onnx"} and manifest["int8_checks"] == {"resnet": fit}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", "landmarks.fp16.onnx", "box.onnx", "landmarks-nalbert.fp16.onnx", "landmarks.int8.onnx"])
    assert ship_one_graph_per_model(folder, ["nalbert", "resnet"]) == manifest  # shipping again changes nothing
    before = (folder / "manifest.json").read_text()
    with pytest.raises(InputError, match="no fp16 ONNX graph of 'box'"):
        ship_one_graph_per_model(folder, ["nalbert", "box"])
    assert (folder / "manifest.json").read_text() == before


def test_drop_unlists_a_model_everywhere_and_deletes_its_files(tmp_path):
    pytest.importorskip("torch")
    from training.ship import drop_models

    folder = tmp_path / "w"
    folder.mkdir()
    files = {"checkpoints": {"resnet": "landmarks-resnet.pt", "simcc": "landmarks-simcc.pt"},
             "onnx": {"resnet": "landmarks-resnet.onnx", "simcc": "landmarks.onnx"},
             "onnx_fp16": {"resnet": "landmarks-resnet.fp16.onnx"}}
    for file in (file for table in files.values() for file in table.values()):
        (folder / file).write_bytes(b"x")
    write_manifest(folder, {"default_landmarks": "simcc", **files})
    with pytest.raises(InputError, match="default landmark model"):
        drop_models(folder, ["simcc"])
    with pytest.raises(InputError, match="face-box model"):
        drop_models(folder, ["box"])
    with pytest.raises(InputError, match="lists no model 'nosuch'"):
        drop_models(folder, ["resnet", "nosuch"])  # checked before anything is dropped
    assert (folder / "landmarks-resnet.pt").is_file()
    dropped = drop_models(folder, ["resnet"])
    assert sorted(p.name for p in dropped) == ["landmarks-resnet.fp16.onnx", "landmarks-resnet.onnx",
                                               "landmarks-resnet.pt"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["checkpoints"] == {"simcc": "landmarks-simcc.pt"} and manifest["onnx_fp16"] == {}
    assert sorted(p.name for p in folder.iterdir()) == ["landmarks-simcc.pt", "landmarks.onnx", "manifest.json"]
    with pytest.raises(InputError, match="lists no model"):
        drop_models(folder, ["resnet"])
    # an alias listing the default's files: dropping it keeps the files the default still needs
    write_manifest(folder, {"default_landmarks": "simcc", "checkpoints": {"simcc": "landmarks-simcc.pt",
                                                                          "alias": "landmarks-simcc.pt"}})
    drop_models(folder, ["alias"])
    assert (folder / "landmarks-simcc.pt").is_file()


def test_no_other_code_writes_the_manifest():
    """Inline writes (like the Python that scripts/ship_weights.sh once carried) are what this catches."""
    sources = [p for package in ("core", "tracker", "training", "export", "facetrack", "scripts")
               for p in sorted((ROOT / package).rglob("*")) if p.suffix in (".py", ".sh")]
    assert ROOT / "scripts" / "ship_weights.sh" in sources
    writes = ("write_text(", "write_bytes(", "json.dump(", ".write(")
    wrong = [f"{p.relative_to(ROOT)}:{n}" for p in sources if p != ROOT / "core" / "manifest.py"
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if "manifest" in line.lower() and any(w in line for w in writes)]
    assert not wrong, f"write the manifest through core.manifest, not in: {', '.join(wrong)}"


def test_quality_flag_round_trips_and_sets_the_output_width():
    from core.meta import ModelMeta

    plain = ModelMeta.for_kind("landmarks", "resnet", 64)
    assert plain.output_width == 8 and not plain.quality
    with_quality = ModelMeta.for_kind("landmarks", "resnet", 64, quality=True)
    assert with_quality.output_width == 9 and "face-quality logit" in with_quality.output
    assert ModelMeta.from_props(with_quality.to_props()).quality
    old = {k: v for k, v in plain.to_props().items() if not k.endswith(".quality")}  # graphs made before it
    assert not ModelMeta.from_props(old).quality
    assert ModelMeta.for_kind("box", "box", 64).output_width == 5


def test_a_model_shipped_as_an_fp16_graph_only_is_selectable_on_onnx():
    from core.manifest import landmark_model_name

    manifest = {"default_landmarks": "simcc", "checkpoints": {"simcc": "a.pt", "nalbert": "n.pt", "ckonly": "c.pt"},
                "onnx": {"simcc": "landmarks.onnx", "box": "box.onnx"},
                "onnx_fp16": {"nalbert": "landmarks-nalbert.fp16.onnx"}}
    assert landmark_model_name(manifest, "nalbert", "onnx") == "nalbert"
    with pytest.raises(InputError, match="checkpoint only: use --backend torch"):
        landmark_model_name(manifest, "ckonly", "onnx")
    with pytest.raises(InputError, match="not in the weights manifest"):
        landmark_model_name(manifest, "nosuch", "onnx")
