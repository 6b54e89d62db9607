"""Training: `train(cfg)` runs epochs of `train_one_epoch` and `evaluate`, logging and checkpointing.

What differs between the landmark nets (face crops) and the box regressor (whole frames) lives in
`training.tasks`; checkpoints and --resume in `training.checkpoints`; the same code runs under
`torchrun` with DistributedDataParallel (`training.distributed`: each rank takes its share of every epoch).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from core import devices
from core.errors import InputError, Interrupted
from core.meta import data_terms
from core.models import MODELS, build_model, count_parameters, make_config, model_kind, read_checkpoint
from core.progress import Progress
from core.signals import deferred_signals
from training.checkpoints import RunCheckpoints
from training.data import formats_of, load_dataset
from training.data.lookalike import merge_lookalike_identities
from training.data.splits import split_by_identity
from training.distributed import Dist, agree, finish, init_distributed, wrap_model
from training.tasks import TrainingTask, task_for


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in the run folder and in checkpoints)."""

    task: str = "landmarks"  # a key of training.tasks.TASKS: landmarks | box
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
    quality: bool = False  # landmarks: the model also outputs a face-quality logit, trained with negatives
    # the split keeps look-alike copies of a photo under different names together
    # (training.data.lookalike); checkpoints written before this field existed split without it
    split_lookalikes: bool = True
    # start from this checkpoint's weights where name and shape match (a backbone for a new head or input
    # size); what does not match keeps its fresh start. Ignored when resuming.
    init_from: str = ""
    # "modern": AdamW (weight_decay), warm-up then cosine, augmented crops (scale, shift, roll, mirror,
    # colour, blur, noise, JPEG, occlusion). "course": the course project's settings: Adam without weight
    # decay at a constant lr on the nominal crops, no augmentation, no quality output.
    recipe: str = "modern"
    # how often a source's faces come in an epoch, by group name (as the validation rows name them: "ytf-csv",
    # "300w", "mtfl/lfw", ...): 2.0 twice as often, 0.5 half; sources not named: 1.0
    source_weights: dict = field(default_factory=dict)


RECIPES = ("modern", "course")


def warm_start(model: torch.nn.Module, path: str, kind: str | None = None) -> tuple[int, int]:
    """Copy a checkpoint's tensors into `model` where name and shape match; returns (copied, model's tensors).
    InputError when the file is no checkpoint, holds a model of another kind than `kind` ('landmarks' or
    'box'), or nothing matches (wrong file)."""
    ckpt = read_checkpoint(path)
    if kind and ckpt["model"] in MODELS and model_kind(ckpt["model"]) != kind:
        raise InputError(f"{path}: holds a {model_kind(ckpt['model'])} model ({ckpt['model']}), not a {kind} "
                         "model: start from a checkpoint of the same kind")
    state = ckpt["state_dict"]
    own = model.state_dict()
    same = {k: v.float() if v.is_floating_point() else v for k, v in state.items()
            if k in own and own[k].shape == v.shape}
    if not any(v.is_floating_point() for v in same.values()):  # BatchNorm step counters alone prove nothing
        raise InputError(f"{path}: no weights fit model (none with the same name and shape); pick a checkpoint "
                         "of the same backbone")
    model.load_state_dict(same, strict=False)
    return len(same), len(own)


def get_lr(base_lr: float, progress: float, warmup: float = 0.03, floor: float = 0.02) -> float:
    """Linear warm-up, then cosine decay to floor x base_lr; progress in 0..1."""
    if progress < warmup:
        return base_lr * (0.1 + 0.9 * progress / warmup)
    t = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    return base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def resolve_device(name: str) -> torch.device:
    """--device auto|cpu|cuda as the runtime resolves it (`core.devices.resolve_device`, with torch's view
    of the GPU): auto -> cuda when usable, else cpu; an unknown name or cuda without a GPU is an InputError."""
    return torch.device(devices.resolve_device(name, torch.cuda.is_available()))


