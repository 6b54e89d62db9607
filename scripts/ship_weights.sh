#!/usr/bin/env bash
# Put trained runs into weights/: fp16 checkpoints, verified ONNX graphs, manifest.
# usage: scripts/ship_weights.sh DEFAULT_RUN NALBERT_RUN BOX_RUN [DROP_MODEL...]
# The default landmark model (listed under its architecture's name, e.g. resnet-simcc) and the box model
# ship as fp32 ONNX; Nalbert's net ships as an fp16-weight ONNX graph (float32 in and out) so the
# repository stays under its 48 MiB budget (`facetrack export` rewrites an fp32 one from its checkpoint on
# demand). DROP_MODELs (earlier landmark models) are unlisted and their files deleted first.
set -euo pipefail
default=${1:-runs/default-final} nalbert=${2:-runs/nalbert-all} box=${3:-runs/box}
shift $(( $# < 3 ? $# : 3 ))
data=${FACETRACK_SHARED_DATA:-../shared/data}
python -m training.ship "$default/best.pt" --weights weights --default ${1:+--drop "$@"}
python -m training.ship "$nalbert/best.pt" --weights weights
[ -f "$box/best.pt" ] && python -m training.ship "$box/best.pt" --weights weights
facetrack export --format onnx --weights weights --fp16 --data "$data/ytf-keypoints"
python -m training.ship --weights weights --fp16-only nalbert  # the fp32 graphs serve the default and box
du -ch weights/* | tail -1
