"""`facetrack export`: every checkpoint of a weights folder to verified graphs, then the manifest.

Files are written into a staging folder inside the output folder and moved into place only when
every graph has passed its checks, so a failed export leaves earlier files and the manifest as they
were. Checks per graph: onnx.checker, metadata read back, ONNX Runtime (CPU) against PyTorch on
random and real inputs at batch 1 and 4, CPU latency at batch 1, accuracy on real faces.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from core.errors import FacetrackError, InputError
from core.manifest import BOX_MODEL, MANIFEST, landmark_model_name, read_manifest, write_manifest
from core.meta import ModelMeta
from export.formats import ExportFormat, get_format
from export.realdata import ImageCache, RealInputs, default_data_path, model_inputs, pick
from export.verify import (
    FP32_TOLERANCE,
    VerificationError,
    check_graph,
    latency_ms,
    max_abs_diff,
    meta_of,
    opset_of,
    ort_session,
    read_onnx,
    run,
)

VERIFY_FACES = 64  # real faces every graph is checked on
CALIB_FACES = 128  # real faces int8 graphs are calibrated on
INT8_MAX_NME_LOSS = 0.5  # NME points (% of inter-ocular distance) an int8 landmark graph may lose
INT8_MAX_IOU_LOSS = 0.02  # mean IoU an int8 box graph may lose
PARITY_BATCHES = (1, 4)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


# ---------------------------------------------------------------- what is checked on
class Probe:
    """The faces graphs are checked on (maybe none) and those int8 graphs are calibrated on."""

    def __init__(self, samples: list, calib_samples: list, source: str, seed: int = 0):
        self.samples = samples
        self.calib_samples = calib_samples
        self.source = source
        self.seed = seed
        self._images = ImageCache()
        self._real: dict[tuple, RealInputs] = {}
        self._calib: dict[tuple, RealInputs] = {}

    @staticmethod
    def _key(meta: ModelMeta) -> tuple:
        return meta.kind, meta.input_size, meta.crop_scale, tuple(meta.mean), tuple(meta.std)

    def real(self, meta: ModelMeta) -> RealInputs:
        """Held-out real inputs for this model (empty when there are no faces)."""
        key = self._key(meta)
        if key not in self._real:
            self._real[key] = model_inputs(self.samples, meta, self._images)
        return self._real[key]

    def calib(self, meta: ModelMeta) -> RealInputs:
        """Calibration inputs for this model."""
        key = self._key(meta)
        if key not in self._calib:
            self._calib[key] = model_inputs(self.calib_samples, meta, self._images)
        return self._calib[key]

    def parity_inputs(self, meta: ModelMeta) -> list[tuple[str, np.ndarray]]:
        """(label, batch) pairs: random input and real inputs at batch 1 and 4."""
        s = meta.input_size
        rng = np.random.default_rng(self.seed)
        inputs = [(f"random batch {b}", rng.standard_normal((b, 3, s, s)).astype(np.float32)) for b in PARITY_BATCHES]
        real = self.real(meta)
        if len(real):
            for b in PARITY_BATCHES:
                inputs.append((f"real batch {b}", np.concatenate([real.x] * b)[:b]))
        return inputs


def _real_path(path: str) -> str:
    return os.path.realpath(path)


def make_probe(data: str | Path | None, calib: str | Path | None, verify_faces: int = VERIFY_FACES,
               calib_faces: int = CALIB_FACES) -> Probe:
    """Faces from --data (or the shared data set) held out from the --calib faces used for calibration."""
    from training.data import load_dataset
    from training.data.samples import DatasetError

    calib_all: list = []
    calib_set: list = []
    if calib is not None:
        calib_all = pick(load_dataset(calib).samples, 10 ** 9, seed=1)
        if not calib_all:
            raise InputError(f"{calib}: no usable faces to calibrate int8 graphs on")
        calib_set = calib_all[:calib_faces]
    path = Path(data) if data is not None else default_data_path()
    candidates: list = []
    if path is not None:
        try:
            candidates = load_dataset(path).samples
        except DatasetError:
            if data is not None:
                raise
            candidates = []
        if data is not None and not candidates:
            raise InputError(f"{data}: no usable faces to verify exports on")
    used = {_real_path(s.image_path) for s in calib_set}
    held_out = pick([s for s in candidates if _real_path(s.image_path) not in used], verify_faces, seed=0)
    if not held_out and calib_all:
        # no other faces: hold part of the calibration set out instead
        path = Path(calib)
        calib_set = calib_all[:min(calib_faces, max(1, 2 * len(calib_all) // 3))]
        used = {_real_path(s.image_path) for s in calib_set}
        held_out = pick([s for s in calib_all if _real_path(s.image_path) not in used], verify_faces, seed=0)
    if calib is not None and not held_out:
        raise InputError(f"{calib}: too few faces (in distinct images) to both calibrate and hold some out")
    if held_out:
        what = " (held out from calibration)" if calib is not None else ""
        source = f"real faces: {len(held_out)} from {path}{what}"
    else:
        source = ("no real face data (no --data, no $FACETRACK_SHARED_DATA, no ../shared/data/ytf-keypoints): "
                  "verified on random input only")
    return Probe(held_out, calib_set, source)


# ---------------------------------------------------------------- checks
@dataclass
class Row:
    """One line of the export table."""

    file: str
    size: int
    opset: int | None
    max_diff: float | None
    cpu_ms: float | None
    accuracy: str
    delta: float | None = None  # accuracy change against the fp32 graph: NME points or mean IoU


@dataclass
class Check:
    """A verified graph: its table row and its accuracy score on the real inputs (None without faces)."""

    row: Row
    score: float | None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def torch_outputs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The PyTorch model's output on a float32 batch."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def score(meta: ModelMeta, pred: np.ndarray, target: np.ndarray) -> float:
    """Mean NME in % of inter-ocular distance (landmarks) or mean IoU (box) on real inputs."""
    from core.metrics import box_metrics, nme_per_face

    if meta.kind == "box":
        return box_metrics(pred, target, np.ones(len(pred)))["iou_mean"]
    return float(nme_per_face(pred, target).mean())


def _score_text(meta: ModelMeta, value: float, base: float | None = None, n: int = 0) -> str:
    name, fmt = ("IoU", "{:.3f}") if meta.kind == "box" else ("NME", "{:.2f}")
    if base is None:
        return f"{name} {fmt.format(value)} on {n} real {'images' if meta.kind == 'box' else 'crops'}"
    return f"{name} {value - base:+.3f} vs fp32 ({fmt.format(value)})"


def _session(path: Path):
    try:
        return ort_session(path)
    except InputError as exc:  # our own file: a failed export, not a user mistake
        raise VerificationError(str(exc)) from None


def _read_back(path: Path, meta: ModelMeta) -> onnx.ModelProto:
    check_graph(path)
    proto = read_onnx(path)
    got = meta_of(proto, path.name)
    if replace(got, extra={}).to_props() != replace(meta, extra={}).to_props():
        raise VerificationError(f"{path.name}: metadata read back differs from the checkpoint's")
    return proto


def verify_onnx_fp32(path: Path, model: torch.nn.Module, meta: ModelMeta, probe: Probe) -> Check:
    """Checker, metadata, ORT CPU vs PyTorch (<= FP32_TOLERANCE), latency, accuracy on real faces."""
    proto = _read_back(path, meta)
    session = _session(path)
    worst = 0.0
    for label, x in probe.parity_inputs(meta):
        diff = max_abs_diff(run(session, x), torch_outputs(model, x))
        if not diff <= FP32_TOLERANCE:
            raise VerificationError(f"{path.name}: ONNX Runtime differs from PyTorch by {diff:.2e} on {label} "
                                    f"input (limit {FP32_TOLERANCE:.0e})")
        worst = max(worst, diff)
    ms = latency_ms(session, meta.input_size)
    real = probe.real(meta)
    value = score(meta, run(session, real.x), real.target) if len(real) else None
    accuracy = _score_text(meta, value, n=len(real)) if value is not None else "n/a (random input only)"
    return Check(Row(path.name, path.stat().st_size, opset_of(proto), worst, ms, accuracy), value)


def _verify_variant(path: Path, model: torch.nn.Module, meta: ModelMeta, probe: Probe, base: float | None,
                    precision: str) -> tuple[Check, str | None]:
    """Checks of an fp16 / int8 graph: differences reported, not limited; (check, note) where note says
    why ORT CPU could not run it."""
    proto = _read_back(path, meta)
    try:
        session = ort_session(path)
        outputs = [(run(session, x), x) for _, x in probe.parity_inputs(meta)]
    except Exception as exc:
        note = f"{path.name}: ONNX Runtime CPU cannot run this {precision} graph ({_first_line(exc)}); " \
               f"written anyway, it is meant for CUDA"
        row = Row(path.name, path.stat().st_size, opset_of(proto), None, None, "n/a (CPU cannot run it)")
        return Check(row, None), note
    worst = max(max_abs_diff(out, torch_outputs(model, x)) for out, x in outputs)
    if not np.isfinite(worst):
        raise VerificationError(f"{path.name}: the {precision} graph gives non-finite or misshapen outputs")
    ms = latency_ms(session, meta.input_size)
    real = probe.real(meta)
    value = score(meta, run(session, real.x), real.target) if len(real) else None
    if value is None or base is None:
        accuracy, delta = "n/a (random input only)", None
    else:
        accuracy, delta = _score_text(meta, value, base), value - base
    return Check(Row(path.name, path.stat().st_size, opset_of(proto), worst, ms, accuracy, delta), value), None


def with_precision(meta: ModelMeta, precision: str) -> ModelMeta:
    """The metadata with `precision` (fp32 / fp16 / int8) recorded in its extra entries."""
    return replace(meta, extra={**meta.extra, "precision": precision})


def write_fp16(fp32_path: Path, fp16_path: Path, meta: ModelMeta) -> Path:
    """Convert a verified fp32 graph to float16 weights and compute (float32 inputs/outputs)."""
    from export.fp16 import to_float16
    from export.onnx_graph import add_metadata

    proto = to_float16(onnx.load(str(fp32_path)))
    add_metadata(proto, with_precision(meta, "fp16"))
    onnx.save_model(proto, str(fp16_path), save_as_external_data=False)
    return fp16_path


def write_int8(fp32_path: Path, int8_path: Path, meta: ModelMeta, probe: Probe) -> Path:
    """Quantise a verified fp32 graph on the calibration faces."""
    from export.int8 import quantize_int8
    from export.onnx_graph import add_metadata

    quantize_int8(fp32_path, int8_path, probe.calib(meta).x)
    proto = onnx.load(str(int8_path))
    add_metadata(proto, with_precision(meta, "int8"))
    onnx.save_model(proto, str(int8_path), save_as_external_data=False)
    return int8_path


def int8_loss(meta: ModelMeta, base: float, value: float) -> float:
    """How much worse the int8 graph is: NME points gained (landmarks) or mean IoU lost (box)."""
    return base - value if meta.kind == "box" else value - base


def refuse_int8(file: str, meta: ModelMeta, base: float, value: float, n: int,
                max_nme_loss: float = INT8_MAX_NME_LOSS, max_iou_loss: float = INT8_MAX_IOU_LOSS) -> float:
    """The int8 graph's loss against fp32; a VerificationError when it is beyond the limit."""
    loss = int8_loss(meta, base, value)
    limit, unit = (max_iou_loss, "IoU") if meta.kind == "box" else (max_nme_loss, "NME points")
    if not loss <= limit:
        raise VerificationError(f"{file}: int8 loses {loss:.3f} {unit} against fp32 on {n} held-out real "
                                f"inputs (limit {limit}); refused, nothing written (export without --int8 "
                                f"for the other graphs)")
    return loss


