"""Where results go: an mp4 video, JSON lines (one row per frame or image), annotated copies of still
images, a window when asked.

Output paths are checked before any work (`check_output_path`, `plan_image_outputs`). The window sink is
only made when a window was asked for and one can really be opened (`window_problem`: a GUI build of
OpenCV, a display named and reachable): OpenCV's Qt backend aborts the process otherwise.

Closing a sink finalises its file (the mp4 index, the last JSON row) with SIGINT/SIGTERM held back
(`deferred_signals`), and each annotated image is written to a temporary file renamed into place, so an
interrupt can never leave a half-written file behind. The mp4 and the JSON lines are claimed and
written the same way (`tracker.outfile.OutputFile`): one run at a time writes an output, into
`.NAME.part` beside it, renamed over NAME when the sink is closed (at the end, after an error, or
after an interrupt). JSON lines (and CSV rows, `tracker.csv_rows`) given the path `-` go to standard
output instead, flushed per row, with no file, claim or check.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # see tracker.sources.capture

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.errors import FacetrackError, InputError, os_reason  # noqa: E402
from core.meta import POINT_NAMES  # noqa: E402
from core.pathnames import shown  # noqa: E402
from core.signals import deferred_signals  # noqa: E402
from tracker.audio_copy import AudioCopy  # noqa: E402
from tracker.mp4_codec import AUTO, MUXER_OPTIONS, TIME_BASE_HZ, Codec, choose_codec, open_video_stream  # noqa: E402
from tracker.outfile import OutputFile  # noqa: E402

VIDEO_SUFFIXES = (".mp4",)
WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
ESC = 27


def display_available() -> bool:
    """True when a display is named (DISPLAY or WAYLAND_DISPLAY on Linux); not whether it can be reached:
    `window_problem` tells that."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


WINDOW_PROBE_TIMEOUT_S = 10.0  # a display server that does not answer in this long counts as unreachable
_WINDOW_PROBE = ("import cv2\ncv2.namedWindow('facetrack-probe', cv2.WINDOW_NORMAL)\ncv2.waitKey(1)\n"
                 "cv2.destroyAllWindows()\ncv2.waitKey(1)\n")


def opencv_has_gui() -> bool:
    """False for an OpenCV build without a GUI backend (opencv-python-headless): it opens no window."""
    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return found is None or found.group(1).upper() not in ("NONE", "NO", "OFF")


def probe_window(timeout_s: float = WINDOW_PROBE_TIMEOUT_S) -> str | None:
    """Open and close an OpenCV window in a child process (about 0.3 s); None when that worked, else the
    reason in a few words. A child, because OpenCV's Qt backend aborts the whole process (SIGABRT) when
    the display cannot be reached."""
    try:
        done = subprocess.run([sys.executable, "-c", _WINDOW_PROBE], capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer in {timeout_s:g} s"
    except OSError as exc:
        return f"cannot run the window probe ({exc.strerror or exc})"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"the window probe exited with status {done.returncode}"


def window_problem() -> str | None:
    """None when a window can really be opened here; else why not, one short phrase for a message.

    Checked in order: an OpenCV build without GUI support; no display named (Linux: DISPLAY and
    WAYLAND_DISPLAY unset); a window that cannot be opened on the named display (`probe_window`:
    a server that is not there, refuses the connection, or does not answer).
    """
    if not opencv_has_gui():
        return "this OpenCV build has no GUI support (opencv-python-headless)"
    if not display_available():
        return "no display (DISPLAY / WAYLAND_DISPLAY unset)"
    reason = probe_window()
    if reason is None:
        return None
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    where = f"display {display}" if display else "the display"
    return f"{where} cannot be reached, no window can be opened ({reason})"


MAX_PAD_S = 10.0  # a live recording fills at most this long a gap with the last frame


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(path: Path, option: str, inputs: list[Path] = (), suffixes: tuple[str, ...] = (),
                      others: list[Path] = ()) -> Path:
    """Fail before any work when `path` cannot be written: missing folder, a folder, an input, a clash.

    Names that are not valid UTF-8 are fine (written as their bytes); messages show them as `ls -b` does."""
    path = Path(path)
    what = f"{option} {shown(path)}"
    if path.is_dir():
        raise InputError(f"{what}: is a folder; give a file path")
    if not path.parent.is_dir():
        raise InputError(f"{what}: folder {shown(path.parent)} does not exist; create it or choose another")
    check_writable_folder(path.parent, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what}: exists and is not writable; choose another file")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{what}: expected a {' or '.join(suffixes)} file name")
    for given in inputs:
        if _same_file(path, Path(given)):
            raise InputError(f"{what}: is the input; refusing to overwrite it")
    for other in others:
        if other is not None and _same_file(path, Path(other)):
            raise InputError(f"{what}: is also another output")
    return path


