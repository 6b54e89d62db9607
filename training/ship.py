"""Put trained models into the weights folder: a run's best checkpoint, compactly (fp16 tensors, no
optimizer state), and the choice of which precision of each exported ONNX graph ships.

The manifest is changed through `core.manifest` only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import torch

from core.errors import FacetrackError, InputError
from core.manifest import BOX_MODEL, MANIFEST, int8_preferred, read_manifest, remove_model_file, set_model_file
from core.meta import data_terms
from core.models import make_config, model_kind, model_meta, read_checkpoint, save_checkpoint
from training.data import formats_of

KEEP = ("format", "model", "config", "meta", "epoch", "metrics", "train_config", "elapsed_s", "convention_offsets")


FILENAMES = {"box": "box.pt", "detector": "detector.pt"}  # landmark models: landmarks-<name>.pt


def ship_checkpoint(src: str | Path, weights_dir: str | Path, default: bool = False, name: str | None = None,
                    min_score: float | None = None) -> Path:
    """Write `landmarks-<name>.pt` (box: `box.pt`, multi-face detector: `detector.pt`) in fp16 and list it
    in the manifest under `name`.

    `name` (what `--landmark-model` selects) defaults to the architecture, e.g. 'resnet'; a second model
    of one architecture needs its own. default=True also makes it the default landmark model (a
    detector: the default detector; ignored for the box model). A detector's `min_score` (its shipped
    threshold, chosen on validation) goes into its metadata. The metadata's `data_terms` name the sets of
    its `train_config`. The written path. InputError for `min_score` on another kind of model.
    """
    ckpt = read_checkpoint(src)
    name = name or ckpt["model"]
    slim = {k: ckpt[k] for k in KEEP if k in ckpt}
    trained_on = (ckpt.get("train_config") or {}).get("data") or ()
    if trained_on and isinstance(slim.get("meta"), dict):
        # what the weights may be used for follows from what they were trained on
        slim["meta"] = {**slim["meta"], "data_terms": data_terms(formats_of(trained_on))}
    kind = model_kind(ckpt["model"])
    if kind == "detector":  # its metadata as today's code writes it (runs from before face_side_px had none)
        current = model_meta(ckpt["model"], make_config(ckpt["model"], **ckpt["config"])).to_dict()
        stored = slim.get("meta") or current
        slim["meta"] = {**stored, "extra": {**current["extra"], **stored.get("extra", {})}}
    if min_score is not None:
        if kind != "detector":
            raise InputError(f"--min-score is a detector's threshold; {src} holds a {kind} model")
        if not 0.0 < min_score < 1.0:
            raise InputError("--min-score must lie between 0 and 1")
        meta = slim.get("meta") or model_meta(ckpt["model"], make_config(ckpt["model"], **ckpt["config"])).to_dict()
        slim["meta"] = {**meta, "extra": {**meta.get("extra", {}), "min_score": f"{min_score:g}"}}
    slim["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    folder = Path(weights_dir)
    folder.mkdir(parents=True, exist_ok=True)
    filename = FILENAMES.get(kind, f"landmarks-{name}.pt")
    save_checkpoint(folder / filename, slim)
    set_model_file(folder, "checkpoints", name, filename, default=default and kind != "box")
    return folder / filename


def ship_one_graph_per_model(weights_dir: str | Path, fp16_only: Iterable[str]) -> dict:
    """Keep one exported ONNX graph per model: the fp16 graph for the models named in `fp16_only`, the
    fp32 graph for the others; the other graph is unlisted and deleted. An int8 graph stays beside it where
    `--precision auto` runs it on the CPU (`core.manifest.int8_preferred`); other int8 graphs go, and their
    export records with them. The manifest afterwards.

    InputError when a model lacks the graph it should keep; nothing is removed then.
    """
    folder = Path(weights_dir)
    fp16_names = set(fp16_only)
    manifest = read_manifest(folder)
    graphs = {"onnx": manifest.get("onnx") or {}, "onnx_fp16": manifest.get("onnx_fp16") or {}}
    drop = []
    for name in sorted(fp16_names | set(graphs["onnx_fp16"])):
        keep, other = ("onnx_fp16", "onnx") if name in fp16_names else ("onnx", "onnx_fp16")
        if name not in graphs[keep]:
            raise InputError(f"{folder / MANIFEST}: no {'fp16' if keep == 'onnx_fp16' else 'fp32'} ONNX graph "
                             f"of {name!r} to ship")
        drop += [(other, name)] if name in graphs[other] else []
    drop += [("onnx_int8", name) for name in sorted(manifest.get("onnx_int8") or {})
             if not int8_preferred(manifest, name)]
    for table, name in drop:
        remove_model_file(folder, table, name)  # an int8 graph's export record goes with it
    return read_manifest(folder)


DROP_TABLES = ("checkpoints", "onnx", "onnx_fp16", "onnx_int8")


def drop_models(weights_dir: str | Path, names: Iterable[str]) -> list[Path]:
    """Unlist landmark models from every table of the manifest and delete their files (a file another
    entry still names stays); the unlisted paths. Every name is checked before anything changes:
    InputError for the box model, the default landmark model (ship another default first) or a model the
    manifest does not list."""
    folder = Path(weights_dir)
    manifest = read_manifest(folder)
    names = list(dict.fromkeys(names))
    for name in names:
        if name == BOX_MODEL:
            raise InputError(f"{name!r} is the face-box model, which the tracker needs; --drop takes landmark models")
        if manifest.get("default_landmarks") == name:
            raise InputError(f"{name!r} is the default landmark model; ship another one with --default first")
        if not any(name in (manifest.get(t) or {}) for t in DROP_TABLES):
            raise InputError(f"{folder / MANIFEST}: lists no model {name!r}")
    return [remove_model_file(folder, table, name) for name in names for table in DROP_TABLES
            if name in (manifest.get(table) or {})]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m training.ship",
        description="Ship a run's best.pt into weights/ (fp16, manifest updated), and/or choose which precision "
                    "of each ONNX graph ships.")
    parser.add_argument("checkpoint", nargs="?", help="a run's best.pt to ship")
    parser.add_argument("--weights", default="weights", help="the weights folder (default: ./weights)")
    parser.add_argument("--default", action="store_true",
                        help="make it the default landmark model (a detector: the default detector)")
    parser.add_argument("--min-score", type=float, help="a detector's shipped threshold (chosen on validation)")
    parser.add_argument("--name", help="the name it is listed (and selected with --landmark-model) under; "
                                       "default: its architecture")
    parser.add_argument("--fp16-only", nargs="+", metavar="MODEL",
                        help="after export: ship these models' fp16 ONNX graphs and the others' fp32 graphs, "
                             "deleting the other precision, and keep the int8 graphs that --precision auto runs "
                             "on the CPU")
    parser.add_argument("--drop", nargs="+", metavar="MODEL", default=[],
                        help="after shipping the checkpoint: unlist these landmark models and delete their files")
    args = parser.parse_args()
    if not args.checkpoint and not args.fp16_only and not args.drop:
        parser.error("give a checkpoint to ship, --fp16-only MODEL..., --drop MODEL..., or several")
    torch.set_num_threads(1)
    try:
        if args.checkpoint:
            print(ship_checkpoint(args.checkpoint, args.weights, args.default, args.name, args.min_score))
        if args.drop:
            print("dropped", ", ".join(map(str, drop_models(args.weights, args.drop))))
        if args.fp16_only:
            print(json.dumps(ship_one_graph_per_model(args.weights, args.fp16_only), indent=2))
    except FacetrackError as exc:
        parser.exit(exc.exit_code, f"{parser.prog}: error: {exc}\n")
