"""The weights folder: `manifest.json` says which file holds which model; nothing is guessed from names.

{"default_landmarks": "resnet", "default_detector": "centernet",
 "checkpoints": {"resnet": "landmarks-resnet.pt", "nalbert": "landmarks-nalbert.pt", "box": "box.pt",
                 "centernet": "detector.pt"},
 "onnx": {"resnet": "landmarks.onnx", "nalbert": "landmarks-nalbert.onnx", "box": "box.onnx",
          "centernet": "detector.onnx"}}

plus "onnx_fp16" / "onnx_int8" tables for lower-precision graphs (`GRAPH_TABLES`; `--precision` picks
one at run time, `graph_file`). This module is the only code that
writes a manifest (`write_manifest`, reached through `update_manifest`, `set_model_file` and
`remove_model_file`): training's ship step, export and the scripts all call it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from core.errors import InputError
from core.jsonfile import read_json_object

MANIFEST = "manifest.json"
BOX_MODEL = "box"  # the course project's single-face box regressor (`--detector regressor`)
DETECTOR_MODELS = ("centernet",)  # multi-face detectors (kind "detector")
REGRESSOR = "regressor"  # the --detector name of BOX_MODEL
FACE_FINDERS = (*DETECTOR_MODELS, BOX_MODEL)  # models that find faces in a frame: never landmark models


# ONNX graph precisions and the manifest table of each; "auto" takes a model's most precise graph, or on the
# CPU its int8 graph where `int8_preferred`
GRAPH_TABLES = {"fp32": "onnx", "fp16": "onnx_fp16", "int8": "onnx_int8"}
PRECISIONS = tuple(GRAPH_TABLES)
# the `facetrack export` options that write a graph of each precision (said in advice to re-export)
EXPORT_FLAGS = {"fp32": "", "fp16": " --fp16", "int8": " --int8 --calib DATA"}
AUTO = "auto"
# what `facetrack export --int8` measured of each int8 graph it listed: {model: {"accuracy_cost": float,
# "unit": "NME points" | "IoU", "cpu_ms": float, "fp32_cpu_ms": float}} (ONNX Runtime CPU, batch 1)
INT8_CHECKS = "int8_checks"
# the accuracy an int8 graph may lose against fp32 and still run by default on the CPU (issue 15: 0.1 NME
# points, % of the inter-ocular distance; for face finders 0.01 mean IoU)
AUTO_INT8_MAX_COST = {"NME points": 0.1, "IoU": 0.01}
# how much faster than fp32 it must have been (fp32 ms / int8 ms): a clear gain, not timing noise
AUTO_INT8_MIN_SPEEDUP = 1.25


def default_weights_dir() -> Path:
    """The shipped weights folder: `facetrack/weights/` where a wheel installs them (the package data of
    `facetrack.weights`, pyproject.toml), else the repository's top-level `weights/` (a source checkout or
    an editable install, where that folder is the source of truth). Never checked to exist here:
    `read_manifest` says when it is missing."""
    root = Path(__file__).resolve().parent.parent
    installed = root / "facetrack" / "weights"
    return installed if (installed / MANIFEST).is_file() else root / "weights"


def read_manifest(weights_dir: str | Path) -> dict:
    """The folder's manifest; a missing folder or manifest is an InputError."""
    folder = Path(weights_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: weights folder not found (pass --weights DIR)")
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST}; not a facetrack weights folder")
    manifest = read_json_object(path, "unreadable manifest", "manifest is not a JSON object")
    manifest.setdefault("checkpoints", {})
    manifest.setdefault("onnx", {})
    check_manifest_shape(manifest, path)
    return manifest


FILE_TABLES = ("checkpoints", *GRAPH_TABLES.values())  # manifest tables that map model names to file names


def check_manifest_shape(manifest: dict, path: str | Path) -> None:
    """InputError (one line, naming the file and the entry) when a table of files is not a JSON object of
    model name -> file name, or `INT8_CHECKS` not one of model name -> object. The records' values are judged
    where they are read (`int8_preferred`: a malformed one means no int8 by default)."""
    for table in FILE_TABLES:
        value = manifest.get(table)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise InputError(f"{path}: malformed manifest: {table!r} must map model names to file names; "
                             "re-export the weights or fix the file")
    checks = manifest.get(INT8_CHECKS)
    if checks is not None and (not isinstance(checks, dict) or not all(isinstance(v, dict) for v in checks.values())):
        raise InputError(f"{path}: malformed manifest: {INT8_CHECKS!r} must map model names to the export's "
                         "measurements; re-export the weights or fix the file")