def split_samples(cfg: TrainConfig, log=print) -> dict[str, list]:
    """Load the datasets and split them by identity as `cfg` says: {"train", "val", "test"} lists of
    FaceSamples (look-alike identities merged when `cfg.split_lookalikes`). `facetrack eval` rebuilds a
    run's split from its saved config through this."""
    if not cfg.data:
        raise InputError("no --data given")
    samples = []
    for path in cfg.data:
        result = load_dataset(path, cfg.format, cfg.single_face_only)
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(result.skipped.items())) or "none"
        log(f"data {path}: {len(result.samples)} faces ({result.format}), skipped: {skipped}")
        samples += result.samples
    merged = None
    if cfg.split_lookalikes:
        t0 = time.time()
        merged = merge_lookalike_identities(samples, max(1, cfg.workers))
        log(f"look-alike faces: {len(merged)} identities merged into others ({time.time() - t0:.0f}s)")
    return split_by_identity(samples, cfg.seed, merged=merged)


def _subset(samples: list, n: int, seed: int) -> list:
    """At most n samples, drawn evenly over the list (seeded), in their original order."""
    if not n or len(samples) <= n:
        return samples
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), n, replace=False))
    return [samples[i] for i in keep]


def prepare_data(cfg: TrainConfig, task: TrainingTask, log=print) -> dict:
    """Load the datasets, split by identity, cache train and val (test stays untouched): {"train", "val"}.

    With `cfg.max_samples` each split is a seeded random subset of that size (every set represented).
    """
    splits = split_samples(cfg, log)
    splits = {k: _subset(v, cfg.max_samples, cfg.seed) for k, v in splits.items()}
    if not splits["train"]:
        raise InputError("no training faces left after the split")
    if not splits["val"]:
        splits["val"] = splits["train"][: max(1, len(splits["train"]) // 10)]
    groups = {k: Counter(s.group for s in v) for k, v in splits.items()}
    log(f"split by identity (seed {cfg.seed}{', look-alikes merged' if cfg.split_lookalikes else ''}): "
        f"train {len(splits['train'])}, val {len(splits['val'])}, test {len(splits['test'])} (held out); "
        "val per source: " + ", ".join(f"{g} {n}" for g, n in sorted(groups["val"].items())))
    t0 = time.time()
    caches = {k: task.build_cache(splits[k], cfg.workers, train=k == "train") for k in ("train", "val")}
    log(f"cached {len(caches['train'])} train / {len(caches['val'])} val items in {time.time() - t0:.1f}s")
    return caches


@dataclass(frozen=True)
class EpochResult:
    """What one pass over the training cache did: the mean loss, the steps taken and the steps planned
    (fewer taken: `--time-budget` ran out within the epoch)."""

    loss: float
    steps: int
    planned: int

    @property
    def cut_short(self) -> bool:
        return self.steps < self.planned


def item_weights(cache, source_weights: dict) -> np.ndarray | None:
    """(N,) how often each cached item comes in an epoch (`TrainConfig.source_weights` by its group), or
    None when no weights are set. Raises InputError for a weight on a source the data does not have, a
    negative or non-finite weight, or weights that leave less than one face an epoch."""
    if not source_weights:
        return None
    groups = getattr(cache, "groups", None)
    groups = [] if groups is None else [str(g) for g in groups]
    if len(groups) != len(cache):
        raise InputError("--source-weight: this task's training items have no sources to weight")
    unknown = sorted(set(source_weights) - set(groups))
    if unknown:
        raise InputError(f"--source-weight: no training faces from {', '.join(unknown)}; the sources are "
                         f"{', '.join(sorted(set(groups)))}")
    if not all(math.isfinite(w) and w >= 0 for w in source_weights.values()):
        raise InputError("--source-weight: weights must be finite numbers >= 0")
    weights = np.array([float(source_weights.get(g, 1.0)) for g in groups])
    if weights.sum() < 1:
        raise InputError("--source-weight: every training face is weighted 0; nothing would be trained")
    return weights


def epoch_items(cache, weights: np.ndarray | None) -> int:
    """Items in one epoch: len(cache), or the sum of the item weights rounded (at least 1)."""
    return len(cache) if weights is None else max(1, int(round(float(weights.sum()))))


def train_one_epoch(cfg: TrainConfig, task: TrainingTask, model, cache, optimizer, rng, gen, device, dist: Dist,
                    lr_at, on_step=None, out_of_time=None, weights: np.ndarray | None = None) -> EpochResult:
    """One pass over this rank's share of the training cache, each item `weights` times on average
    (`item_weights`; None: once). `out_of_time()` is asked before every step but the first (all ranks ask
    together: `training.distributed.agree`); True ends the epoch there. Progress (batches, running loss) goes
    to stderr on rank 0 (`core.progress`: a bar on a terminal)."""
    model.train()
    order = dist.epoch_order(len(cache), rng, weights)
    nb = dist.steps_per_epoch(epoch_items(cache, weights), cfg.batch_size) if not cfg.dry_run else 1
    total, count, steps = 0.0, 0, 0
    with Progress("train", nb, "batch", quiet=not dist.main) as progress:
        for b in range(nb):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if (b > 0 and out_of_time is not None and out_of_time()) or len(idx) == 0:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at() * group.get("lr_scale", 1.0)
            batch = task.make_batch(cache, idx, rng, gen, cfg.recipe != "course", device)
            loss, _ = task.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().item() * len(idx)
            count += len(idx)
            steps += 1
            progress.note(f"loss {total / count:.4f}")
            progress.update()
            if on_step:
                on_step()
    return EpochResult(total / max(count, 1), steps, nb)


@torch.no_grad()
def evaluate(task: TrainingTask, model, cache, device, dry_run: bool = False, batch_size: int = 128) -> dict:
    """Validation loss plus the task's metrics (NME % for landmarks, IoU and presence accuracy for boxes).

    No augmentation, and fixed seeds: the same crops (and box negatives) every epoch.
    """
    core = model.module if hasattr(model, "module") else model
    core.eval()
    rng = np.random.default_rng(1234)
    gen = torch.Generator().manual_seed(1234)
    n = len(cache) if not dry_run else min(len(cache), batch_size)
    losses, outputs, targets = [], [], {k: [] for k in task.target_keys}
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        batch = task.make_batch(cache, idx, rng, gen, False, device)
        loss, out = task.loss(core, batch)
        losses.append(float(loss) * len(idx))
        outputs.append(out.cpu().numpy())
        for k in task.target_keys:
            targets[k].append(batch[k].cpu().numpy())
    row = {"val_loss": sum(losses) / max(n, 1)}
    row.update(task.val_metrics(np.concatenate(outputs), {k: np.concatenate(v) for k, v in targets.items()}))
    return row


def train(cfg: TrainConfig, log=print) -> dict:
    """Run a whole training (or continue one with `cfg.resume`); returns the summary.

    Writes into the run folder `cfg.out` (rank 0 only, under torchrun):
    - config.json: `cfg` as a dict;
    - metrics.jsonl: one row per epoch: epoch (1-based), train_loss, val_loss, the task's metrics
      (landmarks: val_nme in % of the inter-ocular distance, val_failure as a 0..1 share of faces above
      10 %; box: iou_mean, iou_recall (share with IoU >= 0.5), presence_accuracy, all 0..1), lr, seconds
      (the epoch's wall time) and elapsed_min (training minutes so far, over resumes);
      an epoch that `cfg.time_budget_min` ended early (the budget is checked before every step) also has
      steps and steps_planned;
    - last.pt after every epoch (weights, optimizer, epoch, elapsed_s, history, train_config) and
      best.pt whenever the epoch is the best so far by the task's score (weights, epoch, metrics row);
      a dry run (`cfg.dry_run`: one batch of training and validation) checks both in memory and writes
      neither;
    - curves.png (loss and metric curves, redrawn every epoch; a failed plot only warns);
    - summary.json: run, model, epochs_done, minutes, parameters, best (the best metrics row or None).
    One line per epoch goes to `log`. Ctrl+C or SIGTERM during the epochs saves last.pt at the last
    finished epoch (the unfinished one runs again on --resume) and raises `core.errors.Interrupted`,
    as it does (saving nothing new) while the data is prepared.

    Raises `core.errors.InputError` (one line) for a model that is not a `cfg.task` model, an unknown
    loss, device or recipe, the course recipe with a quality output, missing or empty data, and a last.pt
    that --resume cannot continue from.
    """
    if cfg.recipe not in RECIPES:
        raise InputError(f"unknown recipe {cfg.recipe!r}; known: {', '.join(RECIPES)}")
    if cfg.recipe == "course" and cfg.quality:
        raise InputError("the course recipe trains points only: drop --quality, or use --recipe modern")
    task = task_for(cfg)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = init_distributed(device)
    out = Path(cfg.out)
    ckpts = RunCheckpoints(out, cfg.model, asdict(cfg), data_terms([cfg.format] * len(cfg.data) if cfg.format
                                                                  else formats_of(cfg.data)), dry_run=cfg.dry_run)
    state = ckpts.resume_state(log) if cfg.resume else None
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        if state is None and (out / "metrics.jsonl").exists():
            # a fresh run in a used folder: its rows start the log again (last.pt and best.pt are rewritten)
            log(f"{out}: a fresh run (no --resume, or nothing to resume): replacing its metrics.jsonl, last.pt "
                "and best.pt")
            (out / "metrics.jsonl").unlink()
    torch.manual_seed(cfg.seed)
    try:
        caches = prepare_data(cfg, task, log if dist.main else (lambda *_: None))
    except KeyboardInterrupt:
        kept = f"; {ckpts.last_path} is unchanged: continue with --resume" if state is not None else \
            "; nothing saved yet"
        raise Interrupted(f"interrupted while preparing the training data{kept}") from None
    weights = item_weights(caches["train"], cfg.source_weights)  # a --source-weight the data cannot take: said now
    if device.type == "cuda":
        # the decoded cache lives on the GPU: batches are gathered, warped and jittered there
        # (a detector's training images are composed on the CPU: its cache has no image tensor)
        for cache in caches.values():
            if isinstance(getattr(cache, "images", None), torch.Tensor):
                cache.images = cache.images.to(device)
    options = dict(cfg.model_options, quality=True) if cfg.quality else cfg.model_options
    config = make_config(cfg.model, input_size=cfg.input_size, **options)
    model = build_model(cfg.model, config).to(device)
    if state is None:
        task.init_model(model, caches["train"])
        if cfg.init_from:
            copied, total = warm_start(model, cfg.init_from, model_kind(cfg.model))
            log(f"started from {cfg.init_from}: {copied} of {total} weight tensors (those with the same name "
                "and shape)")
    trainable = task.train_module(model).to(device)  # the model and what only training uses (not exported)
    weight_decay = 0.0 if cfg.recipe == "course" else cfg.weight_decay  # course: plain Adam
    optimizer = torch.optim.AdamW(task.param_groups(trainable, weight_decay), lr=cfg.lr, weight_decay=weight_decay)
    start_epoch, elapsed, history, best = 0, 0.0, [], math.inf
    if state is not None:
        if cfg.init_from:
            log(f"--init-from {cfg.init_from} ignored: resuming {ckpts.last_path}")
        start_epoch, elapsed, history = ckpts.restore(state, model, optimizer)
        task.restore_extra(trainable, state)
        best = min((task.score(r) for r in history), default=math.inf)
        log(f"resumed from {ckpts.last_path} at epoch {start_epoch} ({elapsed / 60:.1f} min trained)")
    train_model = wrap_model(trainable, dist)
    if dist.main:
        log(f"model {cfg.model}: {count_parameters(model):,} parameters, input {cfg.input_size}px, device {device}"
            + (f", {dist.world} processes" if dist.world > 1 else ""))
    rng = np.random.default_rng(cfg.seed + 1000 * start_epoch + dist.rank)
    gen = torch.Generator().manual_seed(cfg.seed + start_epoch)
    budget_s = cfg.time_budget_min * 60
    steps_per_epoch = dist.steps_per_epoch(epoch_items(caches["train"], weights), cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    step = start_epoch * steps_per_epoch
    t_run = time.time() - elapsed

    def progress() -> float:
        p = step / max(total_steps, 1)
        return max(p, (time.time() - t_run) / budget_s) if budget_s else p

    def lr_at() -> float:
        return cfg.lr if cfg.recipe == "course" else get_lr(cfg.lr, min(progress(), 1.0))

    def on_step():
        nonlocal step
        step += 1

    def out_of_time() -> bool:
        return agree(time.time() - t_run >= budget_s, dist)

    def save_last(epoch: int) -> None:
        if dist.main:
            ckpts.save_last(model, optimizer, epoch, time.time() - t_run, history, task.checkpoint_extra(trainable))

    done_epochs = start_epoch
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if budget_s > 0 and out_of_time():
                break
            dist.epoch_seed = cfg.seed * 100_003 + epoch
            t0 = time.time()
            done = train_one_epoch(cfg, task, train_model, caches["train"], optimizer, rng, gen, device, dist,
                                   lr_at, on_step, out_of_time if budget_s > 0 else None, weights)
            row = {"epoch": epoch + 1, "train_loss": done.loss}
            if done.cut_short:  # --time-budget ran out within the epoch: its rows say how much of it ran
                row.update(steps=done.steps, steps_planned=done.planned)
            if dist.main:
                row.update(evaluate(task, trainable, caches["val"], device, cfg.dry_run))
                row.update(lr=lr_at(), seconds=time.time() - t0, elapsed_min=(time.time() - t_run) / 60)
                history.append(row)
                done_epochs = epoch + 1  # the weights now are this epoch's end: an interrupt keeps it
                with open(out / "metrics.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                score = task.score(row)
                if score < best:
                    best = score
                    ckpts.save_best(model, epoch + 1, row, time.time() - t_run, task.checkpoint_extra(trainable))
                save_last(epoch + 1)
                _plot(out)
                log(_row_text(task, row, cfg.epochs))
            if cfg.dry_run:
                break
    except KeyboardInterrupt:
        # Mid-epoch weights are saved as the start of the unfinished epoch, which --resume runs again.
        try:
            with deferred_signals():  # hold further Ctrl+C / SIGTERM back while last.pt is written
                save_last(done_epochs)
        except KeyboardInterrupt:  # another signal during the save: it is done, stop as asked
            pass
        raise Interrupted(f"interrupted after {done_epochs} epochs of training; {ckpts.last_path} saved at epoch "
                          f"{done_epochs}: continue with --resume") from None
    summary = {"run": str(out), "model": cfg.model, "epochs_done": len(history),
               "minutes": (time.time() - t_run) / 60, "parameters": count_parameters(model),
               "best": min(history, key=task.score) if history else None, **task.checkpoint_extra(trainable)}
    if dist.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        for line in task.closing_lines(trainable):
            log(line)
        if cfg.dry_run:
            log(f"dry run: {ckpts.last_path.name} and {ckpts.best_path.name} were built and checked in memory, "
                "not written")
    finish(dist)
    return summary


def _row_text(task: TrainingTask, row: dict, epochs: int) -> str:
    head = f"epoch {row['epoch']}/{epochs}  train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  "
    text = head + task.describe(row) + f"  lr {row['lr']:.2e}  {row['seconds']:.0f}s"
    if "steps_planned" in row:
        text += f"  (--time-budget reached after {row['steps']} of {row['steps_planned']} steps)"
    return text


def _plot(out: Path) -> None:
    from training.plots import plot_runs

    try:
        plot_runs([out], out / "curves.png")
    except Exception as exc:  # a plot must never stop training
        print(f"warning: could not draw {out / 'curves.png'}: {exc}")
