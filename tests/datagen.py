"""Small, realistic face datasets written on the fly (AFLW sqlite, 300-W, YTF CSV, dlib XML)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import cv2
import numpy as np

# Feature ids deliberately unlike AFLW's own (8, 11, 15, 19): readers must look them up by name.
AFLW_FEATURES = (
    (8, "ChinCenter", 0.0, 80.0, 10.0),
    (11, "LeftEar", -70.0, 0.0, -60.0),
    (15, "RightEar", 70.0, 0.0, -60.0),
    (19, "LeftBrowCenter", -30.0, -30.0, 5.0),
    (203, "RightEyeCenter", 30.0, -15.0, 0.0),
    (57, "NoseCenter", 0.0, 10.0, 30.0),
    (108, "LeftEyeCenter", -30.0, -15.0, 0.0),
    (999, "MouthCenter", 0.0, 40.0, 10.0),
)
AFLW_FEATURE_ID = {name: fid for fid, name, *_ in AFLW_FEATURES}


def write_image(path: Path, width: int = 200, height: int = 160, seed: int = 0) -> Path:
    """Write a small textured JPEG (a gradient and a few blobs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    xs = np.linspace(0, 255, width, dtype=np.float32)
    image = np.repeat(np.repeat(xs[None, :, None], height, axis=0), 3, axis=2).astype(np.uint8)
    for _ in range(4):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(image, center, int(rng.integers(5, 30)), color, -1)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
    return path


def face_points68(cx: float, cy: float, size: float) -> np.ndarray:
    """A plausible iBUG-68 face centred at (cx, cy), `size` pixels wide, subject's right eye on the left."""
    s = size / 2
    jaw = [(cx + s * math.cos(a), cy + s * 0.2 + s * 0.8 * math.sin(a))
           for a in np.linspace(math.pi, 0, 17)]
    brows = [(cx + s * (-0.75 + 0.15 * i), cy - 0.45 * s) for i in range(5)]
    brows += [(cx + s * (0.15 + 0.15 * i), cy - 0.45 * s) for i in range(5)]
    nose = [(cx, cy - 0.3 * s + 0.1 * s * i) for i in range(4)]
    nose += [(cx + s * 0.1 * (i - 2), cy + 0.15 * s) for i in range(5)]

    def eye(ex: float) -> list[tuple[float, float]]:
        return [(ex + 0.15 * s * math.cos(a), cy - 0.25 * s + 0.06 * s * math.sin(a))
                for a in np.linspace(math.pi, -math.pi, 6, endpoint=False)]

    eyes = eye(cx - 0.4 * s) + eye(cx + 0.4 * s)
    mouth = [(cx + 0.35 * s * math.cos(a), cy + 0.45 * s + 0.12 * s * math.sin(a))
             for a in np.linspace(math.pi, -math.pi, 12, endpoint=False)]
    mouth += [(cx + 0.25 * s * math.cos(a), cy + 0.45 * s + 0.05 * s * math.sin(a))
              for a in np.linspace(math.pi, -math.pi, 8, endpoint=False)]
    pts = np.array(jaw + brows + nose + eyes + mouth, dtype=np.float32)
    assert pts.shape == (68, 2)
    return pts


def face_points4(cx: float, cy: float, size: float) -> np.ndarray:
    """The four project points (right eye, left eye, nose tip, mouth) of a face like face_points68."""
    s = size / 2
    return np.array([[cx - 0.4 * s, cy - 0.25 * s], [cx + 0.4 * s, cy - 0.25 * s],
                     [cx, cy + 0.0], [cx, cy + 0.45 * s]], dtype=np.float32)


# --- AFLW -------------------------------------------------------------------------------------

_AFLW_SCHEMA = {
    "Faces": "face_id INTEGER PRIMARY KEY, file_id TEXT, db_id TEXT",
    "FaceImages": "image_id INTEGER PRIMARY KEY, db_id TEXT, file_id TEXT, filepath TEXT, bw INTEGER, "
                  "width INTEGER, height INTEGER",
    "FeatureCoords": "face_id INTEGER, feature_id INTEGER, x REAL, y REAL, annot_type_id INTEGER",
    "FeatureCoordTypes": "feature_id INTEGER PRIMARY KEY, descr TEXT, code TEXT, x REAL, y REAL, z REAL",
    "FaceRect": "face_id INTEGER, x INTEGER, y INTEGER, w INTEGER, h INTEGER, annot_type_id INTEGER",
    "FacePose": "face_id INTEGER, roll REAL, pitch REAL, yaw REAL, annot_type_id INTEGER",
    "FaceMetaData": "face_id INTEGER, sex TEXT, occluded INTEGER, glasses INTEGER, bw INTEGER, "
                    "annot_type_id INTEGER",
}

# (file_id, folder, faces as (cx, cy, size, yaw_deg, features left out), image kind)
AFLW_IMAGES = (
    ("image00002.jpg", "0", [(100, 80, 80, 3.0, ())], "ok"),
    ("image00013.jpg", "0", [(90, 70, 70, -8.0, ())], "ok"),
    ("image00020.jpg", "0", [(60, 80, 50, 0.0, ()), (150, 80, 50, 5.0, ())], "ok"),  # two faces: dropped
    ("image00031.jpg", "0", [(100, 80, 80, 2.0, ("MouthCenter",))], "ok"),  # missing point: dropped
    ("image00044.jpg", "0", [(100, 80, 80, 1.0, ())], "absent"),  # no image file
    ("image00050.jpg", "1", [(100, 80, 60, 40.0, ())], "ok"),  # turned head, still kept
    ("image00061.jpg", "1", [(100, 80, 70, -4.0, ())], "corrupt"),  # not a JPEG
    ("image00077.jpg", "2", [(100, 85, 90, 10.0, ())], "outside_flickr"),  # <dir>/<filepath> layout
)
AFLW_EXPECTED_FACES = 4
AFLW_EXPECTED_SKIPPED = {"multi_face_image": 2, "required_point_missing": 1, "missing_image": 1,
                         "unreadable_image": 1}


def make_aflw(root: Path, *, swap_eyes: bool = False, swap_3d: bool = False, with_pose: bool = True,
              without_table: str | None = None) -> Path:
    """Write `root/aflw.sqlite` and its images (see AFLW_IMAGES); returns the sqlite path."""
    root.mkdir(parents=True, exist_ok=True)
    db_path = root / "aflw.sqlite"
    con = sqlite3.connect(db_path)
    for table, columns in _AFLW_SCHEMA.items():
        if table != without_table:
            con.execute(f"CREATE TABLE {table} ({columns})")
    if without_table != "FeatureCoordTypes":
        for fid, descr, x, y, z in AFLW_FEATURES:
            if swap_3d and descr in ("LeftEyeCenter", "RightEyeCenter"):
                x = -x
            con.execute("INSERT INTO FeatureCoordTypes VALUES (?,?,?,?,?,?)", (fid, descr, descr[:3], x, y, z))
    face_id = 39000
    for image_id, (file_id, folder, faces, kind) in enumerate(AFLW_IMAGES, start=1):
        filepath = f"{folder}/{file_id}"
        base = root if kind == "outside_flickr" else root / "flickr"
        if kind in ("ok", "outside_flickr"):
            write_image(base / filepath, seed=image_id)
        elif kind == "corrupt":
            (base / filepath).parent.mkdir(parents=True, exist_ok=True)
            (base / filepath).write_bytes(b"not a jpeg at all")
        if without_table != "FaceImages":
            con.execute("INSERT INTO FaceImages VALUES (?,?,?,?,?,?,?)",
                        (image_id, "flickr", file_id, filepath, 0, 200, 160))
        for cx, cy, size, yaw_deg, missing in faces:
            face_id += 7
            _insert_aflw_face(con, face_id, file_id, cx, cy, size, yaw_deg, missing, swap_eyes, with_pose,
                              without_table)
    con.commit()
    con.close()
    return db_path


def _insert_aflw_face(con, face_id, file_id, cx, cy, size, yaw_deg, missing, swap_eyes, with_pose,
                      without_table) -> None:
    if without_table != "Faces":
        con.execute("INSERT INTO Faces VALUES (?,?,?)", (face_id, file_id, "flickr"))
    right_eye, left_eye, nose, mouth = face_points4(cx, cy, size).tolist()
    if swap_eyes:
        right_eye, left_eye = left_eye, right_eye
    # AFLW's LeftEyeCenter is on the image's left: the subject's right eye
    coords = {"LeftEyeCenter": right_eye, "RightEyeCenter": left_eye, "NoseCenter": nose, "MouthCenter": mouth,
              "ChinCenter": (cx, cy + size / 2), "LeftBrowCenter": (cx - size / 4, cy - size / 3)}
    if without_table != "FeatureCoords":
        for name, (x, y) in coords.items():
            if name not in missing:
                con.execute("INSERT INTO FeatureCoords VALUES (?,?,?,?,1)", (face_id, AFLW_FEATURE_ID[name], x, y))
    if without_table != "FaceRect":
        con.execute("INSERT INTO FaceRect VALUES (?,?,?,?,?,1)",
                    (face_id, int(cx - size / 2), int(cy - size / 2), int(size), int(size)))
    if with_pose and without_table != "FacePose":
        con.execute("INSERT INTO FacePose VALUES (?,?,?,?,1)", (face_id, 0.01, -0.02, math.radians(yaw_deg)))
    if without_table != "FaceMetaData":
        con.execute("INSERT INTO FaceMetaData VALUES (?,?,?,?,?,1)", (face_id, "f", 0, 0, 0))


# --- 300-W ------------------------------------------------------------------------------------

def pts_text(points68: np.ndarray, header: bool = True) -> str:
    """A .pts file body (1-based coordinates, as 300-W writes them)."""
    body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in np.asarray(points68).reshape(-1, 2))
    return f"version: 1\nn_points:  {len(points68)}\n{{\n{body}\n}}\n" if header else body + "\n"


