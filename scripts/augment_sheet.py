"""A contact sheet of augmented landmark training crops with their target points, to look at what the model
is trained on (occluders, low light, colour casts, roll, mirror, negatives: `training.augment`).

    python scripts/augment_sheet.py ../shared/data/300w-helen-train sheet.png [--faces 48] [--boost]

`--boost` raises the occluder and low-light shares to 30 % each so that one sheet shows them all.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from core.meta import IMAGENET_MEAN, IMAGENET_STD
from training import augment
from training.batches import landmark_batch
from training.data import load_dataset
from training.tasks import LandmarkTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--faces", type=int, default=48)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--boost", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    samples = load_dataset(args.data).samples[:args.faces]
    cache = LandmarkTask(args.size, quality=True).build_cache(samples, 2, train=True)
    if args.boost:
        augment.LOW_LIGHT_RATE = 0.3
        augment.face_occluders.__defaults__ = ((0.3, 0.3, 0.3),)
    rng, gen = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
    n = len(samples)
    batch = landmark_batch(cache, np.arange(n), args.size, rng, gen, True, torch.device("cpu"), 0.1)
    x = batch["x"] * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    images = (x.clamp(0, 1).permute(0, 2, 3, 1).numpy()[..., ::-1] * 255).astype(np.uint8)
    points = batch["points"].reshape(n, -1, 2).numpy() * args.size
    tiles = []
    for image, pts, face in zip(images, points, batch["face"].tolist()):
        tile = cv2.resize(image, (2 * args.size, 2 * args.size), interpolation=cv2.INTER_NEAREST)
        for x_, y_ in pts if face > 0 else []:
            cv2.circle(tile, (int(2 * x_), int(2 * y_)), 3, (0, 255, 0), -1)
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 8)
    sheet = np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)])
    cv2.imwrite(args.out, sheet)
    print(f"wrote {args.out}: {n} crops (green: target points; crops without points hold no face)")


if __name__ == "__main__":
    main()
