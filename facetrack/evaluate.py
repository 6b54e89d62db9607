"""`facetrack eval`: the accuracy of what ships, measured the way it runs.

Landmarks: on each ground-truth face box, the runtime's own path (`tracker.locate.Locator.in_box`: the
crop `core.preprocess` makes, the backend `tracker.backends` loads, first pass plus the de-rolled
second pass, as on a box-model frame or a still image) with `--backend onnx` (the shipped graph,
default) or `torch` (the checkpoint). NME is in % of the true inter-ocular distance, overall, per
point and per source group (`FaceSample.group`); every group is scored against its own labels, in its
own point convention (`FaceSample.convention`: MTFL and Caltech put the eyes on the pupils and the
mouth elsewhere than the 68-point sets). A model trained with per-convention offsets (its checkpoint's
`convention_offsets`) has its 68-convention points moved into each set's convention first
(`in_own_conventions`); for a model without them the NME includes the convention gap.

Box: IoU and presence accuracy on training's letterboxed images and no-face crops
(`training.evaluate.evaluate_box`), through the same backend.

`--split test` rebuilds the split the landmark model was trained with (`training.train.split_samples`):
the seed, the look-alike merging (`split_lookalikes`, False when absent) and `single_face_only` its
checkpoint's `train_config` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.errors import InputError
from core.geometry import apply_affine, crop_affine, crop_matrix, face_square_from_points
from core.imageio import read_ahead, read_image_bgr
from core.manifest import BOX_MODEL, check_run_precision, landmark_model_name, read_manifest
from core.meta import LANDMARK_CROP_SCALE, POINT_NAMES
from core.metrics import landmark_metrics, nme_per_face
from tracker.backends import check_precision, create_backend, listed_file
from tracker.locate import DEFAULT_MIN_QUALITY, DEFAULT_PASSES, Crop, Landmarks, Locator
from tracker.weights_source import weights_source
from training.data.samples import FaceSample

Log = Callable[[str], None]
WHATS = ("landmarks", "box", "both", "detector")
SHEET_TILE = 160
SHEET_FACES = 24


@dataclass(frozen=True)
class EvalJob:
    """What `facetrack eval` measures (its options)."""

    data: tuple[str, ...]
    format: str | None = None
    weights: Path | None = None  # None: the shipped weights/
    landmark_model: str | None = None  # None: the manifest's default
    backend: str = "onnx"
    device: str = "auto"
    passes: int = DEFAULT_PASSES
    split: str = "all"
    seed: int | None = None  # None: the training run's seed (0 when the checkpoint does not say)
    what: str = "both"
    flip_test: bool = False
    min_quality: float = DEFAULT_MIN_QUALITY
    workers: int = 2
    detector: str | None = None  # --what detector: a --detector name; None: the manifest's default
    min_score: float | None = None  # the detector's threshold; None: the model's own default
    precision: str = "auto"  # which ONNX graph of each model (core.manifest.graph_table), as at run time
    cut: bool = False  # also score the faces cut by the image border (facetrack.cut_faces)


@dataclass
class LandmarkRun:
    """The runtime's answer on every readable face: points (N, P, 2) px, quality (N,) (NaN: the model
    gives none), the final crop of each face, and the faces whose image could not be read."""

    samples: list[FaceSample]
    points_px: np.ndarray
    quality: np.ndarray
    crops: list[Crop]
    crops_run: np.ndarray
    unreadable: list[FaceSample] = field(default_factory=list)

    @property
    def truth_px(self) -> np.ndarray:
        return np.stack([s.points_px for s in self.samples]).astype(np.float32) if self.samples else \
            np.zeros((0, len(POINT_NAMES), 2), np.float32)

    def nme(self) -> np.ndarray:
        """(N,) NME of each face in % of its true inter-ocular distance."""
        return nme_per_face(self.points_px, self.truth_px)


@dataclass(frozen=True)
class TrainingRecord:
    """What a model's checkpoint in the weights folder says of its training: its `train_config` ({}
    when it has none) and the convention offsets it learned ({convention: (P, 2) face-frame offsets,
    `training.conventions.ConventionOffsets`}; {} when it has none). Read once per model."""

    settings: dict
    offsets: dict[str, np.ndarray]

    @classmethod
    def of(cls, weights_dir: Path, model: str) -> TrainingRecord:
        manifest = read_manifest(weights_dir)
        file = (manifest.get("checkpoints") or {}).get(model)
        if not file or not (Path(weights_dir) / file).is_file():
            return cls({}, {})
        return cls.of_checkpoint(Path(weights_dir) / file)

    @classmethod
    def of_checkpoint(cls, path: Path) -> TrainingRecord:
        """The record of one checkpoint file (InputError when it is no readable checkpoint)."""
        from core.models import read_checkpoint

        ckpt = read_checkpoint(Path(path))
        config, offsets = ckpt.get("train_config"), ckpt.get("convention_offsets")
        return cls(dict(config) if isinstance(config, dict) else {},
                   {name: np.asarray(rows, dtype=np.float64) for name, rows in offsets.items()}
                   if isinstance(offsets, dict) else {})


def training_settings(weights_dir: Path, model: str) -> dict:
    """The `train_config` of a model's checkpoint in the weights folder ({} when it has none)."""
    return TrainingRecord.of(weights_dir, model).settings


