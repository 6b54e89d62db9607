"""The many-faces scenario: the tracker over composed clips with 1, 2, 4, 8 ... faces in view.

For each face count, `tracker.bench.composed` tiles the source into one clip (1280x720 by default,
written to a temporary folder), and sequential passes of read + `Tracker.step` time every frame
(`measure.frame_pass`): frames/s of the median frame and of whole passes, ms per frame of each stage
(read, preprocess, detector, landmark model, postprocess, other), the faces found per frame, the
landmark batch the model saw (one batch per frame holds every tracked face) and the detector's runs
per frame. The landmark model alone at a batch of that many crops is timed too: what N tracked faces
cost the model whatever the detector finds. Passes of the face counts are interleaved across repeats.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from tracker.backends import Backend
from tracker.bench import measure
from tracker.bench.composed import DEFAULT_FACES, DEFAULT_SIZE, ComposedClip, compose_clip
from tracker.pipeline import Tracker
from tracker.sources import Source, open_video

Log = Callable[[str], None]
# Calls of the landmark model alone per face count (median ms of a batch of that many crops).
BATCH_ITERS = 30


def landmark_batch_ms(backend: Backend, batch: int, iters: int = BATCH_ITERS, seed: int = 0) -> float:
    """Median ms of the landmark model alone on `batch` random crops (after 3 unmeasured calls)."""
    size = backend.meta.input_size
    x = np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)
    measure._call_ms(backend, x, 3)
    return round(float(np.median(measure._call_ms(backend, x, max(1, iters)))), 4)


def faces_scenario(open_source: Callable[[], Source], make_tracker: Callable[[Backend], Tracker],
                   landmarks: Backend, *, counts: tuple[int, ...] = DEFAULT_FACES,
                   size: tuple[int, int] = DEFAULT_SIZE, frames: int = 300, repeat: int = 3, warmup: int = 20,
                   folder: Path | None = None, log: Log | None = None) -> dict:
    """Compose a clip per face count from `open_source` and measure the tracker on each.

    `make_tracker(landmarks)` builds a fresh tracker around the landmark backend it is given (a
    `measure.BatchSizes` wrapper of `landmarks` that records the batch sizes). `folder` holds the
    composed clips (None: a temporary folder, removed afterwards). Returns {"size", "counts",
    "layouts": [one dict per face count: "faces", "clip", the `measure.summarize_frames` figures,
    "landmark_model_ms_at_batch"]}.
    """
    say = log or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="facetrack-faces-") as tmp:
        where = Path(folder) if folder is not None else Path(tmp)
        clips: list[ComposedClip] = []
        for n in counts:
            say(f"composing a clip with {n} face(s)")
            clips.append(compose_clip(open_source, n, where / f"faces-{n}.mp4", frames, size))
        batches = measure.BatchSizes(landmarks)

        def run(clip: ComposedClip, n_frames: int) -> dict:
            return measure.frame_pass(open_video(clip.path), make_tracker(batches), n_frames, batches)

        if warmup:
            for clip in clips:  # first calls at each batch size allocate: never measured
                run(clip, min(warmup, clip.frames))
        passes: dict[int, list[dict]] = {clip.faces: [] for clip in clips}
        for r in range(repeat):
            say(f"{', '.join(str(c.faces) for c in clips)} face(s): pass {r + 1} of {repeat}")
            for clip in clips:
                passes[clip.faces].append(run(clip, clip.frames))
        layouts = []
        for clip in clips:
            entry = {"faces": clip.faces, "clip": clip.as_dict(), **measure.summarize_frames(passes[clip.faces])}
            entry["landmark_model_ms_at_batch"] = landmark_batch_ms(landmarks, clip.faces)
            layouts.append(entry)
    return {"size": list(size), "counts": list(counts), "layouts": layouts}
