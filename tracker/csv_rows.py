"""`--csv FILE`: one CSV row per face found (frames or images without a face give no row), header first.

Columns, in order:

    frame,t_ms            video and webcam (the frame's index and presentation time, ms), or
    image                 still images (the path as given)
    id,source,score       the face's track id, "detector" or "tracked", this frame's score (empty when
                          nothing scored it): as in the JSON rows (`tracker.sinks.face_row`)
    x1,y1,x2,y2           the face box, frame pixels
    <point>_x,<point>_y   each point in the landmark model's order (right_eye_x, right_eye_y, ...)

Written like the JSON lines (`tracker.sinks.LineWriter`): a claimed `.NAME.part` renamed into place when
the run ends (also after an error or an interrupt), or standard output for `-`; flushed per frame.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from core.frame import FrameResult
from core.meta import POINT_NAMES
from tracker.outfile import OutputFile
from tracker.sinks import LineWriter, face_source, frame_score

__all__ = ["CsvSink", "csv_header", "csv_rows"]


def csv_header(images: bool, point_names: tuple[str, ...] = POINT_NAMES) -> list[str]:
    """The header row: `image` or `frame,t_ms`, then id, source, score, the box, each point's x and y."""
    lead = ["image"] if images else ["frame", "t_ms"]
    points = [f"{name}_{axis}" for name in point_names for axis in ("x", "y")]
    return [*lead, "id", "source", "score", "x1", "y1", "x2", "y2", *points]


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{round(float(value), digits):g}"


def csv_rows(result: FrameResult, point_names: tuple[str, ...] = POINT_NAMES) -> list[list[str]]:
    """The rows of one frame or image, one per face in the JSON row's order (cells as text, the numbers
    rounded as in the JSON rows); [] when it has no face."""
    frame = result.frame
    lead = [frame.name] if frame.name is not None else [str(frame.index), _num(frame.t_ms, 3)]
    rows = []
    for face in result.faces:
        points = np.asarray(face.points_px, dtype=np.float32).reshape(-1, 2)[:len(point_names)]
        rows.append([*lead, str(int(face.id)), face_source(face), _num(frame_score(face), 4),
                     *(_num(v, 2) for v in face.box_xyxy), *(_num(v, 2) for v in points.reshape(-1))])
    return rows


class CsvSink(LineWriter):
    """CSV rows, one per face (`csv_rows`), the header written when it opens; into a claimed file or onto
    standard output for `-` (`LineWriter`). `images`: rows of still images (an `image` column in place of
    `frame,t_ms`)."""

    def __init__(self, path: str | Path, images: bool = False, point_names: tuple[str, ...] = POINT_NAMES,
                 output: OutputFile | None = None) -> None:
        super().__init__(path, output, "--csv")
        self.point_names = tuple(point_names)
        try:
            self.write_text(self._format([csv_header(images, self.point_names)]))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _format(rows: list[list[str]]) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        return text.getvalue()

    def write(self, result: FrameResult) -> None:
        """Write and flush the rows of one frame or image (one write call)."""
        rows = csv_rows(result, self.point_names)
        if rows:
            self.write_text(self._format(rows))
            self.rows += len(rows)