def convention_offsets(weights_dir: Path, model: str) -> dict[str, np.ndarray]:
    """The convention offsets a model's checkpoint learned ({} when it has none; `TrainingRecord`)."""
    return TrainingRecord.of(weights_dir, model).offsets


def in_own_conventions(run: LandmarkRun, offsets: dict[str, np.ndarray]) -> LandmarkRun:
    """The run with each face's points moved into the point convention its set is labelled in, by the
    model's learned offsets (in the frame of the predicted points, as in training); faces of conventions
    without an offset (the 68-point one, or a model without offsets) are left as they are."""
    points = own_convention_points(run.points_px, [s.convention for s in run.samples], offsets)
    return LandmarkRun(run.samples, points, run.quality, run.crops, run.crops_run, run.unreadable)


def own_convention_points(points_px: np.ndarray, conventions: list[str], offsets: dict[str, np.ndarray]
                          ) -> np.ndarray:
    """Points (N, P, 2) px moved into each face's convention (`conventions`, N names) by the model's
    learned offsets (`in_own_conventions`); a copy, float32."""
    from training.conventions import apply_face_frame_offsets

    points = np.asarray(points_px, dtype=np.float32).copy()
    conventions_a = np.array(conventions)
    for name, table in offsets.items():
        idx = np.nonzero(conventions_a == name)[0]
        if len(idx) and np.any(table):
            points[idx] = apply_face_frame_offsets(points[idx], table).astype(np.float32)
    return points


def select_faces(data: tuple[str, ...], fmt: str | None, split: str, seed: int, lookalikes: bool,
                 workers: int = 2, single_face_only: bool = False) -> list[FaceSample]:
    """The faces of one split of the pooled data sets ('all': every face), split as training splits them
    (`training.train.split_samples`: identities, look-alike copies of one photo merged when
    `lookalikes`). InputError for an unknown split or format, or unreadable data."""
    from training.data.splits import SPLITS
    from training.train import TrainConfig, split_samples

    if split != "all" and split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected all, {', '.join(SPLITS)}")
    cfg = TrainConfig(data=tuple(data), format=fmt, seed=seed, workers=workers, single_face_only=single_face_only,
                      split_lookalikes=lookalikes and split != "all")
    try:
        splits = split_samples(cfg, log=lambda line: None)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return [s for name in SPLITS for s in splits[name]] if split == "all" else splits[split]