def write_manifest(weights_dir: str | Path, manifest: dict) -> Path:
    """Write `manifest` as the folder's manifest.json (sorted keys, indented), replacing it atomically.

    The one function that writes a manifest: code that changes one goes through `update_manifest`.
    """
    path = Path(weights_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def update_manifest(weights_dir: str | Path, change: Callable[[dict], object]) -> Path:
    """Read the folder's manifest, let `change` edit it in place, write it back; the manifest's path.

    A folder without a manifest (or without the folder itself) starts from an empty one,
    {"checkpoints": {}, "onnx": {}}; an unreadable manifest is an InputError and is left as it is.
    """
    folder = Path(weights_dir)
    manifest = read_manifest(folder) if (folder / MANIFEST).is_file() else {"checkpoints": {}, "onnx": {}}
    change(manifest)
    return write_manifest(folder, manifest)


def set_model_file(weights_dir: str | Path, table: str, model: str, file: str, default: bool = False) -> Path:
    """List `file` (relative to the folder) as model `model`'s file in `table` ('checkpoints', 'onnx',
    'onnx_fp16', ...); default=True also makes `model` the default landmark model (the default detector
    for a face detector). The manifest's path."""
    def change(manifest: dict) -> None:
        manifest.setdefault(table, {})[model] = file
        if default:
            manifest["default_detector" if model in FACE_FINDERS else "default_landmarks"] = model

    return update_manifest(weights_dir, change)


def remove_model_file(weights_dir: str | Path, table: str, model: str, delete: bool = True) -> Path:
    """Unlist model `model` from `table` (an int8 graph with its `INT8_CHECKS` record) and (delete=True) remove
    its file once the manifest no longer names it; the file's path. InputError when the table does not list
    the model."""
    folder = Path(weights_dir)
    listed = (read_manifest(folder).get(table) or {}).get(model)
    if not listed:
        raise InputError(f"{folder / MANIFEST}: no {table} file for model {model!r} to remove")
    def unlist(manifest: dict) -> None:
        manifest[table].pop(model)
        if table == GRAPH_TABLES["int8"]:  # what the export measured of that graph goes with it
            for key in (INT8_CHECKS, table):
                (manifest.get(key) or {}).pop(model, None)
                if not manifest.get(key, True):
                    manifest.pop(key)

    update_manifest(folder, unlist)
    still_named = any(file == listed for t in read_manifest(folder).values() if isinstance(t, dict)
                      for file in t.values())
    if delete and not still_named:
        (folder / listed).unlink(missing_ok=True)
    return folder / listed


def _tables(fmt: str | None) -> list[str]:
    """The manifest tables of format `fmt`: 'onnx' means a graph of any precision; None: every table."""
    if fmt == "onnx":
        return list(GRAPH_TABLES.values())
    return [fmt] if fmt else [*GRAPH_TABLES.values(), "checkpoints"]


def landmark_models(manifest: dict, fmt: str | None = None) -> list[str]:
    """Names of the landmark models a manifest lists (in format `fmt`: 'onnx' counts a graph of any
    precision; None: in any table): never a face finder."""
    names = {name for table in _tables(fmt) for name in manifest.get(table) or {}}
    return sorted(names - set(FACE_FINDERS))


def graph_precisions(manifest: dict, model: str) -> list[str]:
    """The precisions ('fp32', 'fp16', 'int8', in that order) of the ONNX graphs the manifest lists for `model`."""
    return [p for p, table in GRAPH_TABLES.items() if model in (manifest.get(table) or {})]


def landmark_model_name(manifest: dict, requested: str | None, fmt: str | None = None) -> str:
    """The landmark model to use: the requested one or the manifest's default (checked when `fmt` is given)."""
    name = requested or manifest.get("default_landmarks")
    if not name:
        raise InputError("the weights manifest names no default landmark model; pass --landmark-model")
    if requested and requested in FACE_FINDERS:
        known = ", ".join(landmark_models(manifest, fmt)) or "none"
        raise InputError(f"--landmark-model {requested}: that is a face detector, not a landmark model "
                         f"(landmark models: {known})")
    if requested and fmt and requested not in landmark_models(manifest, fmt):  # onnx: a graph of any precision
        what = "ONNX graphs" if fmt == "onnx" else fmt
        known = ", ".join(landmark_models(manifest, fmt)) or "none"
        if requested in landmark_models(manifest):
            other = "checkpoint only: use --backend torch, or run facetrack export" if fmt == "onnx" else \
                "ONNX graph only: use --backend onnx"
            raise InputError(f"--landmark-model {requested}: the weights have its {other} "
                             f"(landmark models with {what}: {known})")
        everything = ", ".join(landmark_models(manifest)) or "none"
        raise InputError(f"--landmark-model {requested}: not in the weights manifest (its landmark models: "
                         f"{everything})")
    return name


def detector_model_name(manifest: dict, requested: str | None) -> str:
    """The manifest name of the face detector to use: `requested` ('centernet' or 'regressor', the
    course project's box regressor, listed as 'box'), else the manifest's "default_detector", else the
    box regressor (weights folders from before the multi-face detector). InputError for another name."""
    name = requested or manifest.get("default_detector") or REGRESSOR
    if name in (REGRESSOR, BOX_MODEL):
        return BOX_MODEL
    if name not in DETECTOR_MODELS:
        raise InputError(f"--detector {name}: expected one of {', '.join((*DETECTOR_MODELS, REGRESSOR))}")
    return name


def int8_preferred(manifest: dict, model: str) -> bool:
    """True when the manifest lists an int8 graph of `model` that its export measured within
    `AUTO_INT8_MAX_COST` of the fp32 graph's accuracy (in the unit of the model's kind: IoU for face finders,
    NME points for landmark models) and at least `AUTO_INT8_MIN_SPEEDUP` times faster on ONNX Runtime CPU
    (`INT8_CHECKS`); False without such a record (graphs exported before it) or with a malformed one."""
    checks = manifest.get(INT8_CHECKS)
    check = checks.get(model) if isinstance(checks, dict) else None
    graphs = manifest.get(GRAPH_TABLES["int8"])
    if not isinstance(check, dict) or not isinstance(graphs, dict) or model not in graphs:
        return False
    unit = "IoU" if model in FACE_FINDERS else "NME points"
    values = [check.get(k) for k in ("accuracy_cost", "cpu_ms", "fp32_cpu_ms")]
    if check.get("unit") != unit or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and
                                            math.isfinite(v) for v in values):
        return False
    cost, ms, fp32_ms = values
    return cost <= AUTO_INT8_MAX_COST[unit] and ms > 0 and fp32_ms >= AUTO_INT8_MIN_SPEEDUP * ms