SET_300W_EXPECTED_FACES = 4
SET_300W_EXPECTED_SKIPPED = {"missing_image": 1, "wrong_number_of_values": 1}


def make_300w(root: Path) -> Path:
    """300-W photos with .pts beside them: 4 good faces (3 photos), one with no image, one with 67 points."""
    root.mkdir(parents=True, exist_ok=True)
    for k, (stem, header) in enumerate((("1001_1", True), ("1001_2", False), ("2002_1", True), ("3003_1", False))):
        write_image(root / f"{stem}.jpg", seed=10 + k)
        cx = 70 if stem.endswith("_1") else 140
        (root / f"{stem}.pts").write_text(pts_text(face_points68(cx, 80, 60), header))
    (root / "4004_1.pts").write_text(pts_text(face_points68(100, 80, 60)))
    write_image(root / "5005_1.jpg", seed=20)
    (root / "5005_1.pts").write_text(pts_text(face_points68(100, 80, 60)[:67], header=False))
    return root


# --- YouTube-Faces keypoints CSV --------------------------------------------------------------

YTF_PEOPLE = ("Anna_Smith", "Bo_Li", "Carla_Diaz", "Dev_Patel", "Eve_Ng", "Finn_Olsen", "Gus_Park", "Hana_Sato",
              "Ivo_Kral", "Jin_Woo")
