"""How well a face finder (`tracker.detect.FaceDetector`: the multi-face detector or the course
project's box regressor) finds faces, through the runtime's own preprocessing and backend:

- real photos of a split: every labelled face of each photo (its box: the face square of its four
  points, the rule the detector trains on); AP at IoU 0.5 (PASCAL VOC, all-point) over detections down to
  `AP_MIN_SCORE`, recall at the detector's threshold, per source and per face-size bucket
  (inter-ocular distance in the photo's pixels, `SIZE_BUCKETS_IOD_PX`). Caltech WebFaces and HELEN photos
  show faces nobody labelled: a detection there counts as false, so their AP understates;
- composed photos (`training.compose`, from the split's faces only, a fixed seed): every face labelled;
- frames without a face (composed from backgrounds of the split's photos and synthetic textures), and
  the same with face-like decoys (face patches cut into shuffled blocks): the share of frames with any
  detection at the threshold, and (with a tracker) with a face the whole tool reports.

Per bucket, as COCO's area ranges: detections and faces are matched over the whole photo; a bucket counts
its own faces, the detections matched to them, and the unmatched detections whose box side falls in its
range (inter-ocular x SIDE_PER_IOD); detections matched to faces of other sizes are left out.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from core.frame import Frame
from core.geometry import apply_affine, box_from_square, face_square_from_points, inter_ocular
from core.imageio import read_ahead
from core.metrics import average_precision, match_detections, match_partners
from tracker.detect import FaceDetector
from training.data.samples import FaceSample

Log = Callable[[str], None]
AP_MIN_SCORE = 0.05
SIZE_BUCKETS_IOD_PX = {"small": (0.0, 16.0), "medium": (16.0, 40.0), "large": (40.0, float("inf"))}
SIDE_PER_IOD = 2.4  # face-square side / inter-ocular distance, to bucket detections by their box
COMPOSED_IMAGES = 300
COMPOSED_SIZE = 384
EMPTY_FRAMES = 300


class _Tally:
    """Detections and truths of a set of images, for AP and recall."""

    def __init__(self) -> None:
        self.scores: list[np.ndarray] = []
        self.hits: list[np.ndarray] = []
        self.truths = 0
        self.found = 0
        self.images = 0

    def add(self, boxes: np.ndarray, scores: np.ndarray, truth: np.ndarray, min_score: float) -> int:
        """Add one image's detections (boxes (D, 4), scores (D,)) and true boxes (T, 4); returns how many
        true faces a detection scoring at least `min_score` found."""
        hit, _ = match_detections(boxes, scores, truth)
        strong = scores >= min_score
        _, matched = match_detections(boxes[strong], scores[strong], truth)
        self.scores.append(scores)
        self.hits.append(hit)
        self.truths += len(truth)
        self.found += int(matched.sum())
        self.images += 1
        return int(matched.sum())

    def add_bucket(self, boxes: np.ndarray, scores: np.ndarray, truth: np.ndarray, in_bucket: np.ndarray,
                   sides_in_bucket: np.ndarray, min_score: float) -> None:
        """Add one image to a size bucket, COCO-style: detections and truths are matched over the whole
        image; the bucket counts its own true faces (`in_bucket` (T,) bool), the detections matched to
        them (hits), and the unmatched detections whose size is the bucket's (`sides_in_bucket` (D,)
        bool, false ones); detections matched to faces of other sizes are left out."""
        hit, matched_truth = match_partners(boxes, scores, truth)
        counted = np.array([(t >= 0 and in_bucket[t]) or (t < 0 and side) for t, side in zip(hit, sides_in_bucket)],
                           bool)
        self.scores.append(scores[counted])
        self.hits.append(hit[counted] >= 0)
        self.truths += int(in_bucket.sum())
        strong = scores >= min_score
        found, _ = match_partners(boxes[strong], scores[strong], truth)
        self.found += len({int(t) for t in found if t >= 0 and in_bucket[t]})
        self.images += 1

    def report(self) -> dict:
        ap = average_precision(np.concatenate(self.scores), np.concatenate(self.hits), self.truths) \
            if self.scores else 0.0
        return {"images": self.images, "faces": self.truths, "ap50": ap,
                "recall": self.found / self.truths if self.truths else 0.0}


def truth_boxes(points: np.ndarray) -> np.ndarray:
    """(K, 4) face squares (xyxy px) of (K, 4, 2) points."""
    return np.array([box_from_square(*face_square_from_points(p)) for p in points], np.float32).reshape(-1, 4)


def _bucket(iod: float) -> str:
    return next(name for name, (lo, hi) in SIZE_BUCKETS_IOD_PX.items() if lo <= iod < hi)


class Miss(NamedTuple):
    """A true face no detection at the threshold found: its photo, its box (xyxy px), the detections
    (boxes (D, 4), scores (D,)) of that photo."""

    image_path: str
    group: str
    truth_xyxy: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray


def score_image(detector: FaceDetector, image: np.ndarray, points: np.ndarray, group: str,
                tallies: dict[str, _Tally], single: _Tally | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the detector on one image with true faces `points` (K, 4, 2) and add it to the tallies
    "all", the source `group`, and each size bucket (and to `single` when given). Returns which true
    faces were found at the detector's threshold, (K,) bool, and the detections at the threshold
    (boxes (D, 4) px, scores (D,))."""
    saved = detector.min_score
    found = _all_detections(detector, image)
    boxes = np.array([d.box_xyxy for d in found], np.float32).reshape(-1, 4)
    scores = np.array([d.score for d in found], np.float32)
    truth = truth_boxes(points)
    for tally in (tallies["all"], tallies[group]) + ((single,) if single is not None else ()):
        tally.add(boxes, scores, truth, saved)
    strong = scores >= saved
    _, found_at = match_detections(boxes[strong], scores[strong], truth)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    iods = np.array([inter_ocular(p) for p in points])
    for name, (lo, hi) in SIZE_BUCKETS_IOD_PX.items():
        tallies[f"size:{name}"].add_bucket(boxes, scores, truth, (iods >= lo) & (iods < hi),
                                           (sides >= lo * SIDE_PER_IOD) & (sides < hi * SIDE_PER_IOD), saved)
    return found_at, boxes[strong], scores[strong]


