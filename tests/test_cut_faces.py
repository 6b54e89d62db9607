"""Faces cut by the image border (`facetrack.cut_faces`, `facetrack eval --cut`): where each side's cut
runs, which points stay in the frame, how an answer is scored (the field cases' rule: no face, or every
in-frame point within 10 % of the inter-ocular distance), and the CLI's report."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from core.geometry import points_in_window
from facetrack.cli import app
from facetrack.cut_faces import CUT_SIDES, CutAnswer, cut_window, score_cut
from tests.datagen import make_300w, make_mtfl
from training.data.samples import FaceSample

runner = CliRunner()
# an upright face in a 400 x 300 image: right eye (image left), left eye, nose tip, mouth centre
FACE = np.array([[150.0, 120.0], [250.0, 120.0], [200.0, 170.0], [200.0, 220.0]])


def _sample(points=FACE, group_subset=""):
    return FaceSample("x.jpg", np.asarray(points, np.float32), np.array([120, 80, 280, 260], np.float32), "p", "300w",
                      (400, 300), subset=group_subset)


@pytest.mark.parametrize("side, window, hidden", [
    ("left", (175, 0, 400, 300), [0]),  # half-way between the right eye (x 150) and the nose (x 200)
    ("right", (0, 0, 226, 300), [1]),
    ("top", (0, 145, 400, 300), [0, 1]),  # half-way between the eyes' line (y 120) and the nose (y 170)
    ("bottom", (0, 0, 400, 196), [3]),  # half-way between the nose (y 170) and the mouth (y 220)
    ("left-near", (125, 0, 400, 300), []),  # a quarter of the inter-ocular distance beyond the right eye
    ("right-near", (0, 0, 276, 300), []),
])
def test_each_side_cuts_between_two_features(side, window, hidden):
    got = cut_window(FACE, (400, 300), side)
    assert got == window
    visible = points_in_window(FACE, got)
    assert [i for i in range(4) if not visible[i]] == hidden


def test_no_cut_for_rolled_faces_points_outside_or_too_little_left():
    turn = math.radians(30)
    rot = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    rolled = (FACE - FACE.mean(0)) @ rot.T + FACE.mean(0)
    assert cut_window(rolled, (400, 300), "left") is None
    outside = FACE.copy()
    outside[0, 0] = -5
    assert cut_window(outside, (400, 300), "left") is None
    tiny = FACE * 0.05  # features 2.5 px apart: the right cut would leave 10 px
    assert cut_window(tiny, (400, 300), "right") is None
    profile = FACE.copy()
    profile[2, 0] = 140.0  # turned in profile: the nose beyond the near eye, no cut between them
    assert cut_window(profile, (400, 300), "left") is None  # the right cut still hides the far eye alone
    assert cut_window(profile, (400, 300), "right") == (0, 0, 196, 300)
    tilted = np.array([[150.0, 120.0], [250.0, 150.0], [200.0, 155.0], [200.0, 210.0]])  # rolled 16.7 degrees
    assert cut_window(tilted, (400, 300), "top") is None  # half-way to the nose leaves the lower eye in view
    at_edge = FACE - [130.0, 0.0]  # the right eye at x 20: the near cut (x 5 - 25 < 0) would cut nothing
    assert cut_window(at_edge, (400, 300), "left-near") is None and cut_window(at_edge, (400, 300), "left")
    with pytest.raises(ValueError, match="unknown cut side"):
        cut_window(FACE, (400, 300), "middle")


def _answer(side, points, quality=0.9, group_subset=""):
    sample = _sample(group_subset=group_subset)
    window = cut_window(FACE, (400, 300), side)
    return CutAnswer(sample, side, window, np.asarray(points, np.float32), quality, points_in_window(FACE, window),
                     uncut_points_px=FACE.astype(np.float32))


def test_scoring_follows_the_field_cases_rule():
    iod = 100.0
    off_nose = FACE.copy()
    off_nose[2] += [0.2 * iod, 0]  # a visible point 20 % off: confident and wrong
    off_hidden = FACE.copy()
    off_hidden[0] += [0.5 * iod, 0]  # only the hidden eye is off: still a pass
    answers = [_answer("left", FACE), _answer("left", off_nose), _answer("left", off_hidden),
               _answer("left", off_nose, quality=0.2),  # reported as no face: a pass
               _answer("bottom", off_nose, group_subset="aflw")]
    report = score_cut(answers, min_quality=0.5)
    left = report["left"]
    assert set(report) == {"left", "bottom"}
    assert left["faces"] == 4 and left["no_face"] == 0.25
    assert left["confident_wrong"] == 0.25 and left["pass"] == 0.75 and left["uncut_pass"] == 1.0
    # in-frame NME over the three reported faces: 0, 20/3 % (the nose of three visible points), 0
    assert left["in_frame_nme_mean"] == pytest.approx(20 / 3 / 3, abs=1e-4)
    assert report["bottom"]["pass"] == 0.0 and set(report["bottom"]["per_group"]) == {"300w/aflw"}
    assert set(report["left"]["per_group"]) == {"300w"}
    unsure_uncut = _answer("left", off_nose, quality=0.2)
    unsure_uncut.uncut_points_px, unsure_uncut.uncut_quality = off_nose.astype(np.float32), 0.2
    assert score_cut([unsure_uncut], 0.5)["left"]["uncut_pass"] == 1.0  # no face uncut either: the same rule
    eye_out = _answer("left", off_nose)
    eye_out.eyes_in_frame = False  # the tracker reports no face with an eye outside the frame
    row = score_cut([eye_out, _answer("left", FACE)], 0.5)["left"]
    assert row["no_face"] == row["eye_outside"] == 0.5 and row["pass"] == 1.0
    nan_quality = score_cut([_answer("left", FACE, quality=math.nan)], 0.5)["left"]
    assert nan_quality["no_face"] == 0.0 and nan_quality["pass"] == 1.0  # a model without quality: never "no face"


def test_eval_cut_reports_every_side(face_weights, tmp_path):
    data = [make_300w(tmp_path / "w300"), make_mtfl(tmp_path / "mtfl")]
    out = tmp_path / "cut.json"
    sheet = tmp_path / "cut.png"
    argv = ["eval", "--weights", str(face_weights), "--device", "cpu", "--what", "landmarks", "--cut-sheet",
            str(sheet), "--json", str(out)]  # --cut-sheet implies --cut
    for path in data:
        argv += ["--data", str(path)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())["landmarks"]
    cut = report["cut_faces"]["sides"]
    assert report["cut_faces"]["faces"] == report["faces"] and report["cut_faces"]["rule"]["max_roll_deg"] == 20
    assert set(cut) <= set(CUT_SIDES) and cut
    for side, row in cut.items():
        assert 0 < row["faces"] <= report["faces"]
        assert 0.0 <= row["pass"] <= 1.0 and row["confident_wrong"] == pytest.approx(1.0 - row["pass"])
        assert sum(g["faces"] for g in row["per_group"].values()) == row["faces"]
        assert f"    {side} " in result.output
    assert "faces cut by the image border" in result.output
    assert sheet.stat().st_size > 1000 and f"worst reported cut faces: {sheet}" in result.output
    refused = runner.invoke(app, ["eval", "--weights", str(face_weights), "--data", str(data[0]), "--what", "box",
                                  "--cut"])
    assert refused.exit_code == 2 and "--cut scores landmarks" in refused.output
    refused = runner.invoke(app, ["eval", "--weights", str(face_weights), "--data", str(data[0]), "--what", "box",
                                  "--cut-sheet", str(tmp_path / "x.png")])
    assert refused.exit_code == 2 and "--cut-sheet scores landmarks" in refused.output