def model_split(weights_dir: Path, model: str, data: tuple[str, ...], split: str, workers: int = 2
                ) -> list[FaceSample]:
    """The faces of one split of the pooled `data` as `model`'s own training run split them: the seed,
    look-alike merging and single-face setting of its checkpoint's `train_config` (missing: seed 0, no
    merging, as `evaluate` assumes). InputError as `select_faces`."""
    trained = training_settings(weights_dir, model)
    return select_faces(tuple(data), None, split, int(trained.get("seed", 0)),
                        bool(trained.get("split_lookalikes", False)), workers,
                        single_face_only=bool(trained.get("single_face_only", False)))


def locate_faces(locator: Locator, samples: list[FaceSample], flip_test: bool = False,
                 workers: int = 2) -> LandmarkRun:
    """Run the box path of the runtime (`Locator.in_box`) on each face's ground-truth box; with
    `flip_test`, the final pass averaged with its mirrored crop. Images are decoded ahead in threads;
    progress (faces) goes to stderr (`core.progress`)."""
    from core.progress import track

    width = len(POINT_NAMES)
    points, quality, crops, runs, kept, unreadable = [], [], [], [], [], []
    for sample, image in track(read_ahead(samples, workers), "landmarks", len(samples), "face"):
        if image is None:
            unreadable.append(sample)
            continue
        found: Landmarks = locator.in_box(image, sample.box_xyxy)
        if flip_test:
            found = locator.mirror_averaged(image, found)
        kept.append(sample)
        points.append(found.points_px)
        quality.append(math.nan if found.quality is None else found.quality)
        crops.append(found.crop)
        runs.append(found.crops_run)
    return LandmarkRun(kept, np.asarray(points, np.float32).reshape(-1, width, 2), np.asarray(quality, np.float64),
                       crops, np.asarray(runs, np.int64), unreadable)


def landmark_report(run: LandmarkRun, min_quality: float = DEFAULT_MIN_QUALITY) -> dict:
    """Today's keys (faces, nme_mean, nme_median, failure_rate, per_point) over all faces, the same per
    source group under "per_group" (with its point convention), crops per face, and for models with a
    quality output its mean and the share of faces the runtime would drop (below `min_quality`)."""
    pred, truth = run.points_px, run.truth_px
    report = landmark_metrics(pred, truth)
    report["crops_per_face"] = float(run.crops_run.mean()) if len(run.crops_run) else 0.0
    report["unreadable"] = len(run.unreadable)
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(run.samples):
        groups.setdefault(sample.group, []).append(i)
    report["per_group"] = {}
    for group in sorted(groups):
        idx = np.array(groups[group])
        row = landmark_metrics(pred[idx], truth[idx])
        row["convention"] = run.samples[idx[0]].convention
        row.update(_quality_stats(run.quality[idx], min_quality))
        report["per_group"][group] = row
    report.update(_quality_stats(run.quality, min_quality))
    return report


def _quality_stats(quality: np.ndarray, min_quality: float) -> dict:
    if not len(quality) or np.isnan(quality).all():
        return {}
    return {"quality_mean": float(quality.mean()), "below_min_quality": float((quality < min_quality).mean())}


def worst_faces_sheet(run: LandmarkRun, out_path: Path, n: int = SHEET_FACES, tile: int = SHEET_TILE) -> Path:
    """PNG grid of the `n` faces with the largest NME, each in the crop the runtime's final pass saw
    (turned as it was): truth as rings, the answer as dots, group and NME written on each."""
    nme = run.nme()
    cells = []
    for i in np.argsort(-nme)[:n]:
        crop, sample = run.crops[i], run.samples[i]
        m = crop_matrix(crop.center_px, crop.side_px, tile, crop.angle_deg)
        cells.append(_cell(read_image_bgr(sample.image_path), m, tile, sample.points_px, run.points_px[i],
                           (sample.group, f"NME {nme[i]:.1f}%")))
    return _grid(cells, out_path, tile)


