"""Copy a run's best checkpoint into the weights folder, compactly (fp16 tensors, no optimizer state)."""

from __future__ import annotations

from pathlib import Path

import torch

from core.manifest import read_manifest, write_manifest
from core.models import model_kind, read_checkpoint, save_checkpoint

KEEP = ("format", "model", "config", "meta", "epoch", "metrics", "train_config", "elapsed_s")


def ship_checkpoint(src: str | Path, weights_dir: str | Path, default: bool = False) -> Path:
    """Write `<kind>-<model>.pt` (box: `box.pt`) in fp16 and list it in the manifest."""
    ckpt = read_checkpoint(src)
    name = ckpt["model"]
    slim = {k: ckpt[k] for k in KEEP if k in ckpt}
    slim["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    folder = Path(weights_dir)
    folder.mkdir(parents=True, exist_ok=True)
    filename = "box.pt" if model_kind(name) == "box" else f"landmarks-{name}.pt"
    save_checkpoint(folder / filename, slim)
    try:
        manifest = read_manifest(folder)
    except Exception:
        manifest = {"checkpoints": {}, "onnx": {}}
    manifest["checkpoints"][name] = filename
    if default and model_kind(name) == "landmarks":
        manifest["default_landmarks"] = name
    write_manifest(folder, manifest)
    return folder / filename


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Ship a run's best.pt into weights/ (fp16, manifest updated).")
    parser.add_argument("checkpoint")
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--default", action="store_true", help="make it the default landmark model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(ship_checkpoint(args.checkpoint, args.weights, args.default))
