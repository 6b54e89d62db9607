#!/usr/bin/env bash
# Put trained runs into weights/: fp16 checkpoints, verified ONNX graphs, manifest.
# usage: scripts/ship_weights.sh DEFAULT_RUN NALBERT_RUN BOX_RUN [DROP_MODEL...]
#   env DETECTOR_RUN (a `facetrack train detector` run) and DETECTOR_MIN_SCORE (its threshold, chosen on
#   validation: `facetrack eval --what detector --split val` prints recall and false detections by threshold)
#   ship the multi-face detector as the default detector.
# The default landmark model (listed under its architecture's name, e.g. resnet-simcc), the box model and
# the detector ship as fp32 ONNX (with an int8 graph where it runs by default on the CPU: faster, within
# 0.1 NME points); Nalbert's net ships as an fp16-weight ONNX graph (float32 in and out) so
# the repository stays under its 48 MiB budget (`facetrack export` rewrites an fp32 one from its checkpoint
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
python -m training.ship --weights weights --fp16-only nalbert  # the fp32 (and int8) graphs serve the others
du -ch weights/* | tail -1
