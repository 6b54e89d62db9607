"""Dataset readers on small generated data: AFLW, 300-W, YTF CSV, dlib XML, detection, splits."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from core.colors import POINT_COLORS_BGR
from core.meta import POINT_NAMES
from tests import datagen
from training.data import DatasetError, aflw, detect_format, dlib_xml, load_dataset
from training.data.inspect import inspect_dataset
from training.data.splits import split_by_identity

# --- AFLW -------------------------------------------------------------------------------------

def test_aflw_filters_and_counts(tmp_path):
    db = datagen.make_aflw(tmp_path / "aflw")
    for root in (db, db.parent):
        result = load_dataset(root)
        assert result.format == "aflw"
        assert len(result.samples) == datagen.AFLW_EXPECTED_FACES
        assert dict(result.skipped) == datagen.AFLW_EXPECTED_SKIPPED
        names = {s.image_path.split("/")[-1] for s in result.samples}
        assert "image00020.jpg" not in names  # the two-face image
        assert "image00031.jpg" not in names  # the face without a mouth
        assert "image00077.jpg" in names  # found as <dir>/<filepath> outside flickr/


def test_aflw_finds_data_subfolder(tmp_path):
    datagen.make_aflw(tmp_path / "aflw" / "data")
    assert detect_format(tmp_path / "aflw") == "aflw"
    assert len(load_dataset(tmp_path / "aflw").samples) == datagen.AFLW_EXPECTED_FACES


def test_aflw_eye_mapping_box_and_identity(tmp_path):
    result = aflw.load(datagen.make_aflw(tmp_path))
    by_name = {s.image_path.split("/")[-1]: s for s in result.samples}
    s = by_name["image00002.jpg"]
    np.testing.assert_allclose(s.points_px, datagen.face_points4(100, 80, 80), atol=1e-4)
    np.testing.assert_allclose(s.box_xyxy, [60, 40, 140, 120])
    assert s.identity == "0/image00002.jpg"
    assert s.image_size == (200, 160)
    for sample in result.samples:
        assert sample.points_px[0, 0] < sample.points_px[1, 0]  # right_eye on the image's left


def test_aflw_feature_ids_resolved_by_name(tmp_path):
    db = datagen.make_aflw(tmp_path)
    con = sqlite3.connect(db)
    ids = dict(con.execute("SELECT descr, feature_id FROM FeatureCoordTypes").fetchall())
    assert (ids["LeftEyeCenter"], ids["RightEyeCenter"], ids["NoseCenter"], ids["MouthCenter"]) != (8, 11, 15, 19)
    con.close()
    ro = aflw.open_readonly(db)
    try:
        assert aflw.feature_ids(ro, db) == (108, 203, 57, 999)
    finally:
        ro.close()
    sample = aflw.load(db).samples[0]
    assert np.isfinite(sample.points_px).all()
    assert sample.iod > 0


def test_aflw_without_pose_table(tmp_path):
    result = aflw.load(datagen.make_aflw(tmp_path, with_pose=False))
    assert len(result.samples) == datagen.AFLW_EXPECTED_FACES


def test_aflw_swapped_eyes_in_data_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="LeftEyeCenter"):
        aflw.load(datagen.make_aflw(tmp_path, swap_eyes=True))


def test_aflw_swapped_eyes_in_3d_face_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="3D face"):
        aflw.load(datagen.make_aflw(tmp_path, swap_3d=True))


@pytest.mark.parametrize("table", ["FaceRect", "FeatureCoordTypes", "FaceImages"])
def test_aflw_missing_table(tmp_path, table):
    db = datagen.make_aflw(tmp_path, without_table=table)
    with pytest.raises(DatasetError) as err:
        load_dataset(db)
    message = str(err.value)
    assert table in message and str(db) in message and "\n" not in message


def test_aflw_not_a_database(tmp_path):
    fake = tmp_path / "aflw.sqlite"
    fake.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatasetError, match="not an SQLite database"):
        load_dataset(tmp_path)


# --- 300-W ------------------------------------------------------------------------------------

def test_300w_with_and_without_header(tmp_path):
    result = load_dataset(datagen.make_300w(tmp_path))
    assert result.format == "300w"
    assert len(result.samples) == datagen.SET_300W_EXPECTED_FACES
    assert dict(result.skipped) == datagen.SET_300W_EXPECTED_SKIPPED
    by_stem = {s.image_path.split("/")[-1]: s for s in result.samples}
    # 1001_1 has a header, 3003_1 has none; both 1-based -> 0-based
    for stem in ("1001_1.jpg", "3003_1.jpg"):
        np.testing.assert_allclose(by_stem[stem].points_px, datagen.face_points4(70, 80, 60), atol=1e-2)
    assert by_stem["1001_1.jpg"].identity == by_stem["1001_2.jpg"].identity == "1001"


# --- YouTube-Faces CSV ------------------------------------------------------------------------

def test_ytf_csv_bad_rows_skipped_and_counted(tmp_path):
    result = load_dataset(datagen.make_ytf_csv(tmp_path))
    assert result.format == "ytf-csv"
    assert len(result.samples) == datagen.YTF_EXPECTED_FACES
    assert dict(result.skipped) == datagen.YTF_EXPECTED_SKIPPED
    assert {s.identity for s in result.samples} == set(datagen.YTF_PEOPLE)


# --- dlib XML ---------------------------------------------------------------------------------

def test_dlib_xml_multi_face(tmp_path):
    root = datagen.make_dlib_xml(tmp_path)
    result = load_dataset(root)
    assert result.format == "dlib-xml"
    assert len(result.samples) == datagen.DLIB_EXPECTED_FACES
    assert result.images == 2
    assert dict(result.skipped) == datagen.DLIB_EXPECTED_SKIPPED
    group = [s for s in result.samples if s.image_path.endswith("group.jpg")]
    assert len(group) == 3
    assert sorted(float(s.box_xyxy[0]) for s in group) == [35.0, 125.0, 215.0]
    np.testing.assert_allclose(group[0].box_xyxy[2] - group[0].box_xyxy[0], 50)
    # one file given directly gives the same faces
    assert len(dlib_xml.load(root / "faces_with_landmarks.xml").samples) == datagen.DLIB_EXPECTED_FACES


def test_dlib_xml_box_only_and_malformed(tmp_path):
    root = datagen.make_dlib_xml(tmp_path)
    with pytest.raises(DatasetError, match="no dlib XML with landmarks"):
        dlib_xml.load(root / "faces.xml")
    (root / "broken.xml").write_text("<dataset><images><image file='a.jpg'>")
    with pytest.raises(DatasetError, match="broken.xml"):
        load_dataset(root)


def test_single_face_only(tmp_path):
    result = load_dataset(datagen.make_dlib_xml(tmp_path), single_face=True)
    assert len(result.samples) == 1
    assert result.skipped["multi_face_image"] == 3
    assert result.samples[0].image_path.endswith("single.jpg")


# --- detection, override, splits, bad paths ---------------------------------------------------

def test_format_detection_and_override(tmp_path):
    assert detect_format(datagen.make_300w(tmp_path / "w")) == "300w"
    assert detect_format(datagen.make_ytf_csv(tmp_path / "y")) == "ytf-csv"
    assert detect_format(datagen.make_dlib_xml(tmp_path / "x")) == "dlib-xml"
    assert detect_format(datagen.make_aflw(tmp_path / "a")) == "aflw"
    # a folder holding both a dlib XML and 300-W .pts: detection picks the XML, --format the .pts
    both = datagen.make_300w(tmp_path / "both")
    datagen.make_dlib_xml(both)
    assert load_dataset(both).format == "dlib-xml"
    overridden = load_dataset(both, fmt="300w")
    assert overridden.format == "300w" and len(overridden.samples) == datagen.SET_300W_EXPECTED_FACES
    with pytest.raises(DatasetError, match="unknown dataset format"):
        load_dataset(both, fmt="coco")


def test_split_deterministic_and_identity_disjoint(tmp_path):
    samples = load_dataset(datagen.make_ytf_csv(tmp_path)).samples
    first, again = split_by_identity(samples, seed=3), split_by_identity(samples, seed=3)
    assert {k: [s.image_path for s in v] for k, v in first.items()} == \
        {k: [s.image_path for s in v] for k, v in again.items()}
    assert sum(len(v) for v in first.values()) == len(samples)
    owners: dict[str, str] = {}
    for split, faces in first.items():
        for s in faces:
            assert owners.setdefault(s.identity, split) == split
    assert all(first[name] for name in ("train", "val", "test"))


@pytest.mark.parametrize("make", ["missing", "empty_dir", "text_file", "image_only"])
def test_non_dataset_path(tmp_path, make):
    path = tmp_path / "thing"
    if make == "empty_dir":
        path.mkdir()
    elif make == "text_file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    elif make == "image_only":
        datagen.write_image(path / "photo.jpg")
    with pytest.raises(DatasetError):
        load_dataset(path)


# --- inspect ----------------------------------------------------------------------------------

def test_inspect_dataset_summary(tmp_path):
    info = inspect_dataset(load_dataset(datagen.make_ytf_csv(tmp_path)), seed=0)
    assert info["format"] == "ytf-csv"
    assert info["faces"] == datagen.YTF_EXPECTED_FACES and info["images"] == datagen.YTF_EXPECTED_FACES
    assert info["skipped"] == datagen.YTF_EXPECTED_SKIPPED
    assert sum(info["splits"].values()) == info["faces"]
    for key in ("face_size_px", "iod_px"):
        q = info[key]
        assert q["p5"] <= q["p50"] <= q["p95"]
    assert info["iod_px"]["p50"] == pytest.approx(28.0, abs=0.01)  # 0.8 x half of the 70 px face


def test_point_colors_distinct():
    assert len(POINT_COLORS_BGR) == len(POINT_NAMES)
    assert len(set(POINT_COLORS_BGR)) == len(POINT_COLORS_BGR)


# --- MTFL and Caltech WebFaces ----------------------------------------------------------------

def test_mtfl_reads_release_layout_and_counts_bad_rows(tmp_path):
    from training.data.samples import CONVENTION_MTFL

    result = load_dataset(datagen.make_mtfl(tmp_path / "mtfl"))
    assert result.format == "mtfl"
    assert len(result.samples) == datagen.MTFL_EXPECTED_FACES
    assert dict(result.skipped) == datagen.MTFL_EXPECTED_SKIPPED
    first = result.samples[0]
    pts5 = datagen.mtfl_points5(100, 80, 80)
    # right eye = the image-left eye, left eye = the other, nose, mouth centre = mean of the corners
    assert np.allclose(first.points_px, [pts5[0], pts5[1], pts5[2], (pts5[3] + pts5[4]) / 2], atol=1e-4)
    assert first.convention == CONVENTION_MTFL and first.subset == "lfw" and first.group == "mtfl/lfw"
    assert first.attributes == {"gender": 1, "smile": 2, "glasses": 2, "pose": 3}
    x1, y1, x2, y2 = first.box_xyxy
    assert x1 < pts5[:, 0].min() and x2 > pts5[:, 0].max() and y1 < pts5[:, 1].min() and y2 > pts5[:, 1].max()
    by_name = {s.image_path.rsplit("/", 1)[-1]: s for s in result.samples}
    assert by_name["Anna_Smith_0001.jpg"].identity == by_name["Anna_Smith_0002.jpg"].identity  # one LFW person
    assert by_name["0002-image04733.jpg"].identity == by_name["0003-image04733.jpg"].identity  # one AFLW photo
    assert by_name["0002-image04733.jpg"].subset == "aflw" and by_name["12345.jpg"].subset == "net"
    assert by_name["0003-image04733.jpg"].attributes["pose"] == 5


def test_mtfl_single_annotation_file(tmp_path):
    root = datagen.make_mtfl(tmp_path / "mtfl")
    assert detect_format(root / "testing.txt") == "mtfl"
    result = load_dataset(root / "testing.txt")
    assert len(result.samples) == len(datagen.MTFL_TEST) and not result.skipped


def test_caltech_reads_ground_truth_and_counts_bad_rows(tmp_path):
    from training.data.samples import CONVENTION_CALTECH

    root = datagen.make_caltech(tmp_path / "caltech")
    assert detect_format(root) == "caltech"
    result = load_dataset(root)
    assert len(result.samples) == datagen.CALTECH_EXPECTED_FACES
    assert dict(result.skipped) == datagen.CALTECH_EXPECTED_SKIPPED
    assert result.images == 2 and {s.convention for s in result.samples} == {CONVENTION_CALTECH}
    first = result.samples[0]
    assert np.allclose(first.points_px, datagen.face_points4(70, 70, 40), atol=1e-3)
    assert first.identity == result.samples[1].identity  # faces of one photo stay together
    integer_row = result.samples[-1]  # written as plain integers
    assert np.allclose(integer_row.points_px, np.trunc(datagen.face_points4(100, 80, 50)))
    assert len(load_dataset(root, single_face=True).samples) == 1


def test_not_an_annotation_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some words here\n")
    with pytest.raises(DatasetError, match="MTFL or Caltech"):
        load_dataset(path)


def test_lookalike_copies_share_a_split(tmp_path):
    import cv2

    from training.data.lookalike import merge_lookalike_identities, sample_hashes

    root = datagen.make_mtfl(tmp_path / "mtfl")
    # a resized, brightened copy of one LFW photo under another person's name, and its label
    source = root / "lfw_5590" / "Bo_Li_0001.jpg"
    image = cv2.imread(str(source))
    copy = cv2.convertScaleAbs(cv2.resize(image, None, fx=1.5, fy=1.5), alpha=1.0, beta=25)
    cv2.imwrite(str(root / "lfw_5590" / "Zed_Copy_0001.jpg"), copy)
    pts = datagen.mtfl_points5(100, 80, 90) * 1.5
    with open(root / "training.txt", "ab") as fh:
        fh.write(datagen._mtfl_record("lfw_5590\\Zed_Copy_0001.jpg", pts, 3).encode() + b"\r\n ")
    samples = load_dataset(root).samples
    hashes, valid = sample_hashes(samples)
    assert valid.all() and hashes.shape == (len(samples), 32)
    merged = merge_lookalike_identities(samples)
    assert merged == {"mtfl:lfw:Zed_Copy": "mtfl:lfw:Bo_Li"}
    for seed in range(6):
        splits = split_by_identity(samples, seed, merged=merged)
        owner = {s.identity: name for name, faces in splits.items() for s in faces}
        assert owner["lfw:Zed_Copy"] == owner["lfw:Bo_Li"]
    # without look-alike merging the split is unchanged (the shipped models' split)
    plain = split_by_identity(samples, 0)
    assert plain == split_by_identity(samples, 0, merged={})