YTF_FRAMES = 3
YTF_EXPECTED_FACES = len(YTF_PEOPLE) * YTF_FRAMES
YTF_EXPECTED_SKIPPED = {"wrong_number_of_values": 1, "nan_value": 1, "missing_image": 1,
                        "points_outside_image": 1}


def make_ytf_csv(root: Path) -> Path:
    """`training_frames_keypoints.csv` + `training/` frames: 10 people x 3 frames and four bad rows."""
    frames = root / "training"
    frames.mkdir(parents=True, exist_ok=True)
    header = "," + ",".join(str(i) for i in range(136))
    rows = [header]
    for p, person in enumerate(YTF_PEOPLE):
        for f in range(YTF_FRAMES):
            name = f"{person}_{f:02d}.jpg"
            write_image(frames / name, seed=100 + p * 10 + f)
            pts = face_points68(90 + 5 * f, 80, 70) + 1  # the CSV is 1-based
            rows.append(name + "," + ",".join(f"{v:.2f}" for v in pts.reshape(-1)))
    good = face_points68(100, 80, 70).reshape(-1) + 1
    write_image(frames / "Bad_Rows_00.jpg", seed=999)
    rows.append("Bad_Rows_00.jpg," + ",".join(f"{v:.2f}" for v in good[:-2]))  # wrong count
    nan_row = [f"{v:.2f}" for v in good]
    nan_row[7] = "nan"
    rows.append("Bad_Rows_00.jpg," + ",".join(nan_row))  # NaN
    rows.append("Nobody_Here_00.jpg," + ",".join(f"{v:.2f}" for v in good))  # missing image
    rows.append("Bad_Rows_00.jpg," + ",".join(f"{v + 900:.2f}" for v in good))  # far outside
    (root / "training_frames_keypoints.csv").write_text("\n".join(rows) + "\n")
    return root


