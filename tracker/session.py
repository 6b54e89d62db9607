"""One command's run from options to summary, written once for `facetrack video`, `webcam` and `images`.

Each command turns its options into a frozen job (`VideoJob`, `WebcamJob`, `ImagesJob`) and calls
`run_job`, which goes through the same sequence for all three:

    check the outputs (InputError before any work) -> claim them (InputError when another run writes
    one: `tracker.outfile`) -> open the source (a bad input fails here)
    -> build the tracker (load the models) -> open the sinks with signals held back
    -> `tracker.runtime.run` -> the summary line, or Interrupted / the error with what was kept

What differs between the commands (which source, which sinks, which summary) is a method of the job.
Messages go through `log` (the CLI's `facetrack: ...` lines on stderr).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from core.errors import FacetrackError, InputError, Interrupted
from core.manifest import default_weights_dir
from core.pathnames import shown
from core.signals import deferred_signals
from tracker.backends import check_listed_precision, describe, open_models
from tracker.csv_rows import CsvSink
from tracker.inputs import common_base
from tracker.mp4_codec import check_choice
from tracker.outfile import OutputFile
from tracker.pipeline import DEFAULT_DETECT_EVERY, DEFAULT_MIN_QUALITY, Tracker, build_tracker
from tracker.runtime import RunStats, StepError, run
from tracker.sinks import (
    ImageSink,
    JsonlSink,
    VideoSink,
    WindowSink,
    check_output_path,
    check_writable_folder,
    is_stdout,
    plan_image_outputs,
    shown_output,
    window_problem,
)
from tracker.sources import DEFAULT_STALL_TIMEOUT_S, ImageSource, Source, is_url, open_camera
from tracker.sources.images import ImageList, list_images
from tracker.sources.synthetic import is_synthetic, open_video_spec, parse_synthetic
from tracker.sources.window import FrameWindow, check_window

Log = Callable[[str], None]

__all__ = ["ImagesJob", "ModelOptions", "VideoJob", "WebcamJob", "kept_outputs", "open_camera_input", "run_job"]


def _quiet(line: str) -> None:
    """A log that says nothing."""


def open_camera_input(camera: str, width: int | None = None, height: int | None = None,
                      fps: float | None = None, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S) -> Source:
    """`facetrack webcam`'s input: a synthetic spec (live), a stream URL, or a camera index or device path;
    `stall_timeout_s`: seconds without a frame before it counts as stopped."""
    text = str(camera).strip()
    if is_synthetic(text):
        source = parse_synthetic(text, live=True)
    else:
        source = open_camera(text, width, height, fps, stall_timeout_s)
    source.stall_timeout_s = stall_timeout_s
    return source


@dataclass(frozen=True)
class ModelOptions:
    """Which models to load and how the tracker uses them (the options the three commands share)."""

    weights: Path | None = None  # a weights folder, training run folder or checkpoint; None: the shipped weights
    backend: str = "onnx"
    device: str = "auto"
    landmark_model: str | None = None  # None: the manifest's default
    detect_every: int = DEFAULT_DETECT_EVERY
    min_presence: float | None = None  # None: the detector's own threshold (0.95 for the regressor)
    min_quality: float = DEFAULT_MIN_QUALITY  # landmark models with a quality output: less is no face
    flip_test: bool = False  # still images: average each face's last pass with its mirrored crop
    detector: str | None = None  # --detector: "centernet", "regressor"; None: the manifest's default
    max_faces: int | None = None  # --max-faces: None the mode's default (4 live, else no limit), 0 no limit
    precision: str = "auto"  # --precision: which ONNX graph of each model runs ("auto", "fp32", "fp16", "int8")
    threads: int | None = None  # model intra-op threads; None: `core.devices.default_threads()`

    def load(self, log: Log | None = None) -> tuple:
        """The (face detector, landmark) backends these options name (`tracker.backends.open_models`), to
        share among several trackers (`build(models=...)`). InputError / MetadataError as `build`."""
        return open_models(self.weights or default_weights_dir(), self.backend, self.device, self.landmark_model,
                           self.threads, log, detector=self.detector, precision=self.precision)

    def check(self) -> None:
        """What can be checked without loading a model (`tracker.backends.check_listed_precision`): for work
        that loads the models elsewhere (`video --jobs`, Ray). InputError when the weights cannot serve."""
        check_listed_precision(self.weights, self.backend, self.landmark_model, self.detector, self.precision)

    def build(self, *, mode: str, smooth: bool, log: Log, models: tuple | None = None) -> Tracker:
        """The tracker (InputError / MetadataError for missing or wrong weights, an unusable device);
        `models`: another tracker's `Tracker.models` to share instead of loading the weights again."""
        return build_tracker(self.weights or default_weights_dir(), backend=self.backend, device=self.device,
                             precision=self.precision,
                             landmark_model=self.landmark_model, detect_every=self.detect_every,
                             min_presence=self.min_presence, min_quality=self.min_quality, smooth=smooth,
                             mode=mode, log=log, flip_test=self.flip_test, detector=self.detector,
                             max_faces=self.max_faces, models=models, threads=self.threads)


