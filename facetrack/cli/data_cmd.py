"""`facetrack data inspect`: what a dataset folder holds, before training on it."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app
from facetrack.cli.common import handle_errors

data_app = typer.Typer(help="Look at face datasets: counts, skipped labels, splits, face sizes.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


class DatasetFormat(str, Enum):
    """Dataset formats the readers understand."""

    aflw = "aflw"
    w300 = "300w"
    ytf_csv = "ytf-csv"
    dlib_xml = "dlib-xml"


def check_sheet_path(sheet: Path) -> None:
    """Fail before any work when the contact sheet cannot be written where asked."""
    if sheet.is_dir():
        raise InputError(f"--sheet {sheet}: is a folder; give a .png file path")
    if not sheet.parent.is_dir():
        raise InputError(f"--sheet {sheet}: folder {sheet.parent} does not exist")
    if sheet.suffix.lower() != ".png":
        raise InputError(f"--sheet {sheet}: the contact sheet is a PNG; give a .png file name")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:g}"


def format_report(info: dict) -> str:
    """A readable multi-line table of an inspect_dataset dict (and, under "sheet", where the contact sheet
    was written)."""
    lines = [
        f"dataset      {info['root']}",
        f"format       {info['format']}",
        f"images       {info['images']}",
        f"faces        {info['faces']}",
        f"identities   {info['identities']}",
        "groups       " + ", ".join(f"{name} {n}" for name, n in info["groups"].items()),
        "conventions  " + ", ".join(f"{name} {n}" for name, n in info["conventions"].items()),
        f"skipped      {sum(info['skipped'].values())}",
    ]
    lines += [f"  {reason:<24} {count}" for reason, count in info["skipped"].items()]
    lines.append(f"splits (seed {info['seed']})")
    lines += [f"  {name:<24} {count}" for name, count in info["splits"].items()]
    lines.append(f"{'percentiles (px)':<26} {'p5':>8} {'p50':>8} {'p95':>8}")
    for key, label in (("face_size_px", "face size (box side)"), ("iod_px", "inter-ocular distance")):
        q = info[key]
        lines.append(f"  {label:<24} {_fmt(q['p5']):>8} {_fmt(q['p50']):>8} {_fmt(q['p95']):>8}")
    if info.get("sheet"):
        lines.append(f"contact sheet {info['sheet']}")
    return "\n".join(lines)


@data_app.command("inspect")
@handle_errors
def inspect_cmd(
    path: Path = typer.Argument(..., help="Dataset folder or file (AFLW .sqlite, dlib .xml, keypoints CSV)."),
    fmt: DatasetFormat | None = typer.Option(None, "--format",
                                             help="Dataset format; detected from the contents when left out."),
    single_face_only: bool = typer.Option(False, "--single-face-only",
                                          help="Drop faces from images holding more than one labelled face."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    sheet: Path | None = typer.Option(None, "--sheet", help="Also write a PNG contact sheet of sampled faces here."),
    seed: int = typer.Option(0, "--seed", help="Seed for the identity splits and the contact sheet's sample."),
) -> None:
    """Count faces, skipped labels by reason, split sizes and face-size percentiles of a dataset."""
    from training.data import load_dataset
    from training.data.inspect import contact_sheet, inspect_dataset

    if sheet is not None:
        check_sheet_path(sheet)
    result = load_dataset(path, fmt.value if fmt else None, single_face=single_face_only)
    info = inspect_dataset(result, seed=seed)
    if sheet is not None:
        info["sheet"] = str(contact_sheet(result.samples, sheet, seed=seed))
    typer.echo(json.dumps(info) if as_json else format_report(info))
