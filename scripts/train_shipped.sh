#!/usr/bin/env bash
# The training runs behind the shipped landmark models of issue 11 (weights/README.md), on all four sets
# with the identity split of seed 0. Run after scripts/compare_heads.sh: the default starts from the
# comparison's winner (WINNER, default runs/heads/simcc-128; every tensor that fits, so a SimCC winner's
# pooled quality head gives way to the point-token one) for a longer budget, into runs/default-final.
# Nalbert's net is trained twice, side by
# side: at its best settings here (warm start from the previous shipped Nalbert, face-quality output,
# the modern recipe) and at the course project's settings (--recipe course: Adam at a constant lr, MSE,
# no augmentation, from scratch), both niced so the default's run keeps a core of its own.
# Usage: scripts/train_shipped.sh [DEFAULT_MINUTES] [NALBERT_MINUTES]
set -euo pipefail
minutes=${1:-80}
nalbert_minutes=${2:-55}
data=${FACETRACK_SHARED_DATA:-../shared/data}
winner=${WINNER:-runs/heads/simcc-128}
ft=${FACETRACK:-facetrack}
sets=(--data "$data/ytf-keypoints" --data "$data/300w-helen-train" --data "$data/mtfl" --data "$data/caltech-webfaces")
model=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(c['model'], c['input_size'])" \
        "$winner/config.json")
read -r arch size <<< "$model"
mkdir -p runs
$ft train landmarks "${sets[@]}" --model "$arch" --input-size "$size" --quality --lr 5e-4 --epochs 100 \
    --time-budget "$minutes" --threads 1 --init-from "$winner/best.pt" --out runs/default-final --resume \
    > runs/default-final.log 2>&1 &
# the Nalbert shipped before issue 11 (YouTube-Faces + HELEN): `git show a505be7:weights/landmarks-nalbert.pt`
nalbert_start=${NALBERT_START:-weights/landmarks-nalbert.pt}
nice -n 5 $ft train landmarks "${sets[@]}" --model nalbert --quality --lr 5e-4 --epochs 100 \
    --time-budget "$nalbert_minutes" --threads 1 --init-from "$nalbert_start" \
    --out runs/nalbert-all --resume > runs/nalbert-all.log 2>&1 &
nice -n 5 $ft train landmarks "${sets[@]}" --model nalbert --recipe course --loss mse --lr 1e-3 --epochs 50 \
    --time-budget "$nalbert_minutes" --threads 1 --out runs/nalbert-course --resume > runs/nalbert-course.log 2>&1 &
wait