# --- dlib imglab XML --------------------------------------------------------------------------

DLIB_EXPECTED_FACES = 4
DLIB_EXPECTED_SKIPPED = {"ignored_box": 1, "required_point_missing": 1}


def _dlib_box(cx: float, cy: float, size: float, n_parts: int = 68, ignore: bool = False) -> str:
    pts = face_points68(cx, cy, size)[:n_parts]
    attrs = f"top='{int(cy - size / 2)}' left='{int(cx - size / 2)}' width='{int(size)}' height='{int(size)}'"
    if ignore:
        attrs += " ignore='1'"
    parts = "".join(f"\n      <part name='{i:02d}' x='{int(x)}' y='{int(y)}'/>" for i, (x, y) in enumerate(pts))
    return f"    <box {attrs}>{parts}\n    </box>\n"


def make_dlib_xml(root: Path) -> Path:
    """A landmark XML (a 3-face photo, a 1-face photo with an ignored box and a 5-part box) + a box-only XML."""
    root.mkdir(parents=True, exist_ok=True)
    write_image(root / "group.jpg", width=300, height=160, seed=31)
    write_image(root / "single.jpg", seed=32)
    group = "".join(_dlib_box(cx, 80, 50) for cx in (60, 150, 240))
    single = _dlib_box(100, 80, 70) + _dlib_box(30, 30, 30, ignore=True) + _dlib_box(160, 40, 30, n_parts=5)
    xml = ("<?xml version='1.0' encoding='ISO-8859-1'?>\n<dataset>\n<name>faces</name>\n<images>\n"
           f"  <image file='group.jpg'>\n{group}  </image>\n"
           f"  <image file='single.jpg'>\n{single}  </image>\n</images>\n</dataset>\n")
    (root / "faces_with_landmarks.xml").write_text(xml)
    boxes_only = ("<?xml version='1.0'?>\n<dataset>\n<images>\n  <image file='group.jpg'>\n"
                  "    <box top='1' left='1' width='20' height='20'/>\n  </image>\n</images>\n</dataset>\n")
    (root / "faces.xml").write_text(boxes_only)
    return root


# --- MTFL -------------------------------------------------------------------------------------

# (folder, name, face centre x, y, size, pose code); the release's layout: lfw_5590/, net_7876/, AFLW/
MTFL_TRAIN = (("lfw_5590", "Anna_Smith_0001.jpg", 100, 80, 80, 3), ("lfw_5590", "Anna_Smith_0002.jpg", 95, 85, 70, 2),
              ("lfw_5590", "Bo_Li_0001.jpg", 100, 80, 90, 4), ("net_7876", "12345.jpg", 90, 70, 60, 1))
MTFL_TEST = (("AFLW", "0002-image04733.jpg", 100, 80, 80, 3), ("AFLW", "0003-image04733.jpg", 98, 82, 76, 5))
MTFL_EXPECTED_FACES = len(MTFL_TRAIN) + len(MTFL_TEST)
MTFL_EXPECTED_SKIPPED = {"wrong_number_of_values": 2, "nan_value": 1, "missing_image": 1}


