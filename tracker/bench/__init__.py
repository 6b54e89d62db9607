"""`facetrack bench`: honest frames-per-second figures for every backend, device and pipeline stage.

`suite` runs the measurements (models alone, stages, end-to-end runs of the real runtime, live
latency), `measure` holds the timers, `system` the machine header and memory, `report` the table and
the side-by-side comparison of two JSON reports, `synthetic` the drawn moving face that needs no file
(also the tests' source, and what `synthetic?...` specs open in `facetrack video` and `webcam`).
The many-faces scenario lives in `faces` (its clips tiled from the source by `composed`), the detector
against the regressor in `detectors`. `versus` runs `facetrack video` against a peer tracker's job (`--vs`,
the peer's script in `peers/`, run by the peer's own Python).
"""

from __future__ import annotations

from tracker.bench.measure import STAGE_NAMES, TimedSink, TimedSource
from tracker.bench.report import compare_reports, format_report, load_report
from tracker.bench.suite import SCHEMA, BenchConfig, default_source, open_bench_source, run_bench, source_spec

__all__ = ["STAGE_NAMES", "SCHEMA", "BenchConfig", "TimedSink", "TimedSource", "compare_reports", "default_source",
           "format_report", "load_report", "open_bench_source", "run_bench", "source_spec"]
