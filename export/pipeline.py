"""`facetrack export`: every checkpoint of a weights folder to verified graphs, then the manifest.

Files are written into a staging folder inside the output folder and moved into place only when
every graph has passed its checks, so a failed export leaves earlier files and the manifest as they
were. Checks per graph: onnx.checker, metadata read back, ONNX Runtime (CPU) against PyTorch on
random and real inputs at batch 1 and 4, CPU latency at batch 1, accuracy on real faces.

The jobs live in their own modules; this one only runs them in order: `export.plan` (which
checkpoints, which files), `export.probe` (the real faces), `export.formats` (the exporter and its
check, `export.checks`), `export.fp16` / `export.int8` (lower-precision copies, int8 refusal),
`export.install` (files and manifest) and `export.report` (the table).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import onnx

from core.errors import FacetrackError, InputError, first_line
from core.manifest import AUTO_INT8_MAX_COST, AUTO_INT8_MIN_SPEEDUP, MANIFEST, int8_preferred, read_manifest
from core.meta import ModelMeta
from export.checks import cpu_session, verify_variant
from export.formats import ExportFormat, get_format
from export.fp16 import write_fp16
from export.install import list_graphs, move_staged
from export.int8 import INT8_MAX_IOU_LOSS, INT8_MAX_NME_LOSS, int8_unit, refuse_int8, write_int8
from export.onnx_graph import with_precision, with_source
from export.plan import Planned, checkpoint_meta, plan
from export.probe import CALIB_FACES, VERIFY_FACES, Probe, make_probe
from export.report import Row
from export.verify import VerificationError, opset_of, paired_latency_ms


@dataclass
class ExportResult:
    """What an export wrote and how it checked out."""

    rows: list[Row]
    notes: list[str]
    source: str
    out_dir: Path
    manifest: Path
    files: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused int8 graph was not written


@dataclass(frozen=True)
class _Options:
    """One export's settings, as `export_weights` took them."""

    form: ExportFormat
    opset: int | None
    fp16: bool
    int8: bool
    int8_max_nme_loss: float
    int8_max_iou_loss: float


def _write_graph(form: ExportFormat, model, meta: ModelMeta, path: Path, opset: int | None) -> None:
    """The format's exporter on one model; any failure of the exporter is a VerificationError, an
    --opset it cannot write an InputError."""
    try:
        logging.disable(logging.CRITICAL)  # exporters log version-conversion tracebacks; we report
        form.export(model, with_precision(meta, "fp32"), path, opset)
    except FacetrackError:
        raise
    except Exception as exc:
        raise VerificationError(f"{path.name}: export failed ({first_line(exc)})") from None
    finally:
        logging.disable(logging.NOTSET)
    written = opset_of(onnx.load(str(path), load_external_data=False))
    if opset is not None and written != opset:
        raise InputError(f"--opset {opset}: the {form.name} exporter cannot write it (it wrote opset "
                         f"{written}); pick another opset")


def _int8_item(path: Path, staging: Path, stem: str, suffix: str, model, meta: ModelMeta, probe: Probe,
               base: float | None, opts: _Options) -> tuple[Row, str | None, dict | None]:
    """Write and check the int8 copy of the verified fp32 graph `path` in `staging`; (its row, None, its
    record for the manifest's `int8_checks`: accuracy cost (`export.int8.int8_loss`) and CPU ms against
    fp32's, timed in alternating rounds) when it passes, (its row, why, None) when it is refused for
    accuracy, its file removed from `staging` then."""
    int8_path = write_int8(path, staging / f"{stem}.int8{suffix}", meta, probe.calib(meta).x)
    check, note = verify_variant(int8_path, model, meta, probe, base, "int8")
    try:
        if check.score is None or base is None:
            raise VerificationError(f"{int8_path.name}: cannot measure its accuracy on ONNX Runtime CPU "
                                    f"({note or 'no held-out faces'}); refused")
        cost = refuse_int8(int8_path.name, meta, base, check.score, len(probe.real(meta)), opts.int8_max_nme_loss,
                           opts.int8_max_iou_loss)
    except VerificationError as exc:
        int8_path.unlink(missing_ok=True)
        check.row.accuracy += " (refused)"
        return check.row, str(exc), None
    fp32_ms, int8_ms = paired_latency_ms(cpu_session(path), cpu_session(int8_path), meta.input_size)
    return check.row, None, {"accuracy_cost": round(float(cost), 4),
                             "unit": int8_unit(meta),
                             "cpu_ms": round(int8_ms, 3), "fp32_cpu_ms": round(fp32_ms, 3)}


def _export_item(item: Planned, opts: _Options, staging: Path, probe: Probe, tables: dict[str, dict[str, str]],
                 checks: dict[str, dict], log: Callable[[str], None]) -> tuple[list[Row], list[str], list[str]]:
    """Write and check one model's graphs in `staging`, listing them in `tables` and what was measured of its
    int8 graph in `checks` (`core.manifest.INT8_CHECKS`); (rows, notes, why its int8 graph was refused:
    empty when it was not)."""
    from core.models import load_model

    form = opts.form
    model, ckpt = load_model(item.checkpoint, expect_kind=item.kind)
    meta = with_source(checkpoint_meta(ckpt, model, item.kind, item.checkpoint), item.checkpoint)
    file = item.stem + form.suffix
    log(f"{item.name}: exporting {file}")
    path = staging / file
    _write_graph(form, model, meta, path, opts.opset)
    check = form.verify(path, model, meta, probe)
    rows, notes = [check.row], []
    tables[form.name][item.name] = file
    if opts.fp16:
        fp16_path = write_fp16(path, staging / f"{item.stem}.fp16{form.suffix}", meta)
        fp16_check, note = verify_variant(fp16_path, model, meta, probe, check.score, "fp16")
        rows.append(fp16_check.row)
        notes += [note] if note else []
        tables[f"{form.name}_fp16"][item.name] = fp16_path.name
    refused = []
    if opts.int8:
        row, why, record = _int8_item(path, staging, item.stem, form.suffix, model, meta, probe, check.score, opts)
        rows.append(row)
        if why is None:
            tables[f"{form.name}_int8"][item.name] = f"{item.stem}.int8{form.suffix}"
            checks[item.name] = record
        else:
            refused.append(why)
    return rows, notes, refused