def graph_table(manifest: dict, model: str, precision: str = AUTO, cpu: bool = False) -> str | None:
    """The manifest table ('onnx', 'onnx_fp16', 'onnx_int8') whose graph of `model` runs at `precision`
    ('fp32', 'fp16', 'int8'; 'auto': on the CPU (`cpu`) the int8 graph where `int8_preferred`, else the most
    precise graph listed, so a model shipped only as an fp16 graph, float32 in and out, runs too); None when
    the manifest lists no graph of `model` at all. InputError for an unknown precision, or a model listed
    without a graph at the one asked for."""
    if precision != AUTO and precision not in GRAPH_TABLES:
        raise InputError(f"--precision {precision}: expected one of {', '.join((AUTO, *PRECISIONS))}")
    have = graph_precisions(manifest, model)
    if not have:
        return None
    if precision == AUTO:
        return GRAPH_TABLES["int8" if cpu and int8_preferred(manifest, model) else have[0]]
    if precision not in have:
        how = "facetrack export" + EXPORT_FLAGS[precision]
        raise InputError(f"--precision {precision}: the weights have no {precision} ONNX graph of {model!r} (its "
                         f"graphs: {', '.join(have)}); use --precision {have[0]} or auto, or write one with {how}")
    return GRAPH_TABLES[precision]


def check_run_precision(manifest: dict, models: list[str], precision: str) -> None:
    """InputError, before any model is opened, when `precision` (not 'auto') is missing for one of the
    `models` a run loads together: names the first model without that graph, and suggests only
    precisions every one of them has (or 'auto' alone), so the advice works for the whole run."""
    if precision == AUTO or precision not in GRAPH_TABLES:
        return
    have = {model: graph_precisions(manifest, model) for model in models}
    lacking = [model for model, listed in have.items() if listed and precision not in listed]
    if not lacking:
        return
    common = [p for p in PRECISIONS if all(p in listed for listed in have.values() if listed)]
    listed = "; ".join(f"{model}: {', '.join(graphs)}" for model, graphs in have.items() if graphs)
    use = f"--precision {common[0]} or auto" if common else f"--precision auto (no one precision has a graph of " \
        f"every model this run loads; {listed})"
    model = lacking[0]
    raise InputError(f"--precision {precision}: the weights have no {precision} ONNX graph of {model!r} (its "
                     f"graphs: {', '.join(have[model])}); use {use}, or write one with facetrack export"
                     f"{EXPORT_FLAGS[precision]}")


def model_file(weights_dir: str | Path, model: str, fmt: str, precision: str = AUTO, cpu: bool = False) -> Path:
    """Path of a model's file, checked to exist: its checkpoint (fmt 'checkpoints') or its ONNX graph
    (fmt 'onnx') at `precision` (`graph_table`: 'auto' the most precise one listed, or the int8 one on the
    CPU (`cpu`) where `int8_preferred`; else 'fp32', 'fp16' or 'int8'). InputError when the manifest lists
    no such file or the file is missing."""
    folder = Path(weights_dir)
    manifest = read_manifest(folder)
    table = graph_table(manifest, model, precision, cpu) if fmt == "onnx" else fmt
    if table is None or model not in (manifest.get(table) or {}):
        names = sorted({n for t in _tables(fmt) for n in manifest.get(t) or {}} & set(FACE_FINDERS)) \
            if model in FACE_FINDERS else landmark_models(manifest, fmt)
        kind = "" if model in FACE_FINDERS else "landmark models "
        known = ", ".join(names) or "none"
        raise InputError(f"{folder}: no {fmt} file for model {model!r} in {MANIFEST} (available {kind}{known})")
    path = folder / manifest[table][model]
    if not path.is_file():
        raise InputError(f"{path}: listed in {folder / MANIFEST} but missing")
    return path
