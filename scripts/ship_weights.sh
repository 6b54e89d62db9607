#!/usr/bin/env bash
# Put trained runs into weights/: fp16 checkpoints, verified ONNX graphs, manifest.
# usage: scripts/ship_weights.sh RESNET_RUN NALBERT_RUN BOX_RUN
# The default landmark model (resnet) and the box model ship as fp32 ONNX; Nalbert's net ships as an
# fp16-weight ONNX graph (float32 in and out) so the repository stays under its 48 MiB budget
# (`facetrack export` rewrites an fp32 one from its checkpoint on demand).
set -euo pipefail
resnet=${1:-runs/resnet-final} nalbert=${2:-runs/nalbert-final} box=${3:-runs/box}
data=${FACETRACK_SHARED_DATA:-../shared/data}
python -m training.ship "$resnet/best.pt" --weights weights --default
python -m training.ship "$nalbert/best.pt" --weights weights
python -m training.ship "$box/best.pt" --weights weights
facetrack export --format onnx --weights weights --fp16 --data "$data/ytf-keypoints"
python -m training.ship --weights weights --fp16-only nalbert  # the fp32 graphs serve resnet and box
du -ch weights/* | tail -1