# ---------------------------------------------------------------- the weights folder
@dataclass(frozen=True)
class Planned:
    """One checkpoint to export and the file stem it becomes."""

    name: str
    kind: str
    checkpoint: Path
    stem: str


def plan(weights_dir: Path, manifest: dict) -> tuple[list[Planned], list[str]]:
    """What to export: the default landmark model as `landmarks`, other landmark models as
    `landmarks-<name>`, the box model as `box`; plus notes on what is missing."""
    ckpts = manifest.get("checkpoints")
    source = weights_dir / MANIFEST
    if not isinstance(ckpts, dict) or not ckpts:
        raise InputError(f"{source}: lists no checkpoints to export")
    for name, file in ckpts.items():
        if not _SAFE_NAME.match(str(name)) or not isinstance(file, str):
            raise InputError(f"{source}: bad checkpoints entry {name!r}: {file!r}")
        if not (weights_dir / file).is_file():
            raise InputError(f"{weights_dir / file}: listed in {source} but missing")
    items, notes = [], []
    landmarks = [n for n in ckpts if n != BOX_MODEL]
    if landmarks:
        default = landmark_model_name(manifest, None)
        if default not in ckpts:
            raise InputError(f"{source}: default_landmarks {default!r} has no checkpoint "
                             f"(have: {', '.join(sorted(ckpts))})")
        items.append(Planned(default, "landmarks", weights_dir / ckpts[default], "landmarks"))
        items += [Planned(n, "landmarks", weights_dir / ckpts[n], f"landmarks-{n}")
                  for n in sorted(landmarks) if n != default]
    else:
        notes.append(f"{source} lists no landmark checkpoint: no landmarks graph written")
    if BOX_MODEL in ckpts:
        items.append(Planned(BOX_MODEL, "box", weights_dir / ckpts[BOX_MODEL], "box"))
    else:
        notes.append(f"{source} lists no '{BOX_MODEL}' checkpoint: no box graph written")
    return items, notes