class Photo(NamedTuple):
    """One photo of a split: its path, the (K, 4, 2) points of every labelled face, its source group."""

    image_path: str
    points: np.ndarray
    group: str


def photos_of(samples: list[FaceSample]) -> list[Photo]:
    """The photos of a list of faces, each once with all of its labelled faces."""
    by_image: dict[str, list[FaceSample]] = defaultdict(list)
    for s in samples:
        by_image[s.image_path].append(s)
    return [Photo(path, np.stack([s.points_px for s in faces]).astype(np.float32), faces[0].group)
            for path, faces in sorted(by_image.items())]


def evaluate_detector(detector: FaceDetector, samples: list[FaceSample], workers: int = 2,
                      misses: list[Miss] | None = None, tracker=None) -> dict:
    """The report described in the module docstring: {"threshold", "photos": {"all", per source, per
    size bucket: {images, faces, ap50, recall}}, "single_face_photos": {...}, "composed": {...},
    "no_face_frames": {"frames", "false_rate"}}. The true faces of real photos not found at the
    threshold are appended to `misses` when given. With `tracker` (a `tracker.pipeline.Tracker` in image
    mode around this detector and a landmark model), "no_face_frames" also gives "tool_false_rate": the
    share of no-face frames where the whole tool (detector, then the landmark model's quality and box
    agreement) reports a face. Progress over the photos goes to stderr (`core.progress`)."""
    from core.progress import track
    from training.compose import compose
    from training.data.faces_cache import build_faces_cache

    tallies: dict[str, _Tally] = defaultdict(_Tally)
    single = _Tally()
    photos = photos_of(samples)
    for photo, image in track(read_ahead(photos, workers), "detector", len(photos), "photo"):
        if image is None:
            continue
        found, boxes, scores = score_image(detector, image, photo.points, photo.group, tallies,
                                           single if len(photo.points) == 1 else None)
        if misses is not None:
            misses += [Miss(photo.image_path, photo.group, box, boxes, scores)
                       for box, hit in zip(truth_boxes(photo.points), found) if not hit]
    cache = build_faces_cache(samples, workers)
    composed: dict[str, _Tally] = defaultdict(_Tally)
    rng = np.random.default_rng(0)
    for _ in range(COMPOSED_IMAGES):
        image, points = compose(cache, rng, COMPOSED_SIZE, kind="mosaic")
        score_image(detector, image, points, "composed", composed)
    no_face = {}
    for decoys in (False, True):
        best, tool_false = [], 0  # each no-face frame's best score (0: nothing above AP_MIN_SCORE)
        for k in range(EMPTY_FRAMES):
            image, _ = compose(cache, rng, COMPOSED_SIZE, kind="empty", decoys=decoys)
            best.append(max((d.score for d in _all_detections(detector, image)), default=0.0))
            if tracker is not None:
                tool_false += bool(tracker.step(Frame(image, k, 0.0)).faces)
        no_face[decoys] = (np.array(best), tool_false / EMPTY_FRAMES)
    best = no_face[False][0]

    def frames(decoys: bool) -> dict:
        scores, tool = no_face[decoys]
        return {"frames": EMPTY_FRAMES, "false_rate": float((scores >= detector.min_score).mean()),
                **({"tool_false_rate": tool} if tracker is not None else {})}

    return {"threshold": detector.min_score, "detector": detector.name,
            "photos": {k: v.report() for k, v in sorted(tallies.items())},
            "single_face_photos": single.report(),
            "composed": {k: v.report() for k, v in sorted(composed.items()) if k != "composed"},
            "no_face_frames": frames(False), "no_face_frames_with_decoys": frames(True),
            "by_threshold": by_threshold(tallies["all"], single, best)}


THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def by_threshold(photos: _Tally, single: _Tally, empty_best: np.ndarray, thresholds=THRESHOLDS) -> list[dict]:
    """Recall on all photos and on single-face photos, false detections per photo, and the share of no-face
    frames with a detection, at each threshold (to choose the shipped one on validation). Greedy
    matching by falling score makes the matches of the detections above a threshold the same with or
    without the lower ones, so one run at AP_MIN_SCORE gives every threshold."""
    rows = []
    scores, hits = np.concatenate(photos.scores), np.concatenate(photos.hits)
    s_scores, s_hits = (np.concatenate(single.scores), np.concatenate(single.hits)) if single.scores else \
        (np.zeros(0), np.zeros(0, bool))
    for t in thresholds:
        rows.append({"min_score": t, "recall": float((hits & (scores >= t)).sum() / max(photos.truths, 1)),
                     "recall_single_face": float((s_hits & (s_scores >= t)).sum() / max(single.truths, 1)),
                     "false_per_photo": float((~hits & (scores >= t)).sum() / max(photos.images, 1)),
                     "no_face_false_rate": float((empty_best >= t).mean()) if len(empty_best) else 0.0})
    return rows


def _all_detections(detector: FaceDetector, image: np.ndarray) -> list:
    """The detector's faces down to AP_MIN_SCORE (its own threshold set aside for the call)."""
    saved = detector.min_score
    detector.min_score = AP_MIN_SCORE
    try:
        return detector.detect(image, {})
    finally:
        detector.min_score = saved


def say_detector(report: dict, log: Log) -> None:
    """The report as lines: overall, single-face photos, per source, per size, composed, no-face frames."""
    def line(d: dict) -> str:
        return (f"{d['images']:>5} images {d['faces']:>5} faces  AP@0.5 {100 * d['ap50']:5.1f}%  "
                f"recall {100 * d['recall']:5.1f}%")

    photos = report["photos"]
    log(f"detector ({report['detector']}, threshold {report['threshold']:.2f}) on the split's photos: "
        f"{line(photos['all'])}")
    log(f"  single-face photos: {line(report['single_face_photos'])}")
    for key, d in photos.items():
        if key != "all":
            log(f"  {key:<14} {line(d)}")
    for key, d in report["composed"].items():
        log(f"  composed {key:<14} {line(d)}")
    for key, what in (("no_face_frames", "frames without a face"),
                      ("no_face_frames_with_decoys", "the same with shuffled-face decoys")):
        nf = report[key]
        tool = (f"; the tool (detector, then landmark quality) reports a face on {100 * nf['tool_false_rate']:.1f}%"
                if "tool_false_rate" in nf else "")
        log(f"  {what}: {100 * nf['false_rate']:.1f}% with a false detection ({nf['frames']} frames){tool}")
    log("  by threshold: " + "  ".join(
        f"{r['min_score']:.1f}: recall {100 * r['recall']:.1f}% (single {100 * r['recall_single_face']:.1f}%), "
        f"false/photo {r['false_per_photo']:.3f}, no-face {100 * r['no_face_false_rate']:.1f}%;"
        for r in report["by_threshold"]))


def misses_sheet(misses: list[Miss], out_path: Path, n: int = 36, tile: int = 128, seed: int = 0) -> Path:
    """PNG grid of up to `n` missed faces (drawn evenly from `misses`, seeded), each a square of twice its
    face box: the true box in green, the photo's detections at the threshold in red with their score,
    the source group and the face's inter-ocular size class written on it."""
    import cv2

    from core.errors import InputError
    from core.geometry import crop_affine, crop_matrix, square_from_box
    from core.imageio import read_image_bgr

    picked = misses if len(misses) <= n else [misses[i] for i in
                                              sorted(np.random.default_rng(seed).choice(len(misses), n, False))]
    cols = 6
    rows = max(1, -(-len(picked) // cols))
    grid = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for k, miss in enumerate(picked):
        image = read_image_bgr(miss.image_path)
        if image is None:
            continue
        center, side = square_from_box(miss.truth_xyxy, 2.0)
        m = crop_matrix(center, side, tile)
        cell = crop_affine(image, m, tile)

        def draw(box, color, text=None):
            (x1, y1), (x2, y2) = (apply_affine(np.asarray(box, np.float32).reshape(2, 2), m)).astype(int)
            cv2.rectangle(cell, (int(x1), int(y1)), (int(x2), int(y2)), color, 1, cv2.LINE_AA)
            if text:
                cv2.putText(cell, text, (int(x1), max(10, int(y1) - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1)

        draw(miss.truth_xyxy, (0, 220, 0))
        for box, score in zip(miss.boxes_xyxy, miss.scores):
            draw(box, (0, 0, 255), f"{score:.2f}")
        iod = (miss.truth_xyxy[2] - miss.truth_xyxy[0]) / SIDE_PER_IOD
        cv2.putText(cell, f"{miss.group} iod~{iod:.0f}px", (3, tile - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, cols)
        grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = cell
    out_path = Path(out_path)
    if not cv2.imwrite(str(out_path), grid):
        raise InputError(f"{out_path}: could not write the sheet")
    return out_path
