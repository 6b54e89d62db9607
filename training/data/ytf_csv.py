"""YouTube-Faces keypoints CSV: `*_frames_keypoints.csv` rows `filename,x0,y0,...,x67,y67`."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from core.geometry import box_from_points
from training.data.common import ONE_BASED_SHIFT_PX, image_size, make_sample, start_load
from training.data.samples import SKIP_BAD_VALUES, SKIP_NAN, DatasetError, LoadResult, four_points_from_68

FORMAT = "ytf-csv"
_IDENTITY = re.compile(r"^(.*)_\d+$")


def csv_files(root: Path) -> list[Path]:
    """The keypoint CSVs of a YouTube-Faces keypoints folder."""
    return sorted(root.glob("*_frames_keypoints.csv"))


def identity_of(filename: str) -> str:
    """The person: the file name without its `_NN` frame suffix."""
    stem = Path(filename).stem
    m = _IDENTITY.match(stem)
    return m.group(1) if m else stem


def _image_dir(csv_path: Path) -> Path:
    # training_frames_keypoints.csv -> training/, test_frames_keypoints.csv -> test/
    prefix = csv_path.name[: -len("_frames_keypoints.csv")]
    folder = csv_path.parent / prefix
    return folder if folder.is_dir() else csv_path.parent


def load(root: Path) -> LoadResult:
    """Read every keypoint CSV in `root`; bad rows are skipped and counted."""
    files = csv_files(root)
    result = start_load(root, FORMAT, files, "*_frames_keypoints.csv")
    for csv_path in files:
        try:
            _read_csv(csv_path, result)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"{csv_path}: not a readable keypoints CSV ({str(exc)[:120]})") from None
        except OSError as exc:
            raise DatasetError(f"{csv_path}: cannot read ({exc.strerror})") from None
    return result


def _read_csv(csv_path: Path, result: LoadResult) -> None:
    image_dir = _image_dir(csv_path)
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)  # header: ,0,1,...,135
        for row in reader:
            if not row or not row[0].strip():
                continue
            if len(row) != 1 + 136:
                result.skipped[SKIP_BAD_VALUES] += 1
                continue
            try:
                values = np.array([float(v) for v in row[1:]], dtype=np.float32)
            except ValueError:  # not a number at all ("nan" parses, and is counted below)
                result.skipped[SKIP_BAD_VALUES] += 1
                continue
            if not np.isfinite(values).all():
                result.skipped[SKIP_NAN] += 1
                continue
            path = image_dir / row[0]
            size = image_size(path)
            if isinstance(size, str):
                result.skipped[size] += 1
                continue
            pts68 = values.reshape(68, 2) - ONE_BASED_SHIFT_PX  # 1-based (training.data.common)
            sample = make_sample(path, four_points_from_68(pts68), box_from_points(pts68),
                                 identity_of(row[0]), FORMAT, size, points68_px=pts68)
            if isinstance(sample, str):
                result.skipped[sample] += 1
            else:
                result.samples.append(sample)
