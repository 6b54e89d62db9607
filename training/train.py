"""Training: `train(cfg)` runs epochs of `train_one_epoch` and `evaluate`, logging and checkpointing.

Works for the landmark nets (face crops) and the box regressor (whole frames). Runs the same code
under `torchrun` with DistributedDataParallel (each rank takes its share of every epoch).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.errors import InputError, Interrupted
from core.metrics import box_metrics, nme_per_face
from core.models import (
    LANDMARK_MODELS,
    build_model,
    count_parameters,
    init_points_bias,
    make_checkpoint,
    make_config,
    model_kind,
    read_checkpoint,
    save_checkpoint,
)
from training.batches import box_batch, landmark_batch
from training.data import load_dataset
from training.data.cache import build_frame_cache, build_landmark_cache
from training.data.splits import split_by_identity
from training.losses import POINT_LOSSES, box_loss, point_loss

BOX_CACHE_PER_INPUT = 1.5  # frame cache side per box-model input side


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in the run folder and in checkpoints)."""

    task: str = "landmarks"  # landmarks | box
    model: str = "resnet"
    data: tuple[str, ...] = ()
    format: str | None = None
    single_face_only: bool = False
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    workers: int = 2
    input_size: int = 128
    device: str = "auto"
    seed: int = 0
    out: str = "runs/exp"
    resume: bool = False
    loss: str = "mse"
    time_budget_min: float = 0.0  # stop (and anneal the lr) within this many minutes; 0 = epochs only
    dry_run: bool = False  # one batch of training and evaluation, for tests
    max_samples: int = 0  # use at most this many faces per split (0 = all); for quick runs
    threads: int = 0  # torch intra-op threads (0 = torch's default)
    model_options: dict = field(default_factory=dict)


def get_lr(base_lr: float, progress: float, warmup: float = 0.03, floor: float = 0.02) -> float:
    """Linear warm-up, then cosine decay to floor x base_lr; progress in 0..1."""
    if progress < warmup:
        return base_lr * (0.1 + 0.9 * progress / warmup)
    t = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    return base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when usable, else cpu; cuda without a GPU is an InputError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but no usable CUDA GPU was found; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    epoch_seed: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size())