def check_writable_folder(folder: Path, what: str) -> None:
    """InputError unless a file can be created in `folder` (tried for real: read-only mounts, root)."""
    folder = Path(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what}: folder {shown(folder)} is not writable; choose another folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".facetrack-probe-", dir=folder)
    except OSError as exc:
        raise InputError(f"{what}: cannot create files in {shown(folder)} ({exc.strerror}); choose another "
                         "folder") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


class VideoSink:
    """An .mp4 written with PyAV at exactly the given size, each frame with its own timestamp: H.264 where
    it can be written, else MPEG-4 Part 2 (tag mp4v; odd widths and heights too), as `codec` asks
    (`tracker.mp4_codec.choose_codec`; `codec_label` says which, for the "wrote" line).

    - `write(image, t_ms)` (files): the frame is shown at its own presentation time, `t_ms` minus the
      first written frame's `t_ms` (the file starts at 0), so variable frame rates and gaps keep their
      real timing; without `t_ms`, one nominal frame interval (1 / fps) after the previous frame.
    - `write_at(image, t_ms)` (live sources): frames on a fixed `fps` grid of the source's clock; a
      frame that arrives after a gap (frames dropped to keep latency low, or never delivered by the
      camera) is preceded by copies of the last drawn frame (at most MAX_PAD_S), so the recording plays
      at the speed it was filmed.
    - `audio_from` (a file path, `write` only): that file's audio streams are copied in, cut to the
      written frames' time range and in sync with them (`tracker.audio_copy.AudioCopy`); what could not
      be kept is in `notes`, one line each.

    No drawn frame is ever left out; a timestamp not after the previous one is moved one tick
    (1 / TIME_BASE_HZ s) after it. A frame of another size (a source that changed size mid-stream) is
    resized to the file's size. InputError for `codec="h264"` where H.264 cannot be written;
    FacetrackError when the file cannot be opened or written.

    The file is written as `.NAME.part` and renamed to `path` by `close()` (`tracker.outfile`): `output`
    is the run's claim on `path`, made here when not given (InputError when another run holds it).
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int,
                 output: OutputFile | None = None, codec: str = AUTO,
                 audio_from: str | Path | None = None) -> None:
        self.path = Path(path)
        self.size = (int(width), int(height))
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 30.0
        self.codec: Codec = choose_codec(codec, *self.size)
        self.codec_label = self.codec.label
        self.notes: list[str] = []  # what --keep-audio could not keep, one line each
        self.frames = 0  # frames in the file
        self.repeated = 0  # copies of a previous frame written to fill gaps (write_at)
        self._t0_ms: float | None = None  # the first frame's source time (write_at and write)
        self._last: np.ndarray | None = None
        self._last_pts = -1
        self._audio: AudioCopy | None = None
        self._output = output if output is not None else OutputFile(self.path, "--out")
        try:
            self._container, self._stream = _open_mp4(self._output.part, self.size, self.fps, shown(self.path),
                                                      self.codec)
            if audio_from is not None:
                self._audio = AudioCopy(audio_from, self._container, shown(self.path))
                self.notes = list(self._audio.notes)
        except BaseException:
            if getattr(self, "_container", None) is not None:
                with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                    self._container.close()
            self._output.discard()
            raise

    def _append(self, image: np.ndarray, t_s: float) -> None:
        """Encode one frame shown at `t_s` seconds from the start of the file."""
        if self._container is None:
            raise FacetrackError(f"{shown(self.path)}: write after close")
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        pts = max(int(round(t_s * TIME_BASE_HZ)), self._last_pts + 1)
        frame = encoder_frame(image)
        frame.pts, frame.time_base = pts, Fraction(1, TIME_BASE_HZ)
        try:
            if self._audio is not None:
                self._audio.pump(pts / TIME_BASE_HZ)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise FacetrackError(f"{shown(self.path)}: cannot write the video ({os_reason(exc)}); {self.frames} "
                                 "frames written before it") from None
        self._last_pts = pts
        self.frames += 1

    def write(self, image: np.ndarray, t_ms: float | None = None) -> None:
        """Append one frame at its presentation time `t_ms` (ms on the source's clock), or, without it,
        one nominal interval after the previous frame."""
        if t_ms is None:
            t_s = self._last_pts / TIME_BASE_HZ + 1.0 / self.fps if self.frames else 0.0
        else:
            if self._t0_ms is None:
                self._t0_ms = float(t_ms)
            t_s = (float(t_ms) - self._t0_ms) / 1000.0
        if self._audio is not None and self.frames == 0:
            self._audio.start((self._t0_ms or 0.0) / 1000.0)
        self._append(image, t_s)

    def write_at(self, image: np.ndarray, t_ms: float) -> None:
        """Place a frame at media time `t_ms` (ms on the source's clock) in a file running at `fps`."""
        if self._t0_ms is None:
            self._t0_ms = t_ms
        slot = int(round((t_ms - self._t0_ms) * self.fps / 1000.0))
        if self._last is not None:
            gap = min(slot - self.frames, int(MAX_PAD_S * self.fps))
            for _ in range(max(0, gap)):
                self._append(self._last, self.frames / self.fps)
                self.repeated += 1
        self._append(image, self.frames / self.fps)  # every drawn frame is kept, even one early on the clock
        self._last = image

    def close(self) -> None:
        """Finish the file so it plays (flushes the encoder, the kept sound up to one frame interval after
        the last frame, writes the mp4 index) and rename it into place; signals wait until it is done.

        A file that never got a frame (a run stopped before its first one) is not put in place: an mp4
        without frames plays nowhere (a file already at `path` is left as it was).
        """
        if self._container is None:
            return
        with deferred_signals():
            container, self._container, self._last = self._container, None, None
            try:
                if self._audio is not None and self.frames:
                    self._audio.finish(self._last_pts / TIME_BASE_HZ + 1.0 / self.fps)
                for packet in self._stream.encode(None):
                    container.mux(packet)
            except (av.FFmpegError, OSError, ValueError):
                pass  # the frames muxed so far still get their index below
            finally:
                if self._audio is not None:
                    self._audio.close()
                with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                    container.close()
            if self.frames == 0:
                self._output.discard()
            else:
                self._output.commit()

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def encoder_frame(image: np.ndarray) -> av.VideoFrame:
    """A uint8 HxWx3 BGR image as the frame the encoder takes (yuv420p). Even sizes are converted by
    OpenCV (`cv2.COLOR_BGR2YUV_I420`, BT.601 limited range, as FFmpeg's own conversion): 0.6 ms a frame
    less CPU than handing PyAV bgr24 at 640x480 (1.52 vs 2.18 ms per encoded frame with H.264 ultrafast,
    docs/benchmarks.md) and nearer the source colours after decoding (mean |error| 1.3 vs 2.1 levels).
    Odd sizes, which 4:2:0 planes cannot hold exactly, go to PyAV as bgr24."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if width % 2 or height % 2:
        return av.VideoFrame.from_ndarray(image, format="bgr24")
    return av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")


def _open_mp4(path: Path, size: tuple[int, int], fps: float, name: str, codec: Codec):
    """(container, stream): an mp4 at `path` with one video stream of `codec` and `size` (pixels), written
    with `+faststart`; FacetrackError if not, naming the file `name`."""
    what = f"{codec.label.split(':')[0]} ({codec.encoder}) video writer"
    try:
        container = av.open(str(path), mode="w", format="mp4", options=dict(MUXER_OPTIONS))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise FacetrackError(f"{name}: cannot open an {what} ({os_reason(exc)})") from None
    try:
        stream = open_video_stream(container, codec, size, fps)
    except (av.FFmpegError, OSError, ValueError) as exc:
        container.close()
        with contextlib.suppress(OSError):
            path.unlink()
        raise FacetrackError(f"{name}: cannot open an {what} at {size[0]}x{size[1]} ({os_reason(exc)})") from None
    return container, stream


STDOUT = "-"  # the output path that means standard output (`--json -`, `--csv -`)


def is_stdout(path: str | Path | None) -> bool:
    """True when an output path is `-`: standard output, not a file."""
    return path is not None and str(path) == STDOUT


def shown_output(path: str | Path) -> str:
    """An output's name for a message: `standard output` for `-`, else the path as `ls -b` shows it."""
    return "standard output" if is_stdout(path) else shown(path)


class LineWriter:
    """Text lines into a claimed output file, or onto standard output for the path `-`.

    A file is written as `.NAME.part` and renamed to `path` by `close()` (`tracker.outfile`): `output` is
    the run's claim on `path`, made here when not given (InputError when another run holds it; `option`
    names it in messages). Standard output is flushed per line and never closed. `write` raises
    FacetrackError when a line cannot be written (disk full, a closed pipe).
    """

    def __init__(self, path: str | Path, output: OutputFile | None = None, option: str = "--json") -> None:
        self.path = Path(path)
        self.to_stdout = is_stdout(path)
        self.rows = 0
        if self.to_stdout:
            self._output, self._file = None, sys.stdout
            return
        self._output = output if output is not None else OutputFile(self.path, option)
        try:
            self._file = open(self._output.part, "w", encoding="utf-8", errors="surrogateescape", newline="")
        except OSError as exc:
            self._output.discard()
            raise FacetrackError(f"{shown(self.path)}: cannot write ({exc.strerror})") from None

    def write_text(self, text: str) -> None:
        """Write and flush `text` (one or more whole lines, in one write call)."""
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            if self.to_stdout and isinstance(exc, BrokenPipeError):
                _quiet_stdout()
            raise FacetrackError(f"{shown_output(self.path)}: cannot write ({exc.strerror or exc}); {self.rows} "
                                 "rows written") from None

    def close(self) -> None:
        """Close the file and rename it into place (signals wait until it is done); standard output is
        only flushed."""
        if self.to_stdout:
            with contextlib.suppress(OSError, ValueError):
                self._file.flush()
            return
        if not self._file.closed:
            with deferred_signals():
                try:
                    self._file.close()
                except OSError:
                    pass
                self._output.commit()

    def __enter__(self) -> "LineWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quiet_stdout() -> None:
    """After a broken pipe on standard output (`| head`): point it at /dev/null, so that the
    interpreter's flush at exit does not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class JsonlSink(LineWriter):
    """JSON lines, one object per frame or image, flushed per row so an interrupted run keeps its rows;
    into a claimed file (`LineWriter`), or onto standard output for the path `-`."""

    def __init__(self, path: str | Path, output: OutputFile | None = None) -> None:
        super().__init__(path, output, "--json")

    def write(self, row: dict) -> None:
        """Write and flush one row (one write call: a row is in the file whole or not at all)."""
        self.write_text(json.dumps(row, separators=(",", ":")) + "\n")
        self.rows += 1


def plan_image_outputs(names: list[str], out_dir: Path, base: str | Path | None = None) -> dict[str, Path]:
    """The annotated copy's path in `out_dir` for each input image (checked before any work).

    With `base` (a folder above every input: `tracker.inputs.common_base`), each copy keeps its path
    relative to `base` (`a/x.jpg` and `b/x.jpg` stay apart); without it, the file name alone. Clashes
    left (case-insensitively, or the same file given twice) become `name_1.png`, `name_2.png`, ...;
    `.png` for a format OpenCV cannot write (WRITABLE_SUFFIXES). InputError when `out_dir` is a file, its
    parent folder is missing, or a copy would overwrite its own input.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out-dir {out_dir}: is a file, not a folder")
    if not out_dir.exists() and not out_dir.parent.is_dir():
        raise InputError(f"--out-dir {out_dir}: folder {out_dir.parent} does not exist")
    targets: dict[str, Path] = {}
    used: set[str] = set()
    for name in names:
        src = Path(name)
        folder = Path(os.path.relpath(os.path.abspath(name), os.path.abspath(base))).parent if base else Path()
        suffix = src.suffix.lower() if src.suffix.lower() in WRITABLE_SUFFIXES else ".png"
        stem, candidate, n = src.stem, folder / (src.stem + suffix), 1
        while str(candidate).lower() in used:
            candidate, n = folder / f"{stem}_{n}{suffix}", n + 1
        used.add(str(candidate).lower())
        target = out_dir / candidate
        if target.exists() and src.exists() and os.path.samefile(target, src):
            raise InputError(f"--out-dir {out_dir}: would overwrite the input {name}")
        targets[name] = target
    return targets


class ImageSink:
    """Annotated copies of still images, one file per input at its planned path (`plan_image_outputs`),
    subfolders made as needed; `out_dir` is marked as facetrack's output (`tracker.outdirs.mark_output_folder`)
    so that a later run over a folder holding it does not take the copies as inputs.

    Each image is encoded in memory, written to a hidden temporary file beside its target and renamed
    into place with signals held back: a copy is in the folder whole or not at all.
    """

    def __init__(self, out_dir: str | Path, targets: dict[str, Path]) -> None:
        from tracker.outdirs import mark_output_folder

        self.out_dir = Path(out_dir)
        self.targets = targets
        self.written = 0
        self.out_dir.mkdir(exist_ok=True)
        mark_output_folder(self.out_dir)

    def write(self, name: str, image: np.ndarray) -> None:
        """Write the copy of input `name` (uint8 HxWx3 BGR); FacetrackError when it cannot be encoded or written."""
        path = self.targets[name]
        ok, data = cv2.imencode(path.suffix, image)
        if not ok:
            raise FacetrackError(f"{path}: cannot encode the image")
        tmp = path.with_name(f".{path.name}.tmp")
        with deferred_signals():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                data.tofile(str(tmp))
                os.replace(tmp, path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise FacetrackError(f"{path}: cannot write ({exc.strerror})") from None
        self.written += 1

    def close(self) -> None:
        """Nothing to finish: every copy was complete when `write` returned."""

    def __enter__(self) -> "ImageSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WindowSink:
    """An OpenCV window; `show` returns False once the user pressed q or Esc (or closed it)."""

    def __init__(self, title: str = "facetrack") -> None:
        if not display_available():
            raise InputError("no display available for a window (DISPLAY / WAYLAND_DISPLAY unset)")
        self.title = title
        self._opened = False

    def show(self, image: np.ndarray) -> bool:
        """Show one frame; must run on the main thread."""
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), ESC):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        if self._opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._opened = False


def _r(v: float) -> float:
    return round(float(v), 2)


DETECTOR, TRACKED = "detector", "tracked"  # a row's "source"


def face_source(face) -> str:
    """Where a face's row comes from on this frame: DETECTOR when the detector found the face on this
    frame (`FaceResult.detection` is set; every face of a still image), TRACKED when it was followed from
    the previous frame's points without the detector seeing it here."""
    return DETECTOR if getattr(face, "detection", None) is not None else TRACKED


def frame_score(face) -> float | None:
    """The face's score on this frame, 0..1: the detector's score on a DETECTOR row, the landmark model's
    face quality on a TRACKED row; None on a TRACKED row of a landmark model without a quality output
    (nothing scored the face on that frame)."""
    if face_source(face) == DETECTOR:
        return float(face.detection.score)
    return None if face.quality is None else float(face.quality)


def _score(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def face_row(face, point_names: tuple[str, ...] = POINT_NAMES) -> dict:
    """One face of the "faces" list: id, "source" ("detector" or "tracked": `face_source`), box, "score"
    (this frame's: `frame_score`, null when nothing scored it), "last_detector_score" (the detector's score
    from the last frame it saw the face), "quality" (only when the landmark model gives one), points by
    name, "point_scores" by name (only when the landmark model gives them)."""
    points = np.asarray(face.points_px, dtype=np.float32).reshape(-1, 2)
    row: dict = {"id": int(face.id), "source": face_source(face), "box_xyxy": [_r(v) for v in face.box_xyxy],
                 "score": _score(frame_score(face)), "last_detector_score": _score(face.score)}
    if face.quality is not None:
        row["quality"] = round(float(face.quality), 4)
    row["points"] = {name: [_r(x), _r(y)] for name, (x, y) in zip(point_names, points)}
    scores = getattr(face, "point_scores", None)
    if scores is not None:
        row["point_scores"] = {name: round(float(v), 4) for name, v in zip(point_names, scores)}
    return row


def face_rows(result, point_names: tuple[str, ...] = POINT_NAMES) -> list[dict]:
    """The "faces" list of a FrameResult: one dict per face (`face_row`), oldest track first; [] when none."""
    return [face_row(face, point_names) for face in result.faces]


def result_row(result, point_names: tuple[str, ...] = POINT_NAMES) -> dict:
    """One JSON row: {"frame", "t_ms"} or {"image"}, then "width", "height", "faces"."""
    frame = result.frame
    if frame.name is not None:
        row: dict = {"image": frame.name}
    else:
        row = {"frame": frame.index, "t_ms": round(float(frame.t_ms), 3)}
    row["width"], row["height"] = frame.width, frame.height
    row["faces"] = face_rows(result, point_names)
    return row
