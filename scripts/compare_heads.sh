#!/usr/bin/env bash
# Equal-budget comparison of landmark heads and input sizes (docs/experiments.md, issue 11): every run
# starts from the same trained backbone (BACKBONE, default runs/resnet-all/best.pt: its tensors whose name
# and shape fit), trains on all four sets with the face-quality output, the same identity split (seed 0),
# the same peak lr and the same minutes on one CPU thread; two runs at a time on a 2-core machine.
# Usage: scripts/compare_heads.sh [MINUTES] [OUTDIR]
set -euo pipefail
minutes=${1:-20}
out=${2:-runs/heads}
data=${FACETRACK_SHARED_DATA:-../shared/data}
backbone=${BACKBONE:-runs/resnet-all/best.pt}
ft=${FACETRACK:-facetrack}
run() {  # name model input_size
  mkdir -p "$out/$1"
  $ft train landmarks --data "$data/ytf-keypoints" --data "$data/300w-helen-train" --data "$data/mtfl" \
    --data "$data/caltech-webfaces" --model "$2" --input-size "$3" --quality --lr 5e-4 --epochs 100 \
    --time-budget "$minutes" --threads 1 --init-from "$backbone" --out "$out/$1" --resume > "$out/$1.log" 2>&1
}
run resnet-128 resnet 128 & run simcc-128 resnet-simcc 128 & wait
run simcc-96 resnet-simcc 96 & run simcc-160 resnet-simcc 160 & wait
$ft plot "$out"/resnet-128 "$out"/simcc-* --out "$out/curves.png"