def kept_outputs(exc: FacetrackError, outputs: list[str]) -> FacetrackError:
    """The run's error with what was kept appended: `...; kept 25 frames in out.mp4, out.jsonl`."""
    stats = getattr(exc, "stats", None)
    if stats is not None and outputs:
        exc.args = (f"{exc}; kept {stats.written} frames in {', '.join(outputs)}",)
    return exc


def _finalised(outputs: list[str]) -> str:
    return f"; outputs finalised: {', '.join(outputs)}" if outputs else ""


def _claimable(files: dict[str, tuple[Path | None, str]]) -> dict[str, tuple[Path, str]]:
    """The output files a run claims: those given, except standard output (`-`)."""
    return {key: (path, option) for key, (path, option) in files.items() if path is not None and not is_stdout(path)}


def check_row_outputs(json_path: Path | None, csv_path: Path | None, inputs: list[Path],
                      others: list[Path | None]) -> None:
    """`--json` and `--csv`: writable files that are no input and no other output, or `-` (standard
    output, for one of them only). InputError otherwise."""
    if is_stdout(json_path) and is_stdout(csv_path):
        raise InputError("--json - and --csv - both ask for standard output; send one of them to a file")
    given = [p for p in others if p is not None and not is_stdout(p)]
    for path, option in ((json_path, "--json"), (csv_path, "--csv")):
        if path is not None and not is_stdout(path):
            check_output_path(path, option, inputs, others=given)
            given.append(path)


class _FramesJob:
    """Video and webcam: frames into an mp4 and JSON lines; a summary of FPS, latency and stages."""

    announce = True  # say what the source is (every job says which models run)
    progress: str | None = None  # what the progress counts ('frame', 'image'; `core.progress`); None: none
    max_frames: int | None = None
    title = "facetrack"  # window title
    no_display = "not showing a window"  # said when a window was asked for but there is no display

    csv_path: Path | None = None  # one CSV row per face (`tracker.csv_rows`); `-`: standard output
    keep_audio = False  # copy the input's sound into the mp4 (VideoJob)

    def outputs(self, sinks: dict | None = None) -> list[str]:
        """The outputs' names for messages; with the opened `sinks`, the video's codec after its name."""
        video = (sinks or {}).get("video")
        out = None if self.out is None else shown_output(self.out)
        if out is not None and video is not None:
            out = f"{out} ({video.codec_label})"
        return [name for name in (out, *(shown_output(p) for p in (self.json_path, self.csv_path) if p is not None))
                if name is not None]

    def audio_input(self) -> str | None:
        """The file whose sound goes into the mp4 (--keep-audio), or None."""
        return None

    def notes(self, sinks: dict) -> list[str]:
        """What the sinks could not do as asked (--keep-audio), one line each."""
        video = sinks.get("video")
        return list(video.notes) if video is not None else []

    def output_files(self) -> dict[str, tuple[Path, str]]:
        """The files the sinks write, claimed before the run: {sink: (path, option)} (not standard output)."""
        return _claimable({"video": (self.out, "--out"), "jsonl": (self.json_path, "--json"),
                           "csv": (self.csv_path, "--csv")})

    def mode(self, source: Source) -> str:
        return "live" if source.live else "video"

    def smoothing(self, source: Source) -> bool:
        return source.live if self.smooth is None else self.smooth

    def open_sinks(self, source: Source, stack: contextlib.ExitStack, claims: dict[str, OutputFile],
                   point_names: tuple[str, ...] | None = None) -> dict:
        video = jsonl = csv = None
        if self.out is not None:
            video = stack.enter_context(VideoSink(self.out, source.fps, source.width, source.height,
                                                  output=claims.get("video"), codec=self.codec,
                                                  audio_from=self.audio_input()))
        if self.json_path is not None:
            jsonl = stack.enter_context(JsonlSink(self.json_path, output=claims.get("jsonl")))
        if self.csv_path is not None:
            names = {} if point_names is None else {"point_names": point_names}
            csv = stack.enter_context(CsvSink(self.csv_path, output=claims.get("csv"), **names))
        return {"video": video, "jsonl": jsonl, "csv": csv}

    def say_how_to_stop(self, window: bool, log: Log) -> None:
        """Files end by themselves: nothing to say."""

    def failed(self, exc: FacetrackError, outputs: list[str]) -> FacetrackError:
        return kept_outputs(exc, outputs)

    def report(self, stats: RunStats, source: Source, outputs: list[str], log: Log,
               wrote: list[str] | None = None) -> None:
        """The summary, then `wrote ...` naming `wrote` (the outputs with the video's codec), else `outputs`."""
        log(stats.summary())
        if stats.interrupted:
            raise Interrupted(f"interrupted after {stats.written} frames{_finalised(outputs)}")
        if outputs:
            log(f"wrote {' and '.join(wrote or outputs)}")