def checkpoint_meta(ckpt: dict, model: torch.nn.Module, kind: str, path: Path) -> ModelMeta:
    """The checkpoint's stored metadata (or the model's standard one), checked against the model."""
    from core.models import model_meta

    meta = model_meta(ckpt["model"], model.config)
    stored = ckpt.get("meta")
    if isinstance(stored, dict):
        try:
            meta = ModelMeta.from_dict(stored)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed metadata in checkpoint ({_first_line(exc)})") from None
    if meta.kind != kind or meta.input_size != model.config.input_size:
        raise InputError(f"{path}: checkpoint metadata ({meta.kind}, input {meta.input_size}) does not match "
                         f"its model ({kind}, input {model.config.input_size})")
    return meta


def _update_manifest(weights_dir: Path, out_dir: Path, source: dict, tables: dict[str, dict[str, str]],
                     exported: list[str]) -> tuple[Path, list[str]]:
    """List the new graphs in OUT's manifest; entries of re-exported models that this export did not
    renew (an fp16 graph of an older checkpoint, say) are unlisted and returned."""
    same = out_dir.resolve() == weights_dir.resolve()
    if same:
        target = read_manifest(out_dir)
    else:
        target = read_manifest(out_dir) if (out_dir / MANIFEST).is_file() else {}
        if source.get("default_landmarks"):
            target["default_landmarks"] = source["default_landmarks"]
        if not target.get("checkpoints"):
            target.pop("checkpoints", None)  # copy nothing but the graphs' listing
    unlisted = []
    for key, table in tables.items():
        old = target.get(key) or {}
        unlisted += [old[k] for k in exported if k in old and k not in table and old[k] not in table.values()]
        current = {k: v for k, v in old.items() if k not in exported}
        current.update(table)
        if current:
            target[key] = current
        else:
            target.pop(key, None)
    return write_manifest(out_dir, target), unlisted