def mtfl_points5(cx: float, cy: float, size: float) -> np.ndarray:
    """MTFL's five points (image-left eye, other eye, nose, image-left mouth corner, other corner) of a face."""
    s = size / 2
    return np.array([[cx - 0.4 * s, cy - 0.25 * s], [cx + 0.4 * s, cy - 0.25 * s], [cx, cy],
                     [cx - 0.3 * s, cy + 0.45 * s], [cx + 0.3 * s, cy + 0.45 * s]], dtype=np.float32)


def _mtfl_record(path: str, pts5: np.ndarray, pose: int) -> str:
    xs = " ".join(f"{v:.6f}" for v in pts5[:, 0])
    ys = " ".join(f"{v:.6f}" for v in pts5[:, 1])
    return f"{path} {xs} {ys} 1 2 2 {pose}"


def _write_mtfl_file(path: Path, records: list[str]) -> None:
    # The release's quirks: CRLF, every record after the first preceded by a space, a trailing space.
    path.write_bytes(("\r\n ".join(records) + "\r\n ").encode())


def make_mtfl(root: Path) -> Path:
    """`training.txt` (`\\` paths) + `testing.txt` (`/` paths) and their images, plus four bad records."""
    records = []
    for k, (folder, name, cx, cy, size, pose) in enumerate(MTFL_TRAIN):
        write_image(root / folder / name, seed=300 + k)
        records.append(_mtfl_record(f"{folder}\\{name}", mtfl_points5(cx, cy, size), pose))
    good = mtfl_points5(100, 80, 80)
    records.append(_mtfl_record("lfw_5590\\Nobody_0001.jpg", good, 3))  # missing image
    records.append(_mtfl_record("lfw_5590\\Anna_Smith_0001.jpg", good, 3) + " 7")  # a field too many
    records.append("lfw_5590\\Anna_Smith_0001.jpg 1 2 3")  # too few
    nan = _mtfl_record("lfw_5590\\Anna_Smith_0001.jpg", good, 3).split()
    nan[4] = "nan"
    records.append(" ".join(nan))
    _write_mtfl_file(root / "training.txt", records)
    tests = []
    for k, (folder, name, cx, cy, size, pose) in enumerate(MTFL_TEST):
        write_image(root / folder / name, width=150, height=150, seed=320 + k)
        tests.append(_mtfl_record(f"{folder}/{name}", mtfl_points5(cx, cy, size), pose))
    _write_mtfl_file(root / "testing.txt", tests)
    return root


# --- Caltech WebFaces -------------------------------------------------------------------------

CALTECH_FACES = {"pic00011.jpg": ((70, 70, 40), (160, 80, 30), (230, 60, 24)), "pic00021.jpg": ((100, 80, 50),)}
CALTECH_EXPECTED_FACES = 4
CALTECH_EXPECTED_SKIPPED = {"wrong_number_of_values": 1, "missing_image": 1}


def make_caltech(root: Path) -> Path:
    """`WebFaces_GroundThruth.txt` (1-based; `%.6e` and plain integers, a space after each) + `Caltech_WebFaces/`."""
    lines = []
    for k, (name, faces) in enumerate(CALTECH_FACES.items()):
        write_image(root / "Caltech_WebFaces" / name, width=280, height=160, seed=340 + k)
        for cx, cy, size in faces:
            pts = face_points4(cx, cy, size) + 1
            lines.append(name + " " + "".join(f"{v:.6e} " for v in pts.reshape(-1)))
    lines[-1] = "pic00021.jpg " + "".join(f"{int(v) + 1} " for v in face_points4(100, 80, 50).reshape(-1))
    lines.append("pic99999.jpg " + "".join(f"{v:.6e} " for v in face_points4(100, 80, 50).reshape(-1)))
    lines.append("pic00021.jpg 1.0 2.0 3.0 ")
    (root / "WebFaces_GroundThruth.txt").write_text("\n".join(lines) + "\n")
    return root