@dataclass(frozen=True)
class VideoJob(_FramesJob):
    """`facetrack video`: every frame of a file (or URL, or synthetic spec) in order into an .mp4."""

    source: str  # video file, stream URL or synthetic spec
    out: Path | None = None  # annotated .mp4: the input's size and fps, one frame per input frame
    json_path: Path | None = None  # `-`: standard output
    models: ModelOptions = field(default_factory=ModelOptions)
    show: bool = False
    smooth: bool | None = None  # None: on for a live stream, off for files
    draw: bool = True
    threaded: bool = True
    csv_path: Path | None = None  # `-`: standard output
    start_s: float | None = None  # the first frame shown at or after this presentation time, s
    end_s: float | None = None  # stop before the first frame shown at or after this time, s
    stride: int = 1  # every stride-th frame of [start_s, end_s)
    max_frames: int | None = None  # at most this many frames
    codec: str = "auto"  # --codec of the mp4: auto, h264, mp4v (`tracker.mp4_codec`)
    keep_audio: bool = False  # copy the input's sound into the mp4, cut to the frames kept

    title = "facetrack video"
    progress = "frame"

    def audio_input(self) -> str | None:
        if not self.keep_audio or is_url(self.source) or is_synthetic(self.source):
            return None
        return self.source

    def notes(self, sinks: dict) -> list[str]:
        if self.keep_audio and sinks.get("video") is None:
            return ["--keep-audio: no --out video to keep the sound in"]
        if self.keep_audio and self.audio_input() is None:
            return [f"--keep-audio: {shown(self.source)} is not a file; the video is written without sound"]
        return super().notes(sinks)

    def check_outputs(self) -> None:
        check_window(self.start_s, self.end_s, self.stride, self.max_frames)
        check_choice(self.codec)
        if self.out is None and self.json_path is None and self.csv_path is None:
            raise InputError("no output: give --out, --json, --csv or --out-dir (or none of them for the "
                             "default run folder)")
        inputs = [] if is_url(self.source) or is_synthetic(self.source) else [Path(self.source)]
        if self.out is not None:
            check_output_path(self.out, "--out", inputs, suffixes=(".mp4",))
        check_row_outputs(self.json_path, self.csv_path, inputs, [self.out])

    def open_source(self) -> Source:
        source = open_video_spec(self.source)
        if self.start_s is None and self.end_s is None and self.stride == 1 and self.max_frames is None:
            return source
        return FrameWindow(source, self.start_s, self.end_s, self.stride, self.max_frames)


