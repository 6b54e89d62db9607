"""Install and models (issue 14): the wheel ships the weights and runs; facetrack's generic top-level package
names cannot clash silently; fp16-only models run on ONNX; --precision picks a graph; --weights takes a
training run or checkpoint; an ONNX graph older than its checkpoint is said."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InputError
from core.freshness import SOURCE_KEY, file_sha256
from core.manifest import default_weights_dir, landmark_model_name, read_manifest, write_manifest
from facetrack.cli import app
from facetrack.packages import PARTS, overwritten
from tests.helpers import write_clip

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SYNTHETIC = "synthetic?width=160&height=120&frames=4"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- packaging
def test_pyproject_ships_every_package_and_every_weights_file():
    from setuptools import find_packages
    from setuptools.config.pyprojecttoml import read_configuration

    tool = read_configuration(ROOT / "pyproject.toml", expand=False)["tool"]["setuptools"]
    found = find_packages(str(ROOT), include=[f"{p}*" for p in (*PARTS, "facetrack")])
    assert sorted(tool["packages"]) == sorted([*found, "facetrack.weights"]), "pyproject's package list is stale"
    assert tool["package-dir"] == {"facetrack.weights": "weights"}
    patterns = tool["package-data"]["facetrack.weights"]
    weights = ROOT / "weights"
    unshipped = [p.name for p in weights.iterdir() if p.is_file() and not any(p.match(g) for g in patterns)]
    assert not unshipped, f"weights/ files a wheel would leave out: {unshipped}"
    for table in ("checkpoints", "onnx", "onnx_fp16", "onnx_int8"):
        for file in (read_manifest(weights).get(table) or {}).values():
            assert any(Path(file).match(g) for g in patterns)


def test_source_checkout_uses_the_repository_weights_and_its_own_packages():
    from facetrack.packages import problems

    assert default_weights_dir() == ROOT / "weights"
    assert problems() == []


def _digest(path: Path) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def test_overwritten_or_shared_package_folders_are_found(tmp_path):
    (tmp_path / "tracker" / "sub").mkdir(parents=True)
    for rel in ("tracker/__init__.py", "tracker/sub/mod.py"):
        (tmp_path / rel).write_text(f"# {rel}\n")
    record = {rel: _digest(tmp_path / rel) for rel in ("tracker/__init__.py", "tracker/sub/mod.py")}
    assert overwritten(tmp_path, record, ("tracker",)) == []
    assert overwritten(tmp_path, {}, ("tracker",)) == []  # nothing recorded: an editable install, not checked

    (tmp_path / "tracker" / "theirs.py").write_text("")  # another project's file in our folder: said, not fatal
    [shared] = overwritten(tmp_path, record, ("tracker",))
    assert not shared.fatal and "theirs.py" in shared.text and "virtual environment" in shared.text

    (tmp_path / "tracker" / "sub" / "mod.py").write_text("# theirs\n")  # our file replaced: fatal
    first = overwritten(tmp_path, record, ("tracker",))[0]
    assert first.fatal and "mod.py is not the file facetrack installed" in first.text


def test_a_shadowing_package_of_the_same_name_is_one_error_line(tmp_path):
    (tmp_path / "tracker").mkdir()
    (tmp_path / "tracker" / "__init__.py").write_text("")  # another project's `tracker`, first on the path
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "facetrack", "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    [line] = _lines(done.stderr)
    assert line.startswith("facetrack: error: the top-level package 'tracker' imports from ")
    assert str(tmp_path / "tracker") in line and "another installed project" in line


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs_the_main_command(tmp_path):
    # the working tree as it would be committed (tracked and new files, not what .gitignore names)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    src = tmp_path / "src"
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist)], check=True, timeout=600)
    [wheel] = dist.glob("facetrack-*.whl")

    # a fresh venv holding the wheel alone; its dependencies are this environment's, appended to its path by
    # a .pth file (after its own site-packages, and without this environment's editable-install hook)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, timeout=600)
    site = _site_packages(venv)
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "typer").is_dir())
    (site / "_facetrack_test_deps.pth").write_text(f"{deps}\n")
    assert (site / "facetrack" / "weights" / "manifest.json").is_file()

    work = tmp_path / "elsewhere"  # outside the repository: nothing resolves to it by accident
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import core.manifest as m, facetrack, tracker; "
                            "print(m.__file__); print(facetrack.__file__); print(m.default_weights_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where
    assert Path(where[2]) == site / "facetrack" / "weights"

    clip = write_clip(work / "clip.mp4", frames=8)
    facetrack = str(venv / "bin" / "facetrack")
    done = subprocess.run([facetrack, "video", str(clip), "--out", "out.mp4", "--json", "out.jsonl"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (work / "out.mp4").stat().st_size > 0
    assert len((work / "out.jsonl").read_text().splitlines()) == 8
    assert "warning" not in done.stderr and "error" not in done.stderr

    # another project's files in one of its package folders: said on every run, facetrack still works
    (site / "tracker" / "their_module.py").write_text("")
    done = subprocess.run([facetrack, "--version"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "facetrack: warning:" in done.stderr and "their_module.py" in done.stderr
    # ...and one of its own files replaced: one error line, exit 2
    (site / "core" / "jsonfile.py").write_text("# another project's core\n")
    done = subprocess.run([facetrack, "--version"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "facetrack: error:" in done.stderr and "jsonfile.py" in done.stderr


# ---------------------------------------------------------------- an fp16-only model on the default backend
def test_a_model_shipped_as_an_fp16_graph_runs_on_the_default_backend(tmp_path):
    manifest = read_manifest(default_weights_dir())
    fp16_only = sorted(set(manifest.get("onnx_fp16") or {}) - set(manifest.get("onnx") or {}))
    if not fp16_only:
        pytest.skip("the shipped weights have no fp16-only model")
    name = fp16_only[0]
    result = runner.invoke(app, ["video", SYNTHETIC, "--landmark-model", name, "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"landmarks {name} onnx:CPUExecutionProvider fp16" in result.output


def test_unknown_landmark_model_messages_never_contradict_themselves():
    manifest = {"default_landmarks": "simcc", "checkpoints": {"simcc": "a.pt", "ckonly": "c.pt", "box": "b.pt"},
                "onnx": {"simcc": "landmarks.onnx", "box": "box.onnx"}, "onnx_fp16": {"nalbert": "n.fp16.onnx"},
                "onnx_int8": {"q": "q.int8.onnx"}}
    for fmt in ("onnx", "checkpoints"):
        for requested in ("nalbert", "q", "ckonly", "simcc", "nosuch"):
            try:
                assert landmark_model_name(manifest, requested, fmt) == requested
            except InputError as exc:
                listed = str(exc).split("(", 1)[1]
                assert requested not in listed.replace(",", " ").replace(")", " ").split(), str(exc)
    assert landmark_model_name(manifest, "nalbert", "onnx") == "nalbert"
    assert landmark_model_name(manifest, "q", "onnx") == "q"


# ---------------------------------------------------------------- --precision
@pytest.fixture(scope="module")
def precisions(tmp_path_factory, face_weights) -> Path:
    """The tiny face weights with fp16 and int8 graphs of both models beside the fp32 ones."""
    import numpy as np

    from export.fp16 import write_fp16
    from export.int8 import write_int8
    from export.verify import load_onnx_meta

    folder = Path(shutil.copytree(face_weights, tmp_path_factory.mktemp("precisions") / "w"))
    manifest = read_manifest(folder)
    rng = np.random.default_rng(0)
    for model, file in dict(manifest["onnx"]).items():
        fp32 = folder / file
        meta = load_onnx_meta(fp32)
        stem = fp32.name[: -len(".onnx")]
        write_fp16(fp32, folder / f"{stem}.fp16.onnx", meta)
        calib = rng.uniform(-2, 2, (8, 3, meta.input_size, meta.input_size)).astype(np.float32)
        write_int8(fp32, folder / f"{stem}.int8.onnx", meta, calib)
        manifest.setdefault("onnx_fp16", {})[model] = f"{stem}.fp16.onnx"
        manifest.setdefault("onnx_int8", {})[model] = f"{stem}.int8.onnx"
    write_manifest(folder, manifest)
    return folder


@pytest.mark.parametrize("precision", ["auto", "fp32", "fp16", "int8"])
def test_precision_picks_the_graph(precisions, precision):
    from tracker.backends import open_models

    box, landmarks = open_models(precisions, "onnx", "cpu", precision=precision)
    suffix = {"auto": ".onnx", "fp32": ".onnx", "fp16": ".fp16.onnx", "int8": ".int8.onnx"}[precision]
    for backend, stem in ((box, "box"), (landmarks, "landmarks")):
        assert backend.path.name == stem + suffix


def test_auto_runs_the_int8_graph_on_the_cpu_where_its_export_measured_it_fit(precisions, tmp_path, monkeypatch):
    from core.manifest import graph_table, int8_preferred
    from tracker import backends
    from tracker.backends import open_models, runs_on_cpu

    fit = {"accuracy_cost": 0.05, "unit": "NME points", "cpu_ms": 1.0, "fp32_cpu_ms": 3.0}
    manifest = {"onnx": {"m": "m.onnx"}, "onnx_int8": {"m": "m.int8.onnx"}, "int8_checks": {"m": fit}}
    assert int8_preferred(manifest, "m")
    assert graph_table(manifest, "m", "auto", cpu=True) == "onnx_int8"
    assert graph_table(manifest, "m", "auto", cpu=False) == "onnx"  # on a GPU: the most precise graph
    assert graph_table(manifest, "m", "fp32", cpu=True) == "onnx"
    # too costly, slower, not clearly faster (timing noise), the wrong unit for a landmark model, malformed
    for changed in ({"accuracy_cost": 0.11}, {"cpu_ms": 3.5}, {"cpu_ms": 2.5}, {"unit": "IoU"},
                    {"accuracy_cost": "x"}, {"cpu_ms": True}, {"fp32_cpu_ms": float("inf")}, {"cpu_ms": 0}):
        assert not int8_preferred({**manifest, "int8_checks": {"m": {**fit, **changed}}}, "m"), changed
    finder = {"onnx_int8": {"centernet": "d.int8.onnx"}}  # face finders: in IoU
    assert int8_preferred({**finder, "int8_checks": {"centernet": {**fit, "unit": "IoU", "accuracy_cost": 0.009}}},
                          "centernet")
    assert not int8_preferred({**finder, "int8_checks": {"centernet": {**fit, "unit": "IoU", "accuracy_cost": 0.02}}},
                              "centernet")
    assert not int8_preferred({**manifest, "int8_checks": [1]}, "m")  # (read_manifest refuses such a file)
    assert not int8_preferred({**manifest, "int8_checks": {}}, "m")  # graphs exported before the record
    assert not int8_preferred({"onnx": {"m": "m.onnx"}, "int8_checks": {"m": fit}}, "m")  # no int8 graph listed

    # a weights folder: the landmark graph fits, the box graph is slower in int8 than in fp32
    folder = Path(shutil.copytree(precisions, tmp_path / "w"))
    manifest = read_manifest(folder)
    manifest["int8_checks"] = {"resnet": fit, "box": {**fit, "unit": "IoU", "accuracy_cost": 0.0, "cpu_ms": 4.0}}
    write_manifest(folder, manifest)
    box, landmarks = open_models(folder, "onnx", "cpu")
    assert (box.path.name, landmarks.path.name) == ("box.onnx", "landmarks.int8.onnx")
    box, landmarks = open_models(folder, "onnx", "cpu", precision="fp32")
    assert (box.path.name, landmarks.path.name) == ("box.onnx", "landmarks.onnx")
    assert runs_on_cpu("cpu") and not runs_on_cpu("cuda")
    monkeypatch.setattr(backends, "cuda_gpu_usable", lambda: True)
    monkeypatch.setattr(backends, "has_cuda_provider", lambda: True)
    assert not runs_on_cpu("auto")
    monkeypatch.setattr(backends, "has_cuda_provider", lambda: False)  # a CPU-only onnxruntime build
    assert runs_on_cpu("auto")


def test_precision_on_the_command_line(precisions, face_weights, tmp_path):
    result = runner.invoke(app, ["video", SYNTHETIC, "--weights", str(precisions), "--precision", "fp16",
                                 "--out-dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "landmarks resnet onnx:CPUExecutionProvider fp16" in result.output
    for args, needle in ((["--weights", str(face_weights), "--precision", "int8"],
                          "--precision int8: the weights have no int8 ONNX graph of 'box' (its graphs: fp32)"),
                         (["--weights", str(precisions), "--precision", "fp16", "--backend", "torch"],
                          "--precision fp16 picks an ONNX graph; --backend torch"),
                         (["--precision", "fp8"], "--precision")):
        result = runner.invoke(app, ["video", SYNTHETIC, *args, "--out-dir", str(tmp_path / "b")])
        assert result.exit_code == 2 and needle in result.output, result.output


def test_a_precision_error_advises_what_every_model_of_the_run_has():
    """Issue 15's follow-up: `--precision fp32 --landmark-model nalbert` was told to use fp16, which the
    detector lacks; the advice now names only precisions all the run's models have."""
    from core.errors import InputError
    from core.manifest import check_run_precision

    manifest = {"onnx": {"centernet": "d.onnx", "box": "b.onnx"}, "onnx_fp16": {"nalbert": "n.fp16.onnx",
                                                                               "box": "b.fp16.onnx"},
                "onnx_int8": {"box": "b.int8.onnx"}}
    check_run_precision(manifest, ["centernet", "nalbert"], "auto")
    check_run_precision(manifest, ["box", "nalbert"], "fp16")
    with pytest.raises(InputError) as no_common:
        check_run_precision(manifest, ["centernet", "nalbert"], "fp32")
    assert "no fp32 ONNX graph of 'nalbert' (its graphs: fp16); use --precision auto (no one precision" in \
        str(no_common.value) and "centernet: fp32; nalbert: fp16" in str(no_common.value)
    with pytest.raises(InputError, match=r"graph of 'nalbert' \(its graphs: fp16\); use --precision fp16 or auto, "
                                         r"or write one with facetrack export --int8 --calib DATA"):
        check_run_precision(manifest, ["box", "nalbert"], "int8")