def prepare_data(cfg: TrainConfig, log=print):
    """Load the datasets, split by identity, cache train and val (test stays untouched)."""
    if not cfg.data:
        raise InputError("no --data given")
    samples = []
    for path in cfg.data:
        result = load_dataset(path, cfg.format, cfg.single_face_only)
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(result.skipped.items())) or "none"
        log(f"data {path}: {len(result.samples)} faces ({result.format}), skipped: {skipped}")
        samples += result.samples
    splits = split_by_identity(samples, cfg.seed)
    if cfg.max_samples:
        splits = {k: v[: cfg.max_samples] for k, v in splits.items()}
    if not splits["train"]:
        raise InputError("no training faces left after the split")
    if not splits["val"]:
        splits["val"] = splits["train"][: max(1, len(splits["train"]) // 10)]
    log(f"split by identity (seed {cfg.seed}): train {len(splits['train'])}, val {len(splits['val'])}, "
        f"test {len(splits['test'])} (held out)")
    t0 = time.time()
    if cfg.task == "landmarks":
        caches = {k: build_landmark_cache(splits[k], cfg.input_size, cfg.workers) for k in ("train", "val")}
    else:
        size = int(cfg.input_size * BOX_CACHE_PER_INPUT)
        caches = {k: build_frame_cache(splits[k], size, cfg.workers) for k in ("train", "val")}
    log(f"cached {len(caches['train'])} train / {len(caches['val'])} val items in {time.time() - t0:.1f}s")
    return caches


def mean_crop_points(cache, input_size: int) -> np.ndarray:
    """Mean crop-normalised points of un-augmented training crops."""
    from core.geometry import apply_affine, crop_matrix

    patch = cache.images.shape[1]
    m = crop_matrix(np.array([(patch - 1) / 2, (patch - 1) / 2]), cache.crop_side, input_size)
    return (apply_affine(cache.points.reshape(-1, 2), m).reshape(-1, 4, 2) / input_size).mean(axis=0)


def _make_batch(cfg, cache, idx, rng, gen, train, device):
    if cfg.task == "landmarks":
        return landmark_batch(cache, idx, cfg.input_size, rng, gen, train, device)
    return box_batch(cache, idx, cfg.input_size, rng, gen, train, device)


def _loss(cfg, model, batch):
    if cfg.task == "box":
        return box_loss(model(batch["x"]), batch["box"], batch["presence"]), None
    if getattr(model, "has_box_head", False):  # course models with a box head (not under DDP)
        pts, box = model.forward_all(batch["x"])
        loss = point_loss(cfg.loss, pts, batch["points"]) + torch.nn.functional.smooth_l1_loss(box, batch["box"])
    else:
        pts = model(batch["x"])
        loss = point_loss(cfg.loss, pts, batch["points"])
    return loss, pts


def train_one_epoch(cfg, model, cache, optimizer, rng, gen, device, dist: _Dist, lr_at, on_step=None) -> float:
    """One pass over this rank's share of the training cache; returns the mean loss."""
    model.train()
    # every rank shuffles with the same seed and takes its own share, with the same number of steps
    order = np.random.default_rng(int(rng.integers(1 << 31)) if dist.world == 1 else dist.epoch_seed
                                  ).permutation(len(cache))[dist.rank::dist.world]
    nb = max(1, len(cache) // (cfg.batch_size * dist.world)) if not cfg.dry_run else 1
    total, count = 0.0, 0
    bar = tqdm(range(nb), desc="train", leave=False, disable=not dist.main, mininterval=1.0, dynamic_ncols=True)
    for b in bar:
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        if len(idx) == 0:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at()
        batch = _make_batch(cfg, cache, idx, rng, gen, True, device)
        loss, _ = _loss(cfg, model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().item() * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.4f}")
        if on_step:
            on_step()
    bar.close()
    return total / max(count, 1)


@torch.no_grad()
def evaluate(cfg, model, cache, device, batch_size: int = 128) -> dict:
    """Validation loss plus NME % (landmarks) or IoU and presence accuracy (box), no augmentation."""
    core = model.module if hasattr(model, "module") else model
    core.eval()
    rng = np.random.default_rng(1234)  # fixed: the same negatives every epoch
    gen = torch.Generator().manual_seed(1234)
    n = len(cache) if not cfg.dry_run else min(len(cache), batch_size)
    losses, nmes, preds, targets, presence = [], [], [], [], []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        batch = _make_batch(cfg, cache, idx, rng, gen, False, device)
        loss, pts = _loss(cfg, core, batch)
        losses.append(float(loss) * len(idx))
        if cfg.task == "landmarks":
            nmes.append(nme_per_face(pts.cpu().numpy(), batch["points"].cpu().numpy()))
        else:
            preds.append(core(batch["x"]).cpu().numpy())
            targets.append(batch["box"].cpu().numpy())
            presence.append(batch["presence"].cpu().numpy())
    out = {"val_loss": sum(losses) / max(n, 1)}
    if cfg.task == "landmarks":
        nme = np.concatenate(nmes)
        out.update(val_nme=float(nme.mean()), val_failure=float((nme > 10).mean()))
    else:
        out.update(box_metrics(np.concatenate(preds), np.concatenate(targets), np.concatenate(presence)))
    return out


def _metric(task: str, row: dict) -> float:
    """Lower is better: NME for landmarks, 1 - IoU + presence error for boxes."""
    if task == "landmarks":
        return row["val_nme"]
    return (1 - row["iou_mean"]) + (1 - row["presence_accuracy"])


def train(cfg: TrainConfig, log=print) -> dict:
    """Run a whole training; returns the final summary (also written to summary.json)."""
    if model_kind(cfg.model) != cfg.task:
        raise InputError(f"model {cfg.model!r} is a {model_kind(cfg.model)} model, not a {cfg.task} model "
                         f"(landmark models: {', '.join(LANDMARK_MODELS)}; box model: box)")
    if cfg.task == "landmarks" and cfg.loss not in POINT_LOSSES:
        raise InputError(f"unknown loss {cfg.loss!r}; known: {', '.join(POINT_LOSSES)}")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = _init_distributed(device)
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    state = None
    if cfg.resume and last_path.is_file():
        try:
            state = read_checkpoint(last_path)
        except InputError as exc:
            raise InputError(f"{exc}; delete it or train without --resume") from None
        missing = [k for k in ("optimizer", "epoch", "elapsed_s") if k not in state]
        if missing:
            raise InputError(f"{last_path}: not a resumable checkpoint (no {', '.join(missing)}); "
                             "train without --resume")
        saved = dict(state.get("train_config", {}))
        for key in ("model", "task", "input_size"):
            if key in saved and saved[key] != getattr(cfg, key):
                raise InputError(f"{last_path}: was trained with {key}={saved[key]!r}, not {getattr(cfg, key)!r}")
    elif cfg.resume:
        log(f"--resume: no {last_path} yet, starting fresh")
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    torch.manual_seed(cfg.seed)
    try:
        caches = prepare_data(cfg, log if dist.main else (lambda *_: None))
    except KeyboardInterrupt:
        kept = f"; {last_path} is unchanged: continue with --resume" if state is not None else "; nothing saved yet"
        raise Interrupted(f"interrupted while preparing the training data{kept}") from None
    if device.type == "cuda":
        # the decoded cache lives on the GPU: batches are gathered, warped and jittered there
        for cache in caches.values():
            cache.images = cache.images.to(device)
    config = make_config(cfg.model, input_size=cfg.input_size, **cfg.model_options)
    model = build_model(cfg.model, config).to(device)
    if cfg.task == "landmarks" and state is None:
        init_points_bias(model, torch.from_numpy(mean_crop_points(caches["train"], cfg.input_size)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, elapsed, history, best = 0, 0.0, [], math.inf
    if state is not None:
        try:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in state["state_dict"].items()})
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InputError(f"{last_path}: does not fit this model or optimizer "
                             f"({str(exc).splitlines()[0][:160]}); train without --resume") from None
        start_epoch, elapsed = int(state["epoch"]), float(state["elapsed_s"])
        history = list(state.get("history", []))
        best = min((_metric(cfg.task, r) for r in history), default=math.inf)
        log(f"resumed from {last_path} at epoch {start_epoch} ({elapsed / 60:.1f} min trained)")
    train_model = model
    if dist.world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=model.has_box_head
                                                                if hasattr(model, "has_box_head") else False)
    if dist.main:
        log(f"model {cfg.model}: {count_parameters(model):,} parameters, input {cfg.input_size}px, device {device}"
            + (f", {dist.world} processes" if dist.world > 1 else ""))
    rng = np.random.default_rng(cfg.seed + 1000 * start_epoch + dist.rank)
    gen = torch.Generator().manual_seed(cfg.seed + start_epoch)
    budget_s = cfg.time_budget_min * 60
    steps_per_epoch = max(1, len(caches["train"]) // (cfg.batch_size * dist.world))
    total_steps = steps_per_epoch * cfg.epochs
    step = start_epoch * steps_per_epoch
    t_run = time.time() - elapsed

    def progress() -> float:
        p = step / max(total_steps, 1)
        return max(p, (time.time() - t_run) / budget_s) if budget_s else p

    def lr_at() -> float:
        return get_lr(cfg.lr, min(progress(), 1.0))

    def on_step():
        nonlocal step
        step += 1

    def save_last(epoch: int) -> None:
        if dist.main:
            ckpt = make_checkpoint(cfg.model, model, optimizer=optimizer.state_dict(), epoch=epoch,
                                   elapsed_s=time.time() - t_run, history=history, train_config=asdict(cfg))
            save_checkpoint(last_path, ckpt)

    epoch = done_epochs = start_epoch
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if _agree(budget_s > 0 and time.time() - t_run >= budget_s, dist):
                break
            dist.epoch_seed = cfg.seed * 100_003 + epoch
            t0 = time.time()
            train_loss = train_one_epoch(cfg, train_model, caches["train"], optimizer, rng, gen, device, dist,
                                         lr_at, on_step)
            row = {"epoch": epoch + 1, "train_loss": train_loss}
            if dist.main:
                row.update(evaluate(cfg, model, caches["val"], device))
                row.update(lr=lr_at(), seconds=time.time() - t0, elapsed_min=(time.time() - t_run) / 60)
                history.append(row)
                done_epochs = epoch + 1  # the weights now are this epoch's end: an interrupt keeps it
                with open(out / "metrics.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                score = _metric(cfg.task, row)
                if score < best:
                    best = score
                    save_checkpoint(best_path, make_checkpoint(cfg.model, model, epoch=epoch + 1, metrics=row,
                                                               train_config=asdict(cfg),
                                                               elapsed_s=time.time() - t_run))
                save_last(epoch + 1)
                _plot(out, cfg)
                log(_row_text(cfg.task, row, cfg.epochs))
            if cfg.dry_run:
                break
    except KeyboardInterrupt:
        # Mid-epoch weights are saved as the start of the unfinished epoch, which --resume runs again.
        try:
            with _signals_held():
                save_last(done_epochs)
        except KeyboardInterrupt:  # another signal during the save: it is done, stop as asked
            pass
        raise Interrupted(f"interrupted after {done_epochs} epochs of training; {last_path} saved at epoch "
                          f"{done_epochs}: continue with --resume") from None
    summary = {"run": str(out), "model": cfg.model, "epochs_done": len(history),
               "minutes": (time.time() - t_run) / 60, "parameters": count_parameters(model),
               "best": min(history, key=lambda r: _metric(cfg.task, r)) if history else None}
    if dist.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
        tdist.destroy_process_group()
    return summary


def _signals_held():
    """Hold further Ctrl+C / SIGTERM back while the interrupt checkpoint is written (main thread only)."""
    from core.signals import deferred_signals

    return deferred_signals()


def _agree(flag: bool, dist: _Dist) -> bool:
    """Rank 0's decision, shared with every rank (so all stop at the same epoch)."""
    if dist.world == 1:
        return flag
    import torch.distributed as tdist

    t = torch.tensor([int(flag)])
    tdist.broadcast(t, 0)
    return bool(t.item())


def _row_text(task: str, row: dict, epochs: int) -> str:
    head = f"epoch {row['epoch']}/{epochs}  train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  "
    if task == "landmarks":
        body = f"NME {row['val_nme']:.2f}%  fail {100 * row['val_failure']:.1f}%"
    else:
        body = f"IoU {row['iou_mean']:.3f}  presence {100 * row['presence_accuracy']:.1f}%"
    return head + body + f"  lr {row['lr']:.2e}  {row['seconds']:.0f}s"


def _plot(out: Path, cfg: TrainConfig) -> None:
    from training.plots import plot_runs

    try:
        plot_runs([out], out / "curves.png")
    except Exception as exc:  # a plot must never stop training
        print(f"warning: could not draw {out / 'curves.png'}: {exc}")


def with_overrides(cfg: TrainConfig, **kw) -> TrainConfig:
    """A copy of cfg with some fields changed."""
    return replace(cfg, **kw)
