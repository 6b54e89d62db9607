"""Dataset readers: every format gives `FaceSample`s; `load_dataset` picks the reader."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from training.data.samples import SKIP_MULTI_FACE, DatasetError, FaceSample, LoadResult

FORMATS = ("aflw", "300w", "ytf-csv", "dlib-xml", "mtfl", "caltech")


def _reader(fmt: str):
    if fmt == "aflw":
        from training.data import aflw as mod
    elif fmt == "300w":
        from training.data import pts300w as mod
    elif fmt == "ytf-csv":
        from training.data import ytf_csv as mod
    elif fmt == "dlib-xml":
        from training.data import dlib_xml as mod
    elif fmt == "mtfl":
        from training.data import mtfl as mod
    elif fmt == "caltech":
        from training.data import caltech as mod
    else:
        raise DatasetError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")
    return mod


def formats_of(paths) -> list[str]:
    """The reader format of each data path, in order (`detect_format`); a path that is gone or unreadable
    gives its folder or file name instead."""
    out = []
    for path in paths:
        try:
            out.append(detect_format(Path(path)))
        except DatasetError:
            out.append(Path(path).name)
    return out


def detect_format(root: Path) -> str:
    """Guess the format from the folder's contents (not its name)."""
    if root.is_file():
        if root.suffix == ".sqlite":
            return "aflw"
        if root.suffix == ".xml":
            return "dlib-xml"
        if root.name.endswith("_frames_keypoints.csv"):
            return "ytf-csv"
        if root.suffix == ".txt":
            from training.data import caltech, mtfl

            if mtfl.looks_like_mtfl(root):
                return "mtfl"
            if caltech.looks_like_caltech(root):
                return "caltech"
        raise DatasetError(f"{root}: not a dataset (expected a folder, an AFLW .sqlite, a dlib .xml, "
                           "an MTFL or Caltech WebFaces .txt)")
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if any(root.glob("*.sqlite")) or any(root.glob("data/*.sqlite")):
        return "aflw"
    if any(root.glob("*_frames_keypoints.csv")):
        return "ytf-csv"
    if any(root.glob("*.xml")):
        return "dlib-xml"
    if (root / "WebFaces_GroundThruth.txt").is_file():
        return "caltech"
    if any((root / name).is_file() for name in ("training.txt", "testing.txt")):
        return "mtfl"
    if next(root.rglob("*.pts"), None) is not None:
        return "300w"
    raise DatasetError(
        f"{root}: not a dataset folder (no AFLW .sqlite, *_frames_keypoints.csv, dlib .xml, 300-W .pts, "
        "MTFL training.txt/testing.txt or Caltech WebFaces_GroundThruth.txt found)"
    )


def single_face_only(result: LoadResult) -> LoadResult:
    """Drop every face whose image holds more than one labelled face (the course project's filter)."""
    per_image = Counter(s.image_path for s in result.samples)
    kept = [s for s in result.samples if per_image[s.image_path] == 1]
    dropped = len(result.samples) - len(kept)
    skipped = Counter(result.skipped)
    if dropped:
        skipped[SKIP_MULTI_FACE] += dropped
    return LoadResult(result.format, result.root, kept, skipped)


def load_dataset(path: str | Path, fmt: str | None = None, single_face: bool = False) -> LoadResult:
    """Load a dataset folder (format detected unless given); bad rows are skipped and counted."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    fmt = fmt or detect_format(root)
    result = _reader(fmt).load(root)
    return single_face_only(result) if single_face else result


__all__ = ["FORMATS", "FaceSample", "LoadResult", "DatasetError", "detect_format", "load_dataset"]