def test_precision_in_the_python_api(precisions):
    from tracker import FaceTracker

    ft = FaceTracker(precisions, device="cpu", precision="int8")
    assert ft._still.landmark_backend.path.name == "landmarks.int8.onnx"


# ---------------------------------------------------------------- --weights RUN or CHECKPOINT
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A training run's folder as `facetrack train` leaves it: best.pt and last.pt of a tiny landmark net."""
    from core.models import make_checkpoint, save_checkpoint
    from tests.helpers import tiny_models

    run = tmp_path_factory.mktemp("run") / "landmarks-run"
    run.mkdir()
    _, landmarks = tiny_models(quality_logit=4.0)
    save_checkpoint(run / "best.pt", make_checkpoint("resnet", landmarks, epoch=3))
    save_checkpoint(run / "last.pt", make_checkpoint("resnet", landmarks, epoch=4))
    (run / "metrics.jsonl").write_text("{}\n")
    return run


@pytest.mark.parametrize("which", ["run folder", "best.pt"])
def test_weights_takes_a_training_run_or_its_checkpoint(run_folder, tmp_path, which):
    given = run_folder if which == "run folder" else run_folder / "best.pt"
    result = runner.invoke(app, ["video", SYNTHETIC, "--weights", str(given), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"{run_folder / 'best.pt'}: a training checkpoint (landmarks resnet), run with torch" in result.output
    assert "landmarks resnet torch:cpu" in result.output and "detector centernet onnx:" in result.output
    assert len((tmp_path / "synthetic.jsonl").read_text().splitlines()) == 4


def test_a_box_checkpoint_replaces_the_face_finder(tmp_path):
    from core.models import make_checkpoint, save_checkpoint
    from tests.helpers import tiny_models

    box, _ = tiny_models()
    save_checkpoint(tmp_path / "box-best.pt", make_checkpoint("box", box))
    result = runner.invoke(app, ["video", SYNTHETIC, "--weights", str(tmp_path / "box-best.pt"),
                                 "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "a training checkpoint (box box), run with torch; the landmark model from" in result.output


def test_weights_mistakes_are_one_line(run_folder, tmp_path):
    (tmp_path / "young").mkdir()
    shutil.copy(run_folder / "last.pt", tmp_path / "young" / "last.pt")
    (tmp_path / "empty").mkdir()
    for args, needle in (
            (["--weights", str(tmp_path / "young")], "a training run without best.pt yet"),
            (["--weights", str(tmp_path / "empty")], "not a facetrack weights folder or training run"),
            (["--weights", str(tmp_path / "nowhere")], "weights folder not found"),
            (["--weights", str(run_folder), "--landmark-model", "nalbert"], "give one of them")):
        result = runner.invoke(app, ["video", SYNTHETIC, *args, "--out-dir", str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        [line] = [x for x in _lines(result.output) if x.startswith("facetrack: error:")]
        assert needle in line, line


# ---------------------------------------------------------------- a graph older than its checkpoint
def _open_and_log(folder: Path) -> list[str]:
    from tracker.backends import open_models

    lines: list[str] = []
    open_models(folder, "onnx", "cpu", log=lines.append)
    return [line for line in lines if line.startswith("warning:")]


def test_shipped_and_fresh_graphs_are_not_out_of_date(face_weights):
    assert _open_and_log(default_weights_dir()) == []
    assert _open_and_log(face_weights) == []


def test_a_graph_older_than_its_checkpoint_is_said(face_weights, tmp_path):
    import onnx

    folder = Path(shutil.copytree(face_weights, tmp_path / "w"))
    ckpt = folder / "landmarks-resnet.pt"
    later = (folder / "landmarks.onnx").stat().st_mtime + 7200
    os.utime(ckpt, (later, later))  # graph from before the digest record: judged by modification time
    [line] = _open_and_log(folder)
    assert "landmarks.onnx is older than landmarks-resnet.pt (written 2.0 h later" in line
    assert f"facetrack export --weights {folder}" in line

    # a graph that records its checkpoint's digest: the digest decides, not the time
    proto = onnx.load(str(folder / "landmarks.onnx"))
    entry = proto.metadata_props.add()
    entry.key, entry.value = f"facetrack.{SOURCE_KEY}", file_sha256(ckpt)
    onnx.save_model(proto, str(folder / "landmarks.onnx"))
    os.utime(ckpt, (later, later))
    assert _open_and_log(folder) == []
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")  # the checkpoint changed after the export
    [line] = _open_and_log(folder)
    assert "landmarks.onnx was exported from another version of landmarks-resnet.pt" in line

    result = runner.invoke(app, ["video", SYNTHETIC, "--weights", str(folder), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 0 and "facetrack: warning: landmarks.onnx was exported from another" in result.output


def test_export_records_the_checkpoint_digest(tmp_path, monkeypatch):
    from export import pipeline, probe
    from export.verify import load_onnx_meta
    from tests.test_export import make_weights

    monkeypatch.setattr(probe, "default_data_path", lambda: None)  # random inputs only: quick
    weights = make_weights(tmp_path / "w", names=("resnet", "box"))
    pipeline.export_weights(weights, log=lambda _: None)
    for graph, ckpt in (("landmarks.onnx", "resnet.pt"), ("box.onnx", "box.pt")):
        assert load_onnx_meta(weights / graph).extra[SOURCE_KEY] == file_sha256(weights / ckpt)
    assert _open_and_log(weights) == []


def test_the_stale_graph_advice_keeps_its_precision(tmp_path):
    """Found by a new user: the advice for a stale int8 graph was a plain export, which writes none."""
    from core.freshness import graph_out_of_date
    from core.meta import ModelMeta

    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"weights")
    for precision, flags in (("int8", " --int8 --calib DATA"), ("fp16", " --fp16"), ("fp32", "")):
        graph = tmp_path / f"m.{precision}.onnx"
        graph.write_bytes(b"graph")
        meta = ModelMeta(kind="landmarks", model="resnet", input_size=32,
                         extra={SOURCE_KEY: "0" * 64, "precision": precision})
        note = graph_out_of_date(graph, meta, ckpt)
        assert note.endswith(f"run facetrack export --weights {tmp_path}{flags} to export it again"), note