@dataclass(frozen=True)
class WebcamJob(_FramesJob):
    """`facetrack webcam`: a live camera, newest frame only; window, optional recording and JSON."""

    camera: str = "0"  # index, device path, stream URL or synthetic spec
    width: int | None = None  # asked of the camera
    height: int | None = None
    fps: float | None = None
    out: Path | None = None
    json_path: Path | None = None
    models: ModelOptions = field(default_factory=ModelOptions)
    show: bool = True
    smooth: bool | None = True
    draw: bool = True
    threaded: bool = True
    max_frames: int | None = None  # stop after this many processed frames
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S  # seconds without a frame before the camera counts as gone
    codec: str = "auto"  # --codec of the recording: auto, h264, mp4v (`tracker.mp4_codec`)

    title = "facetrack webcam"
    no_display = "running without a window (--no-show implied)"

    def check_outputs(self) -> None:
        check_choice(self.codec)
        camera = Path(str(self.camera).strip())
        inputs = [camera] if camera.is_file() else []  # a video file given as --camera
        if self.out is not None:
            check_output_path(self.out, "--out", inputs, suffixes=(".mp4",))
        check_row_outputs(self.json_path, None, inputs, [self.out])

    def open_source(self) -> Source:
        return open_camera_input(self.camera, self.width, self.height, self.fps, self.stall_timeout_s)

    def say_how_to_stop(self, window: bool, log: Log) -> None:
        log("press q or Esc in the window to stop" if window else "press Ctrl+C to stop")


@dataclass(frozen=True)
class ImagesJob:
    """`facetrack images`: each still image on its own (detector every time), JSON rows and annotated copies."""

    paths: tuple[str, ...]  # image files and folders (searched recursively)
    out_dir: Path | None = None  # annotated copies, at their paths relative to the inputs' common folder
    json_path: Path | None = None  # `-`: standard output
    models: ModelOptions = field(default_factory=ModelOptions)
    draw: bool = True
    csv_path: Path | None = None  # `-`: standard output

    announce = False
    progress = "image"
    show = False
    threaded = False  # one image at a time, in order
    max_frames = None
    title = no_display = ""

    @cached_property
    def listing(self) -> ImageList:
        """The image files and the skipped files of PATH..., by one rule (`tracker.sources.images`);
        InputError when a path is missing or there is no file at all."""
        listing = list_images(list(self.paths))
        if not listing.images and not listing.skipped:
            raise InputError(f"no image files in {', '.join(self.paths)}")
        return listing

    @cached_property
    def names(self) -> list[str]:
        """The image files, as given or found in the folders."""
        return self.listing.images

    @cached_property
    def targets(self) -> dict[str, Path]:
        """Where each image's annotated copy goes (`tracker.sinks.plan_image_outputs`): its path relative to
        the folder above every input (`tracker.inputs.common_base`), under `out_dir`."""
        if self.out_dir is None:
            return {}
        return plan_image_outputs(self.names, self.out_dir, common_base(list(self.paths)))

    def outputs(self, sinks: dict | None = None) -> list[str]:
        return [shown_output(p) for p in (self.json_path, self.csv_path, self.out_dir) if p is not None]

    def notes(self, sinks: dict) -> list[str]:
        return []

    def output_files(self) -> dict[str, tuple[Path, str]]:
        """The JSON lines and CSV rows, claimed before the run (annotated copies are each renamed into place)."""
        return _claimable({"jsonl": (self.json_path, "--json"), "csv": (self.csv_path, "--csv")})

    def check_outputs(self) -> None:
        out_dir, names, targets = self.out_dir, self.names, self.targets
        if out_dir is not None:
            check_writable_folder(out_dir if out_dir.is_dir() else out_dir.parent, f"--out-dir {out_dir}")
        check_row_outputs(self.json_path, self.csv_path, [Path(n) for n in names], [])
        copies = {str(t.resolve()).lower() for t in targets.values()}
        for path, option in ((self.json_path, "--json"), (self.csv_path, "--csv")):
            if path is not None and not is_stdout(path) and str(path.resolve()).lower() in copies:
                raise InputError(f"{option} {path}: is also an annotated image in --out-dir")

    def open_source(self) -> Source:
        return ImageSource(self.listing)

    def mode(self, source: Source) -> str:
        return "image"

    def smoothing(self, source: Source) -> bool:
        return False

    def open_sinks(self, source: Source, stack: contextlib.ExitStack, claims: dict[str, OutputFile],
                   point_names: tuple[str, ...] | None = None) -> dict:
        images = stack.enter_context(ImageSink(self.out_dir, self.targets)) if self.out_dir is not None else None
        jsonl = csv = None
        if self.json_path is not None:
            jsonl = stack.enter_context(JsonlSink(self.json_path, output=claims.get("jsonl")))
        if self.csv_path is not None:
            names = {} if point_names is None else {"point_names": point_names}
            csv = stack.enter_context(CsvSink(self.csv_path, images=True, output=claims.get("csv"), **names))
        return {"images": images, "jsonl": jsonl, "csv": csv}

    def say_how_to_stop(self, window: bool, log: Log) -> None:
        """A folder of images ends by itself: nothing to say."""

    def failed(self, exc: FacetrackError, outputs: list[str]) -> FacetrackError:
        if isinstance(exc, StepError):  # name the image the models failed on
            cause = exc.__cause__
            return FacetrackError(f"{exc.frame.name}: tracking failed ({type(cause).__name__}: {cause}); "
                                  f"{exc.stats.processed} images done before it")
        return exc

    def report(self, stats: RunStats, source: ImageSource, outputs: list[str], log: Log,
               wrote: list[str] | None = None) -> None:
        if stats.interrupted:
            raise Interrupted(f"interrupted after {stats.written} images, {stats.with_face} with a face"
                              f"{_finalised(outputs)}")
        skipped = f", {source.skip_summary(' skipped')}" if source.skipped else ""
        faces = f" ({stats.faces} faces)" if stats.faces > stats.with_face else ""
        log(f"{stats.processed} images, {stats.with_face} with a face{faces}{skipped}")
        if source.animated:
            log(source.animated_note())


