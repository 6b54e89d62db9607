"""MediaPipe FaceMesh doing `facetrack video`'s job: decode, track, draw, encode an mp4; one JSON line of timings.

Run by the peer virtual environment's Python (mediapipe 0.10.21, protobuf < 5, opencv), never by facetrack's:

    PEER_PYTHON -I mediapipe_job.py CLIP OUT.mp4 [--warmup N]

Decode with OpenCV, FaceMesh in tracking mode (`static_image_mode=False`, `max_num_faces=1`), draw the face's
box and four points (eye centres, nose tip, mouth centre), encode with OpenCV (mp4v, the clip's fps). Prints on
stdout one JSON object: `frames`, `faces` (frames with a face), `load_s` (building FaceMesh, seconds),
`run_s` (first read to the last frame written, seconds), `run_fps` (frames / run_s), `steady_fps` (frames
after the first `warmup`, per second of their own span), `cpu_s` (`time.process_time()`, the whole process,
seconds), `rusage_cpu_s` (getrusage user + sys, seconds), `run_cpu_s` (process CPU seconds of the run alone),
`versions`. Imports nothing from facetrack.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

# FaceMesh landmark indices: eye corners (outer, inner) of each eye, nose tip, inner lips (upper, lower).
RIGHT_EYE = (33, 133)
LEFT_EYE = (362, 263)
NOSE_TIP = 1
MOUTH = (13, 14)
BOX_COLOUR = (0, 255, 0)
POINT_COLOUR = (0, 0, 255)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _mean(points, indices) -> tuple[int, int]:
    xs = [points[i][0] for i in indices]
    ys = [points[i][1] for i in indices]
    return round(sum(xs) / len(xs)), round(sum(ys) / len(ys))


def draw_face(cv2, image, landmarks) -> None:
    """The box around all landmarks and the four points, in pixels of `image`."""
    height, width = image.shape[:2]
    points = [(p.x * width, p.y * height) for p in landmarks.landmark]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    cv2.rectangle(image, (round(min(xs)), round(min(ys))), (round(max(xs)), round(max(ys))), BOX_COLOUR, 2)
    for centre in (_mean(points, RIGHT_EYE), _mean(points, LEFT_EYE), _mean(points, (NOSE_TIP,)),
                   _mean(points, MOUTH)):
        cv2.circle(image, centre, 3, POINT_COLOUR, -1)


def run(clip: str, out: str, warmup: int) -> dict:
    """Track `clip` into `out`; the timings described in the module docstring."""
    import cv2
    import mediapipe as mp
    from mediapipe.python.solutions import face_mesh

    capture = cv2.VideoCapture(clip)
    if not capture.isOpened():
        raise SystemExit(f"mediapipe_job: cannot open {clip}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit(f"mediapipe_job: cannot write {out}")
    t_load = time.perf_counter()
    mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1)
    t0, cpu0 = time.perf_counter(), _cpu_s()
    ends: list[float] = []
    faces = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        result = mesh.process(rgb)
        if result.multi_face_landmarks:
            faces += 1
            draw_face(cv2, image, result.multi_face_landmarks[0])
        writer.write(image)
        ends.append(time.perf_counter())
    t1, cpu1 = time.perf_counter(), _cpu_s()  # as `facetrack video`'s summary: the last frame written
    writer.release()
    capture.release()
    mesh.close()
    frames = len(ends)
    steady = frames - warmup - 1
    steady_fps = steady / (ends[-1] - ends[warmup]) if steady > 0 and ends[-1] > ends[warmup] else None
    return {"frames": frames, "faces": faces, "load_s": round(t0 - t_load, 4), "run_s": round(t1 - t0, 4),
            "run_fps": round(frames / (t1 - t0), 3) if frames else 0.0,
            "steady_fps": round(steady_fps, 3) if steady_fps else None, "warmup": warmup,
            "cpu_s": round(time.process_time(), 4), "rusage_cpu_s": round(_cpu_s(), 4),
            "run_cpu_s": round(cpu1 - cpu0, 4),
            "versions": {"mediapipe": mp.__version__, "cv2": cv2.__version__,
                         "python": sys.version.split()[0]}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("out")
    parser.add_argument("--warmup", type=int, default=10, help="Frames left out of steady_fps (default 10).")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.clip, args.out, max(0, args.warmup))), flush=True)


if __name__ == "__main__":
    main()
