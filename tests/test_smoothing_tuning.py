"""The default One-Euro smoothing does not make points worse: NME at most NME_BUDGET points above the
unsmoothed output, jitter lower (definitions in tracker/smoothing_eval.py; table in docs/evaluation.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.meta import POINT_NAMES
from tracker.smoothing_eval import RawFace, score, smooth_offline

ROOT = Path(__file__).resolve().parents[1]
NME_BUDGET = 0.25  # NME points smoothing may add here (the tuning clips: at most 0.15; room for new weights)
FACE = np.array([[-50.0, -10.0], [50.0, -10.0], [0.0, 30.0], [0.0, 70.0]])  # iod 100 px


def _noisy_track(truth: np.ndarray, noise_px: float, seed: int = 0) -> list[RawFace]:
    rng = np.random.default_rng(seed)
    return [RawFace(i / 30.0, 1, p + rng.normal(0.0, noise_px, p.shape)) for i, p in enumerate(truth)]


@pytest.mark.parametrize("motion", ["still", "pan"])
def test_default_smoothing_lowers_jitter_without_raising_nme_on_a_generated_track(motion):
    t = np.arange(120) / 30.0
    if motion == "still":
        centers = np.zeros((len(t), 2)) + 320.0
    else:  # a head turning side to side: 0.5 Hz, 60 px
        centers = np.stack([320 + 60 * np.sin(2 * np.pi * 0.5 * t), 240 + 20 * np.sin(2 * np.pi * 0.3 * t)], 1)
    truth = centers[:, None, :] + FACE
    raw = _noisy_track(truth, noise_px=1.0)
    plain, smoothed = score(raw, truth), score(smooth_offline(raw), truth)
    assert smoothed["nme"] <= plain["nme"] + NME_BUDGET
    assert smoothed["jitter"] < 0.8 * plain["jitter"]


def test_offline_replay_resets_on_a_new_id_and_after_a_lost_face():
    truth = np.zeros((6, 4, 2)) + FACE
    raw = [RawFace(0.0, 1, truth[0]), RawFace(0.033, 1, truth[1] + 5), RawFace(0.066, None, None),
           RawFace(0.1, 2, truth[3] + 9), RawFace(0.133, 3, truth[4] - 7)]
    out = smooth_offline(raw)
    assert out[2].points is None
    assert np.allclose(out[3].points, truth[3] + 9) and np.allclose(out[4].points, truth[4] - 7)  # fresh filters
    assert not np.allclose(out[1].points, raw[1].points)


@pytest.mark.slow
def test_default_smoothing_on_the_demo_clip(tmp_path):
    """The demo clip through the tracker with its shipped weights: smoothed as `webcam` does by default
    vs not; the pipeline's smoothing is the offline replay the tuning script measures."""
    from core.manifest import default_weights_dir
    from tracker import FaceTracker

    if not (default_weights_dir() / "manifest.json").is_file():
        pytest.skip("no shipped weights")
    truth = np.array([[row["points"][n] for n in POINT_NAMES] for row in
                      map(json.loads, (ROOT / "demo" / "demo.truth.jsonl").read_text().splitlines())])
    tracker = FaceTracker(device="cpu")
    runs = {}
    for smooth in (False, True):
        runs[smooth] = [RawFace(r.t_ms / 1000.0, r.faces[0].id if r.faces else None,
                                np.asarray(r.faces[0].points_px, np.float64) if r.faces else None)
                        for r in tracker.track(str(ROOT / "demo" / "demo.mp4"), smooth=smooth)]
    plain, smoothed = score(runs[False], truth), score(runs[True], truth)
    assert plain["frames"] == smoothed["frames"] >= 0.9 * len(truth)
    assert smoothed["nme"] <= plain["nme"] + NME_BUDGET
    assert smoothed["jitter"] < plain["jitter"]
    replay = smooth_offline(runs[False])
    for a, b in zip(replay, runs[True]):
        assert (a.points is None) == (b.points is None)
        if a.points is not None:
            assert np.abs(a.points - b.points).max() < 0.05
