"""AFLW: the real distribution's `aflw.sqlite` plus `flickr/<n>/imageNNNNN.jpg` images."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import numpy as np

from training.data.common import image_size, make_sample
from training.data.samples import (
    SKIP_BAD_VALUES,
    SKIP_MISSING_IMAGE,
    SKIP_MISSING_POINT,
    SKIP_MULTI_FACE,
    DatasetError,
    LoadResult,
)

FORMAT = "aflw"
SQLITE_NAME = "aflw.sqlite"
REQUIRED_TABLES = ("Faces", "FaceImages", "FeatureCoords", "FeatureCoordTypes", "FaceRect")
# AFLW names the points from the viewer's side: its LeftEyeCenter is the subject's right eye.
FEATURES_IN_POINT_ORDER = ("LeftEyeCenter", "RightEyeCenter", "NoseCenter", "MouthCenter")
NEAR_FRONTAL_YAW_RAD = math.radians(15.0)
MIN_EYE_ORDER_AGREEMENT = 0.8
SKIP_MISSING_RECT = "face_rect_missing"


def find_sqlite(root: Path) -> Path:
    """The AFLW database: root itself, root/aflw.sqlite, root/data/aflw.sqlite or root's only .sqlite."""
    if root.is_file():
        return root
    for candidate in (root / SQLITE_NAME, root / "data" / SQLITE_NAME):
        if candidate.is_file():
            return candidate
    found = sorted(root.glob("*.sqlite")) or sorted(root.glob("data/*.sqlite"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetError(f"{root}: no AFLW {SQLITE_NAME} found (looked in the folder and in data/)")
    raise DatasetError(f"{root}: several .sqlite files and no {SQLITE_NAME}: pass the database file itself")


def open_readonly(db_path: Path) -> sqlite3.Connection:
    """Open an SQLite file read-only; raise DatasetError when it is not a database."""
    uri = f"file:{quote(str(db_path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
        con.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise DatasetError(f"{db_path}: not an SQLite database ({exc})") from None
    return con


def check_tables(con: sqlite3.Connection, db_path: Path) -> set[str]:
    """The database's table names; raise DatasetError naming any required table it lacks."""
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise DatasetError(f"{db_path}: not an AFLW database: missing table(s) {', '.join(missing)}")
    return tables


def feature_ids(con: sqlite3.Connection, db_path: Path) -> tuple[int, ...]:
    """FeatureCoords ids of the four points (POINT_NAMES order), looked up by name; checks the 3D face."""
    rows = con.execute("SELECT feature_id, descr, x FROM FeatureCoordTypes").fetchall()
    by_name = {str(descr).strip(): (int(fid), x) for fid, descr, x in rows if descr is not None}
    missing = [name for name in FEATURES_IN_POINT_ORDER if name not in by_name]
    if missing:
        raise DatasetError(f"{db_path}: FeatureCoordTypes lacks {', '.join(missing)}")
    left_x, right_x = by_name["LeftEyeCenter"][1], by_name["RightEyeCenter"][1]
    if left_x is not None and right_x is not None and not float(left_x) < float(right_x):
        raise DatasetError(
            f"{db_path}: the mean 3D face puts LeftEyeCenter at x={left_x} and RightEyeCenter at x={right_x}; "
            "this reader expects LeftEyeCenter at the smaller (negative) x"
        )
    return tuple(by_name[name][0] for name in FEATURES_IN_POINT_ORDER)


def read_points(con: sqlite3.Connection, ids: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Face id -> (4, 2) points in POINT_NAMES order, NaN where a point is not annotated."""
    slot = {fid: i for i, fid in enumerate(ids)}
    marks = ",".join("?" * len(ids))
    points: dict[int, np.ndarray] = {}
    query = f"SELECT face_id, feature_id, x, y FROM FeatureCoords WHERE feature_id IN ({marks}) ORDER BY rowid"
    for face_id, feature_id, x, y in con.execute(query, ids):
        try:
            pts = points.setdefault(int(face_id), np.full((4, 2), np.nan, dtype=np.float32))
            i = slot[int(feature_id)]
            if np.isnan(pts[i]).any() and x is not None and y is not None:
                pts[i] = (float(x), float(y))
        except (TypeError, ValueError):  # a non-numeric cell: that point stays missing
            continue
    return points


def read_rects(con: sqlite3.Connection) -> dict[int, np.ndarray]:
    """Face id -> its first FaceRect as an xyxy box."""
    rects: dict[int, np.ndarray] = {}
    for face_id, x, y, w, h in con.execute("SELECT face_id, x, y, w, h FROM FaceRect ORDER BY rowid"):
        try:
            if int(face_id) not in rects and None not in (x, y, w, h):
                x, y, w, h = float(x), float(y), float(w), float(h)
                rects[int(face_id)] = np.array([x, y, x + w, y + h], dtype=np.float32)
        except (TypeError, ValueError):  # a non-numeric cell: the face counts as having no rect
            continue
    return rects


def read_yaws(con: sqlite3.Connection, tables: set[str]) -> dict[int, float]:
    """Face id -> yaw in radians (empty without a FacePose table)."""
    if "FacePose" not in tables:
        return {}
    rows = con.execute("SELECT face_id, yaw FROM FacePose ORDER BY rowid").fetchall()
    yaws: dict[int, float] = {}
    for face_id, yaw in rows:
        try:
            if yaw is not None:
                yaws.setdefault(int(face_id), float(yaw))
        except (TypeError, ValueError):
            continue
    return yaws


def eye_order_agreement(points: dict[int, np.ndarray], yaws: dict[int, float]) -> tuple[int, int]:
    """(faces whose right_eye has the smaller x, faces judged): near-frontal ones, or all without poses."""
    judged = agree = 0
    for face_id, pts in points.items():
        if np.isnan(pts[:2]).any():
            continue
        if yaws and not (face_id in yaws and abs(yaws[face_id]) < NEAR_FRONTAL_YAW_RAD):
            continue
        judged += 1
        agree += int(pts[0, 0] < pts[1, 0])
    return agree, judged


def check_eye_order(points: dict[int, np.ndarray], yaws: dict[int, float], db_path: Path) -> None:
    """Raise DatasetError when the data contradicts LeftEyeCenter = subject's right eye."""
    agree, judged = eye_order_agreement(points, yaws)
    if judged and agree < MIN_EYE_ORDER_AGREEMENT * judged:
        raise DatasetError(
            f"{db_path}: eye labels contradict the expected mapping: LeftEyeCenter (our right_eye) has the "
            f"smaller x in only {agree} of {judged} near-frontal faces (need {MIN_EYE_ORDER_AGREEMENT:.0%})"
        )


def image_file(base: Path, filepath: str) -> Path:
    """The image of a FaceImages.filepath: `<base>/flickr/<filepath>`, else `<base>/<filepath>`."""
    flickr = base / "flickr" / filepath
    return flickr if flickr.is_file() else base / filepath


def _read_faces(con: sqlite3.Connection) -> tuple[list[tuple[int, str]], dict[str, str]]:
    faces = []
    for fid, file_id in con.execute("SELECT face_id, file_id FROM Faces ORDER BY face_id"):
        try:
            faces.append((int(fid), str(file_id)))
        except (TypeError, ValueError):
            continue
    filepaths: dict[str, str] = {}
    for file_id, filepath in con.execute("SELECT file_id, filepath FROM FaceImages ORDER BY rowid"):
        if filepath is not None:
            filepaths.setdefault(str(file_id), str(filepath))
    return faces, filepaths


def load(root: Path) -> LoadResult:
    """Read AFLW faces with all four points, one face per image; the rest are skipped and counted."""
    db_path = find_sqlite(Path(root))
    con = open_readonly(db_path)
    try:
        tables = check_tables(con, db_path)
        ids = feature_ids(con, db_path)
        points = read_points(con, ids)
        rects = read_rects(con)
        yaws = read_yaws(con, tables)
        faces, filepaths = _read_faces(con)
    except sqlite3.DatabaseError as exc:
        raise DatasetError(f"{db_path}: unreadable AFLW database ({exc})") from None
    except (TypeError, ValueError) as exc:  # e.g. a feature id that is not a number
        raise DatasetError(f"{db_path}: malformed AFLW database ({str(exc)[:120]})") from None
    finally:
        con.close()
    check_eye_order(points, yaws, db_path)

    result = LoadResult(FORMAT, str(root))
    faces_per_file = Counter(file_id for _, file_id in faces)
    sizes: dict[Path, tuple[int, int] | str] = {}
    for face_id, file_id in faces:
        pts = points.get(face_id)
        if faces_per_file[file_id] > 1:
            result.skipped[SKIP_MULTI_FACE] += 1
        elif pts is None or np.isnan(pts).any():
            result.skipped[SKIP_MISSING_POINT] += 1
        elif face_id not in rects:
            result.skipped[SKIP_MISSING_RECT] += 1
        elif not (rects[face_id][2] > rects[face_id][0] and rects[face_id][3] > rects[face_id][1]):
            result.skipped[SKIP_BAD_VALUES] += 1
        elif file_id not in filepaths:
            result.skipped[SKIP_MISSING_IMAGE] += 1
        else:
            path = image_file(db_path.parent, filepaths[file_id])
            size = sizes.setdefault(path, image_size(path))
            sample = size if isinstance(size, str) else make_sample(
                path, pts, rects[face_id], filepaths[file_id], FORMAT, size)
            if isinstance(sample, str):
                result.skipped[sample] += 1
            else:
                result.samples.append(sample)
    return result
