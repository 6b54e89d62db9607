"""Point calibration of a landmark checkpoint: each point's mean offset in the face frame, measured on
training faces through the runtime's own path, stored in the checkpoint's metadata for the runtime to
subtract (`core.meta.ModelMeta.point_offsets`, `core.postprocess.calibrated_points`).

Why: the shipped SimCC model placed the eyes about 2 % of the inter-ocular distance too low and the mouth
2-3 % too high on average, on its own training faces as on validation (the face drawn shorter, as a model
unsure of the face's size does when its training crops show faces smaller, on average, than the
runtime's: crop scale jitter 0.85-1.4 around the runtime's 1.0). A constant per-point offset in the face
frame (across: right eye to left eye; down: that turned +90 degrees; units: the inter-ocular distance)
removes that mean error; measured with the model's own crops (`tracker.locate.Locator`, all its passes),
repeated `rounds` times since corrected points move the later passes' crops.

Only faces annotated in the output convention (the 68-point sets, `CONVENTION_IBUG68`) are used, and only
the training split (as the checkpoint's own run split all its data sets): validation and test stay unseen.

    python -m facetrack.calibrate runs/NAME/best.pt [--faces 3000] [--rounds 2] [--out PATH]

(the run's own data sets and split, from its checkpoint's train_config; `--data` where it has none).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.errors import FacetrackError
from core.geometry import offsets_in_face_frame
from core.models import read_checkpoint, save_checkpoint
from training.data.samples import CONVENTION_IBUG68

# Faces whose NME exceeds this (% of the inter-ocular distance) are left out of the mean: a face the model
# gets wrong says nothing about its bias.
MAX_NME = 20.0


def _subset(samples: list, n: int, seed: int) -> list:
    if len(samples) <= n:
        return samples
    rng = np.random.default_rng(seed)
    return [samples[i] for i in sorted(rng.choice(len(samples), n, replace=False))]


def measure(checkpoint: Path, data: tuple[str, ...], faces: int, rounds: int, seed: int = 0,
            log=print) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """(point offsets (P, 2) in inter-ocular units, convention offsets {name: (P, 2)}, report) of a landmark
    checkpoint, measured on up to `faces` training faces of the output convention, then up to `faces` / 2
    of each other convention its run learned offsets for.

    The convention offsets (`training.conventions`, which move the model's 68-point output into a set's
    own point convention for scoring it against its labels) were learned on the uncorrected output: each
    is refitted by its mean residual on its own training faces once the point offsets apply, so that
    `facetrack eval` keeps scoring those sets in their conventions. The report gives the NME (%) on the
    output convention's faces before and after, and per other convention."""
    from facetrack.evaluate import in_own_conventions, locate_faces, select_faces
    from tracker.backends import create_backend
    from tracker.locate import Locator

    ckpt = read_checkpoint(checkpoint)
    trained = ckpt.get("train_config") or {}
    data = tuple(data or trained.get("data") or ())
    if not data:
        raise FacetrackError(f"{checkpoint}: no training data recorded; give --data (the run's data sets)")
    # the split of all the run's data sets, as the run split them (identities differ with the sets pooled)
    pool = select_faces(data, None, "train", int(trained.get("seed", 0)), bool(trained.get("split_lookalikes", False)))
    samples = _subset([s for s in pool if s.convention == CONVENTION_IBUG68], faces, seed)
    if not samples:
        raise FacetrackError(f"no training faces in the {CONVENTION_IBUG68} convention in {', '.join(data)}")
    backend = create_backend("torch", checkpoint, "cpu", expect_kind="landmarks")
    base_meta = replace(backend.meta, point_offsets=())
    offsets = np.zeros((len(base_meta.point_names), 2))
    report: dict = {"faces": len(samples), "sources": sorted({s.group for s in samples}), "nme_by_round": []}
    for r in range(rounds + 1):
        backend.meta = replace(base_meta, point_offsets=tuple(float(v) for v in offsets.reshape(-1)))
        run = locate_faces(Locator(backend), samples)
        nme = run.nme()
        report["nme_by_round"].append(round(float(nme.mean()), 3))
        log(f"round {r}: offsets (% IOD) {np.round(offsets * 100, 2).tolist()}  NME {nme.mean():.2f}% "
            f"on {len(nme)} training faces")
        if r == rounds:
            break
        keep = nme <= MAX_NME
        offsets = offsets + offsets_in_face_frame(run.points_px[keep], run.truth_px[keep]).mean(axis=0)
    report["nme_before"], report["nme_after"] = report["nme_by_round"][0], report["nme_by_round"][-1]
    conventions: dict[str, np.ndarray] = {}
    learned = ckpt.get("convention_offsets") or {}
    for name, rows in learned.items():
        table = np.asarray(rows, dtype=np.float64)
        own = _subset([s for s in pool if s.convention == name], max(faces // 2, 1), seed)
        if name == CONVENTION_IBUG68 or not own or not np.any(table):
            conventions[name] = table
            continue
        located = locate_faces(Locator(backend), own)  # the model's output: the refit moves only the conversion
        run = in_own_conventions(located, {name: table})
        before = run.nme()
        keep = before <= MAX_NME
        conventions[name] = table - offsets_in_face_frame(run.points_px[keep], run.truth_px[keep]).mean(axis=0)
        after = in_own_conventions(located, {name: conventions[name]}).nme()
        report[f"nme_{name}"] = [round(float(before.mean()), 3), round(float(after.mean()), 3)]
        log(f"{name}: convention offsets refitted on {len(own)} training faces: NME {before.mean():.2f} -> "
            f"{after.mean():.2f}%")
    return offsets, conventions, report


def write_offsets(checkpoint: Path, offsets: np.ndarray, out: Path | None = None,
                  conventions: dict[str, np.ndarray] | None = None) -> Path:
    """Store `offsets` (P, 2) in the checkpoint's metadata (`meta.point_offsets`) and, when given, the
    refitted `conventions` offsets in its `convention_offsets`; in place or at `out`."""
    from core.meta import ModelMeta
    from core.models import aligned_meta, build_model, model_meta

    ckpt = read_checkpoint(checkpoint)
    model = build_model(ckpt["model"], ckpt["config"])
    meta = ckpt.get("meta") or model_meta(ckpt["model"], model.config).to_dict()
    meta = {**meta, "point_offsets": [round(float(v), 6) for v in np.asarray(offsets).reshape(-1)]}
    ckpt["meta"] = aligned_meta(ModelMeta.from_dict(meta), model).to_dict()
    if conventions:
        ckpt["convention_offsets"] = {name: np.round(np.asarray(t, np.float64), 6).tolist()
                                      for name, t in conventions.items()}
    target = out or checkpoint
    save_checkpoint(target, ckpt)
    return Path(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facetrack.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", action="append", default=None,
                        help="data set folder (repeat); default: the run's own (its train_config)")
    parser.add_argument("--faces", type=int, default=3000, help="training faces to measure on (a random subset)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write here instead of in place")
    args = parser.parse_args(argv)
    try:
        offsets, conventions, report = measure(args.checkpoint, tuple(args.data or ()), args.faces, args.rounds)
        path = write_offsets(args.checkpoint, offsets, args.out, conventions)
    except FacetrackError as exc:
        print(f"facetrack: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote point offsets to {path}: NME on {report['faces']} training faces {report['nme_before']:.2f} -> "
          f"{report['nme_after']:.2f}% ({', '.join(report['sources'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