def int8_notes(manifest: dict, graphs: dict[str, str], checks: dict[str, dict]) -> list[str]:
    """One line per int8 graph written: whether `--precision auto` runs it on the CPU
    (`core.manifest.int8_preferred`), with the cost and speed-up that decided it."""
    lines = []
    for model, file in graphs.items():
        record = checks.get(model) or {}
        speedup = record.get("fp32_cpu_ms", 0.0) / max(record.get("cpu_ms", 0.0), 1e-9)
        said = f"{file}: {record.get('accuracy_cost', float('nan')):+.3f} {record.get('unit', '')}, {speedup:.1f}x " \
               "fp32's speed"
        if int8_preferred(manifest, model):
            lines.append(f"{said}: --precision auto runs it on the CPU")
        else:
            lines.append(f"{said}: --precision auto keeps fp32 (it runs int8 within {AUTO_INT8_MAX_COST['NME points']} "
                         f"NME points / {AUTO_INT8_MAX_COST['IoU']} IoU and at least {AUTO_INT8_MIN_SPEEDUP}x faster)")
    return lines


def export_weights(weights_dir: str | Path, out_dir: str | Path | None = None, fmt: str = "onnx",
                   opset: int | None = None, fp16: bool = False, int8: bool = False,
                   calib: str | Path | None = None, data: str | Path | None = None,
                   log: Callable[[str], None] = print, int8_max_nme_loss: float = INT8_MAX_NME_LOSS,
                   int8_max_iou_loss: float = INT8_MAX_IOU_LOSS, verify_faces: int = VERIFY_FACES,
                   calib_faces: int = CALIB_FACES) -> ExportResult:
    """Export every checkpoint of a weights folder, verify each graph, then install files and manifest.

    Writes into `out_dir` (default: the weights folder): `landmarks.onnx` for the default landmark
    model, `landmarks-<name>.onnx` for the others, `box.onnx`; with fp16 also `<stem>.fp16.onnx`
    (float16 weights, float32 in/out), with int8 also `<stem>.int8.onnx` (static QDQ calibrated on
    `calib_faces` faces of `calib`). Then lists them in out_dir's manifest.json (tables 'onnx',
    'onnx_fp16', 'onnx_int8'), unlisting variants of these models that this export did not renew.
    Each graph is checked on `verify_faces` real faces from `data` (default: the shared data set;
    random input only when none), held out from the calibration faces. int8 graphs are refused when
    they lose more than `int8_max_nme_loss` NME points (% of inter-ocular distance) or
    `int8_max_iou_loss` mean IoU against fp32; what was measured of each int8 graph listed (accuracy cost,
    CPU ms against fp32's) goes into the manifest's `int8_checks`, from which `--precision auto` decides
    whether the int8 graph runs by default on the CPU (`core.manifest.int8_preferred`). `opset`: the ONNX
    opset (None: the exporter's default, 18); `log` gets progress lines.

    Returns the table rows (sizes in bytes, max |ONNX - PyTorch|, ORT CPU batch-1 median latency in ms
    with the runtime's session settings, accuracy), notes, where the faces came from, and the files
    and manifest written. Raises InputError for bad usage or input (unknown format, --fp16/--int8 the
    format lacks, --int8 without --calib or --calib without --int8, a missing or unreadable weights
    folder, manifest or checkpoint, an --out that is not a writable folder, an --opset the exporter
    cannot write, too few faces); VerificationError (exit 1) when a graph fails a check: nothing is
    installed then and the manifest is left as it was. An int8 graph refused for accuracy (or whose
    accuracy cannot be measured) is not: it is left out, every other graph (fp32, fp16, the other int8
    ones) is installed and listed as usual, an older int8 graph of that model unlisted, and the result's
    `refused` says why (`facetrack export` then exits 1).
    """
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

    opts = _Options(form, opset, fp16, int8, int8_max_nme_loss, int8_max_iou_loss)
    # every table of the format, so entries this export does not renew get unlisted
    tables: dict[str, dict[str, str]] = {form.name: {}, **{f"{form.name}_{v}": {} for v in form.variants}}
    rows: list[Row] = []
    refused: list[str] = []
    checks: dict[str, dict] = {}
    try:
        for item in items:
            item_rows, item_notes, item_refused = _export_item(item, opts, staging, probe, tables, checks, log)
            rows += item_rows
            notes += item_notes
            refused += item_refused
        files = move_staged(staging, out_dir)
        manifest_path, unlisted = list_graphs(weights_dir, out_dir, manifest, tables, [i.name for i in items], checks)
        if unlisted:
            notes.append("unlisted from the manifest (older than the new graphs, left on disk): "
                         + ", ".join(unlisted))
        notes += int8_notes(read_manifest(out_dir), tables.get(f"{form.name}_int8", {}), checks)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(rows, notes, probe.source, out_dir, manifest_path, files, refused)