@dataclass
class ExportResult:
    """What an export wrote and how it checked out."""

    rows: list[Row]
    notes: list[str]
    source: str
    out_dir: Path
    manifest: Path
    files: list[Path] = field(default_factory=list)


def export_weights(weights_dir: str | Path, out_dir: str | Path | None = None, fmt: str = "onnx",
                   opset: int | None = None, fp16: bool = False, int8: bool = False,
                   calib: str | Path | None = None, data: str | Path | None = None,
                   log: Callable[[str], None] = print, int8_max_nme_loss: float = INT8_MAX_NME_LOSS,
                   int8_max_iou_loss: float = INT8_MAX_IOU_LOSS, verify_faces: int = VERIFY_FACES,
                   calib_faces: int = CALIB_FACES) -> ExportResult:
    """Export every checkpoint of a weights folder, verify each graph, then install files and manifest."""
    from core.models import load_model

    form: ExportFormat = get_format(fmt)
    for variant, wanted in (("fp16", fp16), ("int8", int8)):
        if wanted and variant not in form.variants:
            raise InputError(f"--{variant} is not available for format {fmt}")
    if int8 and calib is None:
        raise InputError("--int8 needs --calib PATH (a dataset of faces to calibrate on)")
    if calib is not None and not int8:
        raise InputError("--calib is only used with --int8")
    weights_dir = Path(weights_dir)
    manifest = read_manifest(weights_dir)
    items, notes = plan(weights_dir, manifest)
    out_dir = Path(out_dir) if out_dir is not None else weights_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: --out is not a folder")
    if (out_dir / MANIFEST).is_file():
        read_manifest(out_dir)  # an unreadable manifest there fails now, not after the export
    probe = make_probe(data, calib, verify_faces, calib_faces)
    log(probe.source)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from None

    # every table of the format, so entries this export does not renew get unlisted
    tables: dict[str, dict[str, str]] = {form.name: {}, **{f"{form.name}_{v}": {} for v in form.variants}}
    rows: list[Row] = []
    try:
        for item in items:
            model, ckpt = load_model(item.checkpoint, expect_kind=item.kind)
            meta = checkpoint_meta(ckpt, model, item.kind, item.checkpoint)
            file = item.stem + form.suffix
            log(f"{item.name}: exporting {file}")
            path = staging / file
            try:
                logging.disable(logging.CRITICAL)  # exporters log version-conversion tracebacks; we report
                form.export(model, with_precision(meta, "fp32"), path, opset)
            except FacetrackError:
                raise
            except Exception as exc:
                raise VerificationError(f"{file}: export failed ({_first_line(exc)})") from None
            finally:
                logging.disable(logging.NOTSET)
            written = opset_of(onnx.load(str(path), load_external_data=False))
            if opset is not None and written != opset:
                raise InputError(f"--opset {opset}: the {form.name} exporter cannot write it (it wrote opset "
                                 f"{written}); pick another opset")
            check = form.verify(path, model, meta, probe)
            rows.append(check.row)
            tables[form.name][item.name] = file
            if fp16:
                fp16_path = write_fp16(path, staging / f"{item.stem}.fp16{form.suffix}", meta)
                fp16_check, note = _verify_variant(fp16_path, model, meta, probe, check.score, "fp16")
                rows.append(fp16_check.row)
                notes += [note] if note else []
                tables[f"{form.name}_fp16"][item.name] = fp16_path.name
            if int8:
                int8_path = write_int8(path, staging / f"{item.stem}.int8{form.suffix}", meta, probe)
                int8_check, note = _verify_variant(int8_path, model, meta, probe, check.score, "int8")
                rows.append(int8_check.row)
                if int8_check.score is None or check.score is None:
                    raise VerificationError(f"{int8_path.name}: cannot measure its accuracy on ONNX Runtime CPU "
                                            f"({note or 'no held-out faces'}); refused")
                refuse_int8(int8_path.name, meta, check.score, int8_check.score, len(probe.real(meta)),
                            int8_max_nme_loss, int8_max_iou_loss)
                tables[f"{form.name}_int8"][item.name] = int8_path.name
        files = []
        for staged in sorted(staging.iterdir()):
            staged.replace(out_dir / staged.name)
            files.append(out_dir / staged.name)
        manifest_path, unlisted = _update_manifest(weights_dir, out_dir, manifest, tables, [i.name for i in items])
        if unlisted:
            notes.append("unlisted from the manifest (older than the new graphs, left on disk): "
                         + ", ".join(unlisted))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(rows, notes, probe.source, out_dir, manifest_path, files)


# ---------------------------------------------------------------- the table
def human_size(n: int) -> str:
    """Bytes as B / KB / MB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 ** 2:.1f} MB"


def format_table(rows: list[Row]) -> str:
    """The export table: file, size, opset, max |ONNX - PyTorch|, ORT CPU batch-1 median ms, accuracy."""
    header = ("file", "size", "opset", "max|ONNX-PyTorch|", "ORT CPU b1 ms", "accuracy")
    cells = [(r.file, human_size(r.size), str(r.opset) if r.opset is not None else "-",
              f"{r.max_diff:.1e}" if r.max_diff is not None else "n/a",
              f"{r.cpu_ms:.2f}" if r.cpu_ms is not None else "n/a", r.accuracy) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    right = {1, 2, 3, 4}

    def line(c):
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *(line(c) for c in cells)])
