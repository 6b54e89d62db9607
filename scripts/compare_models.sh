#!/usr/bin/env bash
# Equal-budget comparison of the landmark models (docs/experiments.md): same identity split (seed 0),
# same 128 px input, same minutes each on one CPU thread. Usage: scripts/compare_models.sh [MINUTES] [OUTDIR]
set -euo pipefail
minutes=${1:-8}
out=${2:-runs/compare}
data=${FACETRACK_SHARED_DATA:-../shared/data}
run() {  # name model loss
  facetrack train landmarks --data "$data/ytf-keypoints" --data "$data/300w-helen-train" \
    --model "$2" --loss "$3" --epochs 100 --time-budget "$minutes" --threads 1 --out "$out/$1" --resume
}
run resnet-mse resnet mse
run resnet-wing resnet wing
run nalbert-mse nalbert mse
run net-mse net mse
run landmark-bbox-mse landmark-bbox mse
facetrack plot "$out"/* --out "$out/curves.png"