def cut_faces_sheet(answers: list, out_path: Path, min_quality: float = DEFAULT_MIN_QUALITY, n: int = SHEET_FACES,
                    tile: int = SHEET_TILE) -> Path:
    """PNG grid of the `n` cut faces (`facetrack.cut_faces.CutAnswer`, points in each set's convention) the
    tool reported with the worst visible point, worst first: each in the face's crop of its cut photo (black
    beyond the cut), truth as rings, the answer as dots, group, side and that point's error written on it."""
    scored = sorted(((float(a.visible_errors_iod().max()), a) for a in answers if a.reported(min_quality)),
                    key=lambda pair: -pair[0])
    cells = []
    for worst, a in scored[:n]:
        image = read_image_bgr(a.sample.image_path)
        x0, y0, x1, y1 = a.window
        cut = np.zeros_like(image)
        cut[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        center, side = face_square_from_points(a.sample.points_px)
        m = crop_matrix(center, side * LANDMARK_CROP_SCALE, tile)
        cells.append(_cell(cut, m, tile, a.sample.points_px, a.points_px,
                           (f"{a.sample.group} {a.side}", f"worst {100 * worst:.1f}%")))
    return _grid(cells, out_path, tile)


def _cell(image: np.ndarray, frame_to_tile: np.ndarray, tile: int, truth_px: np.ndarray, answer_px: np.ndarray,
          lines: tuple[str, ...]) -> np.ndarray:
    """One tile: the image through `frame_to_tile`, truth as rings, the answer as dots, `lines` of text."""
    from core.colors import POINT_COLORS_BGR

    cell = crop_affine(image, frame_to_tile, tile)
    for (tx, ty), (px, py), color in zip(apply_affine(truth_px, frame_to_tile), apply_affine(answer_px, frame_to_tile),
                                         POINT_COLORS_BGR):
        cv2.circle(cell, (int(round(tx)), int(round(ty))), 5, color, 1, cv2.LINE_AA)
        cv2.circle(cell, (int(round(px)), int(round(py))), 3, color, -1, cv2.LINE_AA)
    for line, text in enumerate(lines):
        cv2.putText(cell, text, (4, 14 + 14 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return cell


def _grid(cells: list[np.ndarray], out_path: Path, tile: int, cols: int = 6) -> Path:
    """The tiles in rows of `cols` under the points' colour legend, written as an image (InputError when it
    cannot be written)."""
    from training.data.inspect import legend

    rows = max(1, math.ceil(len(cells) / cols))
    top = legend(cols * tile)
    grid = np.zeros((rows * tile, top.shape[1], 3), dtype=np.uint8)
    for k, cell in enumerate(cells):
        r, c = divmod(k, cols)
        grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = cell
    out_path = Path(out_path)
    if not cv2.imwrite(str(out_path), np.vstack([top, grid])):
        raise InputError(f"{out_path}: could not write the sheet")
    return out_path


def evaluate(job: EvalJob, log: Log, ced: Path | None = None, sheet: Path | None = None,
             cut_sheet: Path | None = None) -> dict:
    """Run `job`; returns the report (what `--json` writes) and says the results through `log`; `cut_sheet`
    (with `job.cut`): a contact sheet of the cut faces reported with the worst visible points.

    Raises InputError for bad options, a missing weights folder or model, unknown data or split, or an
    empty split.
    """
    if job.what not in WHATS:
        raise InputError(f"--what must be one of {', '.join(WHATS)}, not {job.what!r}")
    source = weights_source(job.weights)
    weights_dir = source.folder
    manifest = read_manifest(weights_dir)
    if source.checkpoint is not None and job.what not in ("landmarks", "both"):
        raise InputError(f"--weights {source.checkpoint}: a training checkpoint is scored with --what landmarks "
                         f"or both; for --what {job.what} give a weights folder")
    if job.what == "detector":
        return _evaluate_detector(job, weights_dir, manifest, log, sheet)
    fmt = "onnx" if job.backend == "onnx" else "checkpoints"
    if job.backend == "onnx":  # before any work: one error whose advice suits every model this eval runs
        check_run_precision(manifest, ([BOX_MODEL] if job.what != "landmarks" else []) + (
            [landmark_model_name(manifest, job.landmark_model, fmt)] if source.checkpoint is None else []),
            job.precision)
    landmark_job = job  # the landmarks' own backend: a checkpoint runs with torch
    if source.checkpoint is not None:
        backend = _trained_landmarks(job, source.checkpoint, log)
        landmark_job = replace(job, backend="torch")
        name, path = backend.meta.model, source.checkpoint
        record = TrainingRecord.of_checkpoint(source.checkpoint)
    else:
        name = landmark_model_name(manifest, job.landmark_model, fmt)
        record = TrainingRecord.of(weights_dir, name)
    trained = record.settings
    seed = job.seed if job.seed is not None else int(trained.get("seed", 0))
    lookalikes = bool(trained.get("split_lookalikes", False))
    samples = select_faces(job.data, job.format, job.split, seed, lookalikes, job.workers,
                           bool(trained.get("single_face_only", False)))
    if not samples:
        raise InputError(f"{', '.join(job.data)}: no faces in split {job.split!r}")
    if job.split != "all":
        _say_split(trained, job.data, seed, lookalikes, log)
    report: dict = {"data": list(job.data), "split": job.split, "seed": seed, "split_lookalikes": lookalikes,
                    "backend": job.backend}
    if job.what in ("landmarks", "both"):
        if source.checkpoint is None:
            path = _model_file(job, weights_dir, name)
            backend = create_backend(job.backend, path, job.device, expect_kind="landmarks")
        locator = Locator(backend, passes=job.passes, min_quality=job.min_quality)
        run = locate_faces(locator, samples, job.flip_test, job.workers)
        if not run.samples:
            raise InputError(f"{', '.join(job.data)}: none of the {len(samples)} faces' images could be read")
        offsets = record.offsets
        run = in_own_conventions(run, offsets)
        metrics = landmark_report(run, job.min_quality)
        report["landmarks"] = {"model": name, "file": path.name, "backend": landmark_job.backend,
                               "checkpoint": None if source.checkpoint is None else str(source.checkpoint),
                               "passes": job.passes, "flip_test": job.flip_test,
                               "quality": backend.meta.quality,
                               "convention_offsets": {k: v.round(4).tolist() for k, v in offsets.items()},
                               **metrics}
        _say_landmarks(f"{name}, {path.name}", landmark_job, metrics, log, offsets)
        if job.cut:
            report["landmarks"]["cut_faces"] = _cut_faces(locator, run, job, offsets, log, cut_sheet)
        if sheet:
            log(f"  worst faces: {worst_faces_sheet(run, sheet)}")
        if ced:
            from training.plots import plot_ced

            nme, groups = run.nme(), np.array([s.group for s in run.samples])
            curves = {f"all ({len(nme)})": nme}
            curves.update({f"{g} ({(groups == g).sum()})": nme[groups == g] for g in sorted(set(groups))})
            log(f"  CED: {plot_ced(curves, ced)}")
    if job.what in ("box", "both"):
        from training.evaluate import evaluate_box

        box_path = _model_file(job, weights_dir, BOX_MODEL)
        backend = create_backend(job.backend, box_path, job.device, expect_kind="box")
        box = {"file": box_path.name, **evaluate_box(backend.predict, backend.meta.input_size, samples, job.workers)}
        report["box"] = box
        log(f"box ({box_path.name}, {job.backend}) on {box['images']} images ({box['faces']} faces): IoU mean "
            f"{box['iou_mean']:.3f}  IoU>=0.5 {100 * box['iou_recall']:.1f}%  presence accuracy "
            f"{100 * box['presence_accuracy']:.1f}% "
            f"(with {box['no_face_crops']} no-face crops)")
    return report


def _cut_faces(locator: Locator, run: LandmarkRun, job: EvalJob, offsets: dict[str, np.ndarray],
               log: Log, sheet: Path | None = None) -> dict:
    """`--cut`: every face of `run` (points in own conventions) cut by the image border on each side
    (`facetrack.cut_faces`), scored in its own convention beside its uncut answer; says a line per side."""
    from core.progress import track
    from facetrack.cut_faces import CUT_SIDES, MAX_IN_FRAME_ERROR_IOD, MAX_ROLL_DEG, cut_rule, locate_cut, score_cut

    answers, uncut = [], []
    for k, (sample, image) in enumerate(track(read_ahead(run.samples, job.workers), "cut faces", len(run.samples),
                                              "face")):
        if image is None:
            continue
        for side in CUT_SIDES:
            answer = locate_cut(locator, image, sample, side, job.flip_test)
            if answer is not None:
                answers.append(answer)
                uncut.append(k)
    if answers:
        moved = own_convention_points(np.stack([a.points_px for a in answers]),
                                      [a.sample.convention for a in answers], offsets)
        answers = [replace(a, points_px=p, uncut_points_px=run.points_px[k], uncut_quality=float(run.quality[k]))
                   for a, p, k in zip(answers, moved, uncut)]
    sides = score_cut(answers, job.min_quality)
    report = {"rule": cut_rule(), "faces": len(run.samples), "sides": sides}
    log(f"  faces cut by the image border (pass: no face, or every in-frame point within "
        f"{100 * MAX_IN_FRAME_ERROR_IOD:.0f}% of the inter-ocular distance):")
    if not sides:
        log(f"    none of the {len(run.samples)} faces could be cut (each needs to be upright within "
            f"{MAX_ROLL_DEG:.0f} degrees, inside its photo, an eye, the nose and the mouth on the usual sides)")
    for side, d in sides.items():
        nme = "-" if d["in_frame_nme_mean"] is None else f"{d['in_frame_nme_mean']:.2f}%"
        log(f"    {side:<10} {d['faces']:>6} of {len(run.samples)} faces: pass {100 * d['pass']:.1f}%  "
            f"no face {100 * d['no_face']:.1f}%  confident wrong {100 * d['confident_wrong']:.1f}%  "
            f"in-frame NME {nme}  (uncut: pass {100 * d['uncut_pass']:.1f}%)")
    if sheet:
        log(f"    worst reported cut faces: {cut_faces_sheet(answers, sheet, job.min_quality)}")
    return report


def _trained_landmarks(job: EvalJob, checkpoint: Path, log: Log):
    """The landmark model of a training checkpoint given as --weights, with torch (the runtime runs one so,
    `tracker.backends.open_models`); InputError when it holds another kind of model or an option picks
    another landmark model."""
    if job.landmark_model:
        raise InputError(f"--landmark-model {job.landmark_model}: --weights {checkpoint} is a model already; "
                         "give one of them")
    if job.precision not in ("auto", "fp32"):
        raise InputError(f"--precision {job.precision} picks an ONNX graph; a training checkpoint runs with torch "
                         "in fp32 (ship and export it into a weights folder for its ONNX graphs)")
    backend = create_backend("torch", checkpoint, job.device)
    if backend.meta.kind != "landmarks":
        raise InputError(f"--weights {checkpoint}: a {backend.meta.kind} model's checkpoint; eval scores a "
                         "landmark model's checkpoint (a face finder's: ship it into a weights folder first)")
    log(f"{checkpoint}: a training checkpoint ({backend.meta.model}), run with torch")
    return backend


def _model_file(job: EvalJob, weights_dir: Path, model: str) -> Path:
    """The file of `model` that `facetrack video` would run with the job's backend, device and precision."""
    check_precision(job.backend, job.precision)
    return listed_file(weights_dir, model, job.backend, job.device, job.precision)


def _evaluate_detector(job: EvalJob, weights_dir: Path, manifest: dict, log: Log, sheet: Path | None) -> dict:
    """`--what detector`: the face finder's AP and recall (`facetrack.detector_eval`) on its own split;
    `sheet`: a contact sheet of the faces it missed."""
    from core.manifest import detector_model_name
    from facetrack.detector_eval import evaluate_detector, misses_sheet, say_detector
    from tracker.detect import default_min_score, make_detector
    from tracker.pipeline import Tracker

    fmt = "onnx" if job.backend == "onnx" else "checkpoints"
    name = detector_model_name(manifest, job.detector)
    if job.backend == "onnx":
        check_run_precision(manifest, [name, landmark_model_name(manifest, job.landmark_model, fmt)], job.precision)
    trained = TrainingRecord.of(weights_dir, name).settings
    seed = job.seed if job.seed is not None else int(trained.get("seed", 0))
    lookalikes = bool(trained.get("split_lookalikes", False))
    samples = select_faces(job.data, job.format, job.split, seed, lookalikes, job.workers)
    if not samples:
        raise InputError(f"{', '.join(job.data)}: no faces in split {job.split!r}")
    if job.split != "all":
        _say_split(trained, job.data, seed, lookalikes, log, "detector")
    kind = "box" if name == BOX_MODEL else "detector"
    backend = create_backend(job.backend, _model_file(job, weights_dir, name), job.device, expect_kind=kind)
    min_score = job.min_score if job.min_score is not None else default_min_score(backend.meta)
    misses: list = []
    detector = make_detector(backend, min_score)
    landmarks = create_backend(job.backend, _model_file(job, weights_dir, landmark_model_name(
        manifest, job.landmark_model, fmt)), job.device, expect_kind="landmarks")
    tracker = Tracker(detector, landmarks, min_quality=job.min_quality, mode="image", passes=job.passes)
    report = evaluate_detector(detector, samples, job.workers, misses, tracker)
    say_detector(report, log)
    if sheet:
        log(f"  missed faces ({len(misses)}): {misses_sheet(misses, sheet)}")
    return {"data": list(job.data), "split": job.split, "seed": seed, "split_lookalikes": lookalikes,
            "backend": job.backend, "detector": report}


def _say_split(trained: dict, data: tuple[str, ...], seed: int, lookalikes: bool, log: Log,
               model: str = "landmark model") -> None:
    how = "look-alike copies merged" if lookalikes else "no look-alike merging"
    log(f"split by identity, seed {seed}, {how} (as the {model} was trained)")
    used = [Path(p).name for p in trained.get("data", ())]
    given = [Path(p).name for p in data]
    if used and sorted(used) != sorted(given):
        log(f"note: the model was trained on {', '.join(used)}; the split holds out the same faces only when "
            "--data names the same sets")


def _say_landmarks(name: str, job: EvalJob, m: dict, log: Log, offsets: dict | None = None) -> None:
    def line(d: dict) -> str:
        text = (f"NME mean {d['nme_mean']:.2f}% median {d['nme_median']:.2f}%  "
                f"failure (>10%) {100 * d['failure_rate']:.1f}%")
        if "quality_mean" in d:
            text += f"  quality {d['quality_mean']:.2f}, {100 * d['below_min_quality']:.1f}% below {job.min_quality}"
        return text

    flip = ", flip-averaged" if job.flip_test else ""
    log(f"landmarks ({name}, {job.backend}, runtime crops, {job.passes} pass{'es' if job.passes > 1 else ''}{flip}) "
        f"on {m['faces']} faces: {line(m)}")
    log("  per point: " + "  ".join(f"{k} {v:.2f}%" for k, v in m["per_point"].items()))
    if m["unreadable"]:
        log(f"  {m['unreadable']} faces left out: image unreadable")
    log("  per source, each against its own labels (its point convention"
        + ("; the model's learned offsets move its points into it):" if offsets else "):"))
    for group, d in m["per_group"].items():
        log(f"    {group:<12} {d['faces']:>6} faces ({d['convention']}): {line(d)}")
