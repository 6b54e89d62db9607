"""A face with an eye outside the frame is not reported (`tracker.pipeline.eyes_in_frame`): the tracker's
rule for faces cut by the image border (../shared/field-cases/half-outside allows "no face"; docs/evaluation.md,
"Faces cut by the image border", measures why). Drawn faces, a fake detector that boxes them, and a fake
landmark model that reads the dots and, like a real one, confidently guesses an eye it cannot see."""

from __future__ import annotations

import numpy as np
import pytest

from core.frame import Detection, Frame
from core.geometry import box_from_square, face_square_from_points
from tests.helpers import FACE_DOT_RGB, DotReader, canonical_points_norm, draw_face_at
from tracker.pipeline import Tracker, eyes_in_frame

IOD = 40.0


class GuessingReader(DotReader):
    """Reads the dots; a missing eye is put mirrored about the nose, with full confidence (quality +6); no
    nose or mouth, or neither eye: no face (quality -6)."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        mean, std = np.asarray(self.meta.mean, np.float32), np.asarray(self.meta.std, np.float32)
        rows = []
        for x in batch:
            rgb01 = x.transpose(1, 2, 0) * std + mean
            dots = []
            for rgb in FACE_DOT_RGB:
                ys, xs = np.nonzero(np.linalg.norm(rgb01 - np.array(rgb) / 255.0, axis=2) < 0.3)
                dots.append((xs.mean(), ys.mean()) if len(xs) else None)
            if dots[2] is None or dots[3] is None or (dots[0] is None and dots[1] is None):
                rows.append(list(canonical_points_norm(self.meta.crop_scale).reshape(-1)) + [-6.0])  # no face
                continue
            nose = np.array(dots[2])
            for eye, other in ((0, 1), (1, 0)):
                if dots[eye] is None:
                    dots[eye] = (2 * nose[0] - dots[other][0], dots[other][1])
            points = np.array(dots, np.float32) / self.meta.input_size
            rows.append(list(points.reshape(-1)) + [6.0])
        return np.asarray(rows, np.float32)


class BoxAt:
    """A face detector that finds one face: the face square of `points`, clipped to the frame."""

    multi_face = True

    def __init__(self, points: np.ndarray) -> None:
        self.name, self.backend, self.min_score, self.points = "fake:box", None, 0.5, points

    def detect(self, image: np.ndarray, timings: dict) -> list[Detection]:
        center, side = face_square_from_points(self.points)
        box = box_from_square(center, side)
        h, w = image.shape[:2]
        return [Detection(np.clip(box, 0, [w, h, w, h]).astype(np.float32), 0.99, True, None)]


def _face_at_left_edge(eye_x: float) -> tuple[np.ndarray, np.ndarray]:
    """A 320x240 frame with a drawn face whose right eye (the image's left) is at x = `eye_x`."""
    image = np.full((240, 320, 3), 90, np.uint8)
    points = draw_face_at(image, (eye_x + IOD / 2, 120.0), IOD)
    return image, points


@pytest.mark.parametrize("mode", ["image", "video"])
def test_a_face_whose_eye_is_outside_the_frame_is_no_face(mode, monkeypatch):
    image, points = _face_at_left_edge(-8.0)  # the right eye 8 px outside; nose and left eye inside
    reader = GuessingReader(quality=True)
    tracker = Tracker(BoxAt(points), reader, mode=mode)
    result = tracker.step(Frame(image, 0, 0.0, 0.0))
    assert reader.calls >= 1 and result.faces == []
    assert tracker.lost_reason == "an eye outside the frame"
    from tracker import pipeline

    monkeypatch.setattr(pipeline, "eyes_in_frame", lambda *args: True)  # without the rule: a confident face
    guessed = Tracker(BoxAt(points), GuessingReader(quality=True), mode=mode).step(Frame(image, 0, 0.0, 0.0))
    assert len(guessed.faces) == 1 and guessed.faces[0].points_px[0, 0] < 0


def test_a_face_at_the_edge_with_both_eyes_inside_is_tracked():
    image, points = _face_at_left_edge(10.0)  # the right eye 10 px inside the frame
    tracker = Tracker(BoxAt(points), GuessingReader(quality=True), mode="video")
    face = tracker.step(Frame(image, 0, 0.0, 0.0)).faces[0]
    assert np.abs(face.points_px - points).max() < 2.0


def test_a_track_ends_when_an_eye_leaves_the_frame():
    tracker = None
    seen = []
    for i, eye_x in enumerate((30.0, 18.0, 6.0, -6.0, -18.0)):  # walking out at the left
        image, points = _face_at_left_edge(eye_x)
        tracker = tracker or Tracker(BoxAt(points), GuessingReader(quality=True), mode="video", detect_every=100)
        tracker.detector.points = points
        seen.append(len(tracker.step(Frame(image, i, 0.0, 40.0 * i)).faces))
    assert seen == [1, 1, 1, 0, 0]


def test_eyes_in_frame_bounds_are_the_outer_pixel_edges():
    eyes = np.array([[-0.5, 10.0], [99.5, 10.0], [50.0, 20.0], [50.0, 30.0]])
    assert eyes_in_frame(eyes, 100, 50)
    assert not eyes_in_frame(eyes - [0.01, 0], 100, 50) and not eyes_in_frame(eyes + [0.01, 0], 100, 50)
    assert not eyes_in_frame(np.array([[10.0, 50.0], [20.0, 10.0], [0, 0], [0, 0]]), 100, 50)  # below the frame
    assert eyes_in_frame(np.array([[10.0, 10.0], [20.0, 10.0], [-40.0, 90.0], [-50.0, 99.0]]), 100, 50)  # eyes only
