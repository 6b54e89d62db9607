#!/usr/bin/env bash
# Put trained runs into weights/: fp16 checkpoints, verified ONNX graphs, manifest.
# usage: scripts/ship_weights.sh DEFAULT_RUN NALBERT_RUN BOX_RUN [DROP_MODEL...]
#   env DETECTOR_RUN (a `facetrack train detector` run) and DETECTOR_MIN_SCORE (its threshold, chosen on
#   validation: `facetrack eval --what detector --split val` prints recall and false detections by threshold)
#   ship the multi-face detector as the default detector.
# The box model and the detector ship as fp32 ONNX graphs; the default landmark model (listed under its
# architecture's name, e.g. resnet-simcc) and Nalbert's net as fp16-weight graphs (float32 in and out), the
# default with an int8 graph too, which --precision auto runs on the CPU (the box model's int8 graph ships where
# auto runs it), so the repository stays under its 48 MiB budget (`facetrack export` rewrites fp32 graphs
# on demand). DROP_MODELs (earlier landmark models) are unlisted and their files deleted first.
# A RUN that is "-" is not shipped again (its model stays as it is). The default landmark model is calibrated
# after shipping (`python -m facetrack.calibrate`: per-point mean offsets on training faces, in its metadata).
set -euo pipefail
default=${1:-runs/default-final} nalbert=${2:-runs/nalbert-all} box=${3:-runs/box}
shift $(( $# < 3 ? $# : 3 ))
data=${FACETRACK_SHARED_DATA:-../shared/data}
if [ "$default" != - ]; then
  python -m training.ship "$default/best.pt" --weights weights --default ${1:+--drop "$@"}
  # each point's mean offset on training faces of the 68-point sets, subtracted at run time (facetrack/calibrate.py)
  shipped=$(python -c "import json; m = json.load(open('weights/manifest.json')); print(m['checkpoints'][m['default_landmarks']])")
  python -m facetrack.calibrate "weights/$shipped"
fi
[ "$nalbert" != - ] && python -m training.ship "$nalbert/best.pt" --weights weights
[ "$box" != - ] && [ -f "$box/best.pt" ] && python -m training.ship "$box/best.pt" --weights weights
if [ -n "${DETECTOR_RUN:-}" ]; then
  python -m training.ship "$DETECTOR_RUN/best.pt" --weights weights --default --min-score "${DETECTOR_MIN_SCORE:?}"
fi
# int8 (convolutions only) calibrated on dlib's faces, which no split holds; kept where --precision auto runs it
facetrack export --format onnx --weights weights --fp16 --int8 --calib "$data/dlib-faces" --data "$data/ytf-keypoints"
# the default landmark model and Nalbert's net ship fp16 graphs (beside the default's int8 one), the face finders fp32
default_name=$(python -c "import json; print(json.load(open('weights/manifest.json'))['default_landmarks'])")
python -m training.ship --weights weights --fp16-only nalbert "$default_name"
du -ch weights/* | tail -1