Job = VideoJob | WebcamJob | ImagesJob


def run_job(job: Job, log: Log = _quiet, *, models: tuple | None = None,
            on_result: Callable | None = None) -> RunStats:
    """Run one command's job from the output checks to its summary line; returns the run's stats.

    `models`: loaded (face detector, landmark) backends to use instead of loading `job.models` again (a
    worker of `tracker.pool` loads them once); `on_result(result, stats)`: called for each frame instead
    of drawing the job's own progress (a pool worker counts frames for the overall display).

    Raises InputError (exit 2) for bad options, inputs or outputs (also an output another run is
    writing), before any model is loaded where it can; Interrupted (exit 130) after Ctrl+C / SIGTERM,
    once the outputs are finalised; any other FacetrackError (exit 1) for a failure mid-run, naming what
    was kept. Sources and sinks are closed on every path.
    """
    job.check_outputs()
    show = job.show
    problem = window_problem() if show else None  # before any output is opened: a failed window aborts
    if problem is not None:
        log(f"{problem}: {job.no_display}")
        show = False
    outputs = job.outputs()
    with contextlib.ExitStack() as stack:
        # released last, once the sinks renamed their files into place
        claims = {key: stack.enter_context(OutputFile(path, option))
                  for key, (path, option) in job.output_files().items()}
        source = job.open_source()
        stack.callback(source.close)
        if job.announce:
            log(source.describe())
        tracker = job.models.build(mode=job.mode(source), smooth=job.smoothing(source), log=log, models=models)
        limit = "no limit" if tracker.max_faces is None else f"at most {tracker.max_faces}"
        models_line = (f"models: detector {tracker.detector.name} {describe(tracker.box_backend)}, landmarks "
                       f"{tracker.landmark_backend.meta.model} {describe(tracker.landmark_backend)}; faces: {limit}")
        log(models_line)
        with deferred_signals():  # each output is registered for closing before an interrupt can land
            sinks = job.open_sinks(source, stack, claims, tracker.point_names)
        wrote = job.outputs(sinks)  # the video's codec named, for the "wrote" line
        for note in job.notes(sinks):
            log(f"warning: {note}")
        window = None
        if show:
            window = WindowSink(job.title)
            stack.callback(window.close)
        job.say_how_to_stop(show, log)
        if on_result is None and job.progress:
            on_result = _progress(job.progress, source.frame_count, stack)
        try:
            stats = run(source, tracker, window=window, draw=job.draw, threaded=job.threaded,
                        max_frames=job.max_frames, on_result=on_result, **sinks)
        except FacetrackError as exc:
            raise job.failed(exc, outputs) from None
    stats.models = models_line
    job.report(stats, source, outputs, log, wrote)
    return stats


def _progress(unit: str, total: int | None, stack: contextlib.ExitStack):
    """The runtime's `on_result` feeding a `core.progress.Progress` of `unit`s ('frame': with the latency):
    a bar on a terminal, a plain line every 30 s in a log; closed with `stack`."""
    from core.progress import Progress, plural

    progress = Progress(plural(unit), total, unit, leave=unit == "frame")
    stack.callback(progress.close)

    def update(result, stats) -> None:
        if unit == "frame" and stats.processed % 15 == 0:
            progress.note(f"latency {stats.latency_ms(50):.0f} ms")
        progress.update(1)

    return update
