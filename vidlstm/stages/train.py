"""The train stage: DATA -> RUN_DIR (best model, resume state, metrics.csv, config.json, split.json, curves.png).

Also the engine of fine-tuning (``config.init_from``) and of DDP runs under torchrun.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from vidlstm.checkpoint import load_train_state, save_model, save_train_state
from vidlstm.data.augment import AugmentConfig, ClipAugmenter
from vidlstm.data.datasets import LabelledVideos, discover_dataset, without_empty_files
from vidlstm.data.loaders import CachedViewDataset
from vidlstm.data.splits import load_split, record_train_content, save_split, stratified_order, train_val_split
from vidlstm.errors import UsageError
from vidlstm.logs import bar_disabled, log as logger
from vidlstm.models import set_backbone_trainable
from vidlstm.stages import families
from vidlstm.training.auto import resolve_from_data, saved_setting
from vidlstm.training.budget import EpochPlan, auto_epochs
from vidlstm.training.config import TrainConfig
from vidlstm.training.distributed import (DistContext, barrier, broadcast_flag, broadcast_value, cleanup,
                                          init_distributed)
from vidlstm.training.early_stopping import EarlyStopping
from vidlstm.training.finalize import finalize_run
from vidlstm.training.logs import MetricsLog, TensorBoardLog
from vidlstm.training.loop import InputAdapter, evaluate, train_one_epoch
from vidlstm.training.model_setup import model_for_run
from vidlstm.training.optim import training_parts
from vidlstm.training.prepare import (cached, check_copies, clip_cache, content_hashes, feature_cache, fill_caches,
                                      warn_skipped)
from vidlstm.training.run_folder import (check_model_out, check_outside_data, check_run_dir, check_run_kind, holding,
                                         record_model_out)
from vidlstm.training.search import DEFAULT_INPUT_MODE, default_outcome, load_outcome, needs_search, no_search, search
from vidlstm.training.state import capture_rng_state, restore_rng_state, seed_everything


@dataclass
class RunData:
    """The clips a run trains and validates on, as cached-view datasets."""

    dataset: LabelledVideos
    train_set: CachedViewDataset
    val_set: CachedViewDataset
    skipped: list[str]
    train_idx: list[int]
    """The dataset items behind train_set, in order."""
    subset: Callable[[list[int], bool], CachedViewDataset]
    """A cached-view dataset of some dataset items, for training (True) or as validation sees them."""
    val_copies: int = 0
    """Validation clips that are byte-identical copies of training clips (the validation figures flatter)."""

    def held_out_view(self) -> CachedViewDataset:
        """The training clips as validation sees them (the centre view, no augmentation): for the search."""
        return self.subset(self.train_idx, False)

    def train_groups(self) -> np.ndarray | None:
        """The group of each training clip, or None when the data has none."""
        groups = self.dataset.groups()
        return None if groups is None else groups[self.train_idx]


def run(config: TrainConfig, on_epoch_end=None) -> Path:
    """Train (or fine-tune) and return the run folder. ``on_epoch_end(epoch, row)`` is called after each
    epoch's state is saved (tests use it to interrupt a run). ``backbone="auto"``: stages/families.py."""
    check_outside_data(config)  # before anything is made
    with holding(config):  # one process trains into a run folder at a time
        if config.backbone == "auto":
            check_run_kind(config)
            check_model_out(config)  # its kept model is copied there at the end
            record_model_out(config)
            return families.run(config, lambda candidate: run(candidate, on_epoch_end), decode_once=extract_together)
        ctx = init_distributed(config.device)
        try:
            return _train(config, ctx, on_epoch_end)
        finally:
            cleanup(ctx)


def extract_together(configs: list[TrainConfig], deadline: float | None = None) -> tuple[list, int, int] | None:
    """Fill the feature caches of frozen-backbone runs (auto's read-out) from one decode of each video.

    The runs' features land where each run looks for them (its own cache folder, its own model's spec), so
    each run then starts with every feature cached and decodes nothing; runs that would sample other frames
    (frames per clip, image size, views) than the first are left to decode on their own. Unreadable videos
    are left to the runs too, which skip them with their usual warning. With ``deadline`` (``time.monotonic()``)
    the videos are decoded in ``splits.stratified_order`` until it passes (and at least ``MIN_READOUT_CLIPS`` of
    every class): then (the videos reached, of how many, the frames per clip sampled) when some were left, for the
    read-outs to fit on (with those frames: resolved from the subset, they could differ); else None.
    """
    if not configs:
        return None
    ctx = init_distributed(configs[0].device)
    try:
        dataset = without_empty_files(discover_dataset(configs[0].data))  # as each run resolves its frames
        runs = []
        for config in configs:
            config = replace(config)  # a copy: resolving the frames per clip sets them
            resolve_from_data(config, dataset)
            model, _ = model_for_run(config, dataset.labels)
            runs.append((config, model.to(ctx.device)))
        first, model = runs[0]
        sampling = lambda c, m: (m.config.num_frames, m.config.image_size, m.config.stabilize, c.views)  # noqa: E731
        encoders = [(feature_cache(c.resolved_cache_dir, m), m) for c, m in runs if sampling(c, m) == sampling(first, model)]
        if not encoders:
            return None
        order, at_least = stratified_order(dataset.targets(), first.seed, families.MIN_READOUT_CLIPS)
        items = [dataset.items[i] for i in order]
        shas = content_hashes(items, first.resolved_cache_dir, warn=False)
        todo = sum(s is not None and not all(cached(c, s, first.views) for c, _ in encoders) for s in shas)
        logger.info(f"auto: decoding {todo} training video(s) once for {len(encoders)} read-out(s)" if todo else
                    f"auto: every training video's read-out features are cached in {first.resolved_cache_dir}")
        usable = fill_caches(items, shas, ctx, clips=None, encoders=encoders, num_frames=model.config.num_frames,
                             image_size=model.config.image_size, views=first.views, batch_size=first.batch_size,
                             decode_workers=first.decode_workers, progress=first.progress, warn=False,
                             deadline=deadline, at_least=at_least)
        reached = [item for item, ok in zip(items, usable) if ok is not None]
        return (reached, len(items), model.config.num_frames) if len(reached) < len(items) else None
    finally:
        cleanup(ctx)


def _prepare_data(config: TrainConfig, ctx: DistContext, dataset: LabelledVideos, model) -> RunData:
    labels = list(model.config.labels)
    split_path = config.run_dir / "split.json"
    if config.resume and split_path.exists():
        split = load_split(split_path, dataset)
        train_idx, val_idx = split["train"], split["val"]
        added = sorted(set(dataset.labels) - {dataset.items[i].label for i in [*train_idx, *val_idx]})
        if added:  # "no decodable training clip" was all it said
            raise UsageError(f"{config.data}: class {added[0]!r} is not in the run being resumed (added since it "
                             f"started); train with it into another -o")
        if len(dataset.items) > len(train_idx) + len(val_idx) and ctx.is_main:
            logger.warning(f"{config.data}: {len(dataset.items) - len(train_idx) - len(val_idx)} clip(s) added since "
                           f"the run started are left out: a resumed run trains on the clips it started with")
    else:
        train_idx, val_idx = train_val_split(dataset, config.val_fraction, config.seed)
        if ctx.is_main:
            save_split(split_path, dataset, train_idx, val_idx, config.seed, config.val_fraction)
    cache_root = config.resolved_cache_dir
    copies = 0  # validation clips with a byte-identical copy among the training clips (rank 0 counts them)
    if ctx.is_main:  # rank 0 hashes first; the others then read its hash index instead of re-reading videos
        for entry in dataset.skipped:  # FIFOs, link loops ... named like videos: listed, never opened
            warn_skipped(entry.path, entry.reason)
        shas = content_hashes(dataset.items, cache_root)
        copies = check_copies(dataset, shas, train_idx, val_idx)  # warns: one file under two labels, or split copies
        record_train_content(split_path, dataset, train_idx, shas)  # evaluate knows copies of them as in-sample
    barrier(ctx)
    if not ctx.is_main:
        shas = content_hashes(dataset.items, cache_root, warn=False)  # rank 0 has warned
    from_features = config.backbone_mode() == "frozen"
    cfg = model.config
    clips = None if from_features else clip_cache(cache_root, cfg.num_frames, cfg.image_size, cfg.stabilize)
    feats = feature_cache(cache_root, model) if from_features else None
    usable = fill_caches(dataset.items, shas, ctx, clips=clips, encoders=[(feats, model)] if from_features else [],
                         num_frames=cfg.num_frames, image_size=cfg.image_size, views=config.views,
                         batch_size=config.batch_size, decode_workers=config.decode_workers, progress=config.progress)
    skipped = ([dataset.relative_name(entry) for entry in dataset.skipped]
               + [dataset.relative_name(item) for item, ok in zip(dataset.items, usable) if not ok])
    train_idx = [i for i in train_idx if usable[i]]
    val_idx = [i for i in val_idx if usable[i]]
    if not train_idx:
        raise UsageError(f"{config.data}: none of the training videos could be decoded")
    targets = dataset.targets(labels)
    # A class of the data whose every training clip failed to decode would be trained as absent: refuse.
    empty = [label for label in dataset.labels
             if label in labels and not any(targets[i] == labels.index(label) for i in train_idx)]
    if empty:
        raise UsageError(f"{config.data}: no decodable training clip for class {', '.join(map(repr, empty))} "
                         f"({len(skipped)} file(s) skipped)")
    cache, key = (feats, "features") if from_features else (clips, "frames")
    augmenter = ClipAugmenter(AugmentConfig(hflip=config.hflip)) if config.augment and not from_features else None

    def subset(indices, train):
        return CachedViewDataset(cache, [shas[i] for i in indices], targets[indices], key=key, views=config.views,
                                 train=train, augmenter=augmenter, seed=config.seed)

    return RunData(dataset, subset(train_idx, True), subset(val_idx, False), skipped, train_idx, subset, copies)


def _resumed_input_mode(config: TrainConfig) -> str:
    """The input mode the interrupted run trained with (its config.json), so its saved state still fits."""
    return saved_setting(config.run_dir, "input_mode") or DEFAULT_INPUT_MODE


def _train(config: TrainConfig, ctx: DistContext, on_epoch_end) -> Path:
    run_started = time.perf_counter()  # the time budget covers the whole run, decoding included
    run_dir = config.run_dir
    state_path = check_run_dir(config)
    if ctx.is_main:
        state_path.parent.mkdir(parents=True, exist_ok=True)
    barrier(ctx)
    seed_everything(config.seed)
    dataset = without_empty_files(discover_dataset(config.data))  # split only what may decode
    chosen = resolve_from_data(config, dataset)
    logger.debug(f"{config.run_dir}: settings from the data: {chosen or 'none'}")
    searching = needs_search(config) and not config.resume
    if needs_search(config):
        # Decoding does not depend on the input mode: the clips are cached before the search chooses it.
        config.input_mode = _resumed_input_mode(config) if config.resume else DEFAULT_INPUT_MODE
        if config.resume:
            outcome = load_outcome(run_dir)
            chosen["input_mode"] = outcome.note if outcome else {"rule": "from the interrupted run's config.json",
                                                                 "input_mode": config.input_mode}
    model, origin = model_for_run(config, dataset.labels)
    if config.init_from:
        config.num_frames = model.config.num_frames  # recorded: the fine-tuned model keeps its sampling
    labels = list(model.config.labels)  # fine-tuning on the same label set keeps the model's order
    mode = config.backbone_mode()  # a statistics head is frozen: TrainConfig and finetune.run refuse otherwise
    set_backbone_trainable(model, mode)
    model.to(ctx.device)
    data = _prepare_data(config, ctx, dataset, model)
    if searching:
        reason = no_search(config, ctx, data.train_set.targets, len(labels))
        outcome = default_outcome(reason, config.search) if reason else search(config, ctx, data, labels, run_started)
        chosen["input_mode"] = outcome.note
        if reason is None:  # searched: the final run starts as a run with the chosen settings would
            for key, value in outcome.settings.items():
                setattr(config, key, value)
            seed_everything(config.seed)
            model, origin = model_for_run(config, dataset.labels)
            set_backbone_trainable(model, mode)
            model.to(ctx.device)

    if model.clip_stats is not None and not config.resume and not (config.init_from and not origin["new_heads"]):
        # Frozen features never change: the statistics' standardisation comes from every training view once.
        model.clip_stats.fit(data.train_set.every_view().float().to(ctx.device))  # (N * V, T, D)

    sampler = DistributedSampler(data.train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed)
    train_loader = DataLoader(data.train_set, batch_size=config.batch_size, sampler=sampler,
                              num_workers=config.workers, persistent_workers=config.workers > 0)
    val_loader = DataLoader(data.val_set, batch_size=config.batch_size * 2, shuffle=False, num_workers=config.workers)
    net = InputAdapter(model, from_features=mode == "frozen")
    if ctx.enabled:
        net = DistributedDataParallel(net, device_ids=[ctx.local_rank] if ctx.device.type == "cuda" else None)
    steps_per_epoch = len(train_loader)
    plan = EpochPlan(config.epochs or auto_epochs(len(data.train_set) * ctx.world_size), config.time_budget)
    parts = training_parts(config, model, data.train_set.targets, len(labels), steps_per_epoch, plan.planned)
    optimizer, scheduler, ema, loss_fn = parts.optimizer, parts.scheduler, parts.ema, parts.loss_fn
    kept = ema.module if ema is not None else model  # what validation scores and model/ receives
    amp = config.amp and ctx.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    stopper = EarlyStopping(config.monitor, config.patience)

    start_epoch, spent = 0, 0.0
    if config.resume:
        start_epoch, spent = _resume(state_path, labels, model, optimizer, scheduler, scaler, stopper, ema, plan)
    run_started -= spent  # a resumed run continues the budget where the interrupted one left it
    has_val = len(data.val_set) > 0
    log = tb = None
    if ctx.is_main:
        config.save(run_dir / "config.json")
        log = MetricsLog(run_dir / "metrics.csv", keep_epochs_below=start_epoch if config.resume else None)
        tb = TensorBoardLog(run_dir / "tensorboard")
    show = config.progress and ctx.is_main
    if model.config.clip_head == "stats":  # the epoch lines' accuracies are not the model's: said once, before them
        logger.info("the epochs train the per-step (BiLSTM) heads; the clip label is the statistics read-out, fitted "
                    "after them")
    bar = tqdm(total=plan.planned, initial=start_epoch, desc="epochs", disable=bar_disabled(show), dynamic_ncols=True)
    started = time.perf_counter()
    epoch_seconds: list[float] = []
    epoch = start_epoch
    while epoch < plan.planned:
        if stopper.should_stop:
            break  # resumed a run that had already stopped early
        sampler.set_epoch(epoch)
        data.train_set.set_epoch(epoch)
        tick = time.perf_counter()
        row = {"epoch": epoch, "lr": scheduler.get_last_lr()[0]}
        clock = _StepClock(ctx, early=epoch == start_epoch and plan.budget > 0)

        def after_step():
            if ema is not None:
                ema.update(model)
            per_epoch = clock.tick(steps_per_epoch)
            if per_epoch is not None:  # a few steps into the first epoch: plan before the schedule runs far
                left_of_epoch = per_epoch * (1 - clock.steps / steps_per_epoch)
                elapsed = broadcast_value(ctx, time.perf_counter() - run_started) + left_of_epoch
                _replan(plan, scheduler, bar, steps_per_epoch, epoch + 1, elapsed, [per_epoch])

        row.update(train_one_epoch(net, train_loader, loss_fn, optimizer, scheduler, ctx, scaler=scaler,
                                   grad_clip=config.grad_clip, amp=amp, desc=f"epoch {epoch + 1}", progress=show,
                                   after_step=after_step, mixup=config.mixup,
                                   mixup_seed=(config.seed, epoch, ctx.rank)))
        val = evaluate(InputAdapter(kept, mode == "frozen"), val_loader, ctx.device, amp) if has_val else {}
        row.update(val_loss=val.get("val_loss", float("nan")), val_acc=val.get("val_acc", float("nan")),
                   seconds=round(time.perf_counter() - tick, 3))
        improved = stopper.update(epoch, row) if has_val else True
        epoch_seconds.append(broadcast_value(ctx, row["seconds"]))
        # Every rank takes rank 0's timing, so all agree on when the run ends.
        elapsed = broadcast_value(ctx, time.perf_counter() - run_started)
        _replan(plan, scheduler, bar, steps_per_epoch, epoch + 1, elapsed, epoch_seconds)
        if ctx.is_main:
            log.append(row)
            tb.log(row, epoch)
            if improved:
                save_model(config.resolved_model_dir, kept, metrics={"epoch": epoch, "val_loss": row["val_loss"],
                                                                      "val_acc": row["val_acc"], "finished": False,
                                                                      "init": origin["init"]})  # the card's source
            save_train_state(state_path, {
                "epoch": epoch, "labels": labels, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "early_stopping": stopper.state_dict(), "rng": capture_rng_state(), "config": config.to_dict(),
                "ema": ema.state_dict() if ema is not None else None, "plan": plan.state_dict(), "elapsed": elapsed,
            })  # everything an uninterrupted run would carry into the next epoch
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.2f}",
                            **({"val_acc": f"{row['val_acc']:.2f}"} if has_val else {}),  # no split: no nan
                            budget=f"{elapsed:.0f}/{config.time_budget:.0f}s" if config.time_budget else "none")
            logger.info(_epoch_line(row, plan.planned, improved and has_val and config.monitor != "last"))
        barrier(ctx)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        epoch += 1
        if broadcast_flag(ctx, stopper.should_stop):
            if ctx.is_main:
                logger.info(f"early stop: no {config.monitor} improvement for {config.patience} epochs "
                           f"(best epoch {stopper.best_epoch + 1})")
            break
    bar.close()
    if ctx.is_main and plan.cut_by_budget:
        epochs = f"{plan.planned} epoch{'s' if plan.planned != 1 else ''}"
        logger.info(f"time budget: {epochs} fitted in {config.time_budget:.0f} s (--time-budget; 0: none)")
    if ctx.is_main and 0 < config.time_budget < (time.perf_counter() - run_started) / 1.2:  # decoding is not cut short
        logger.warning(f"{config.run_dir}: the run took {time.perf_counter() - run_started:.0f} s, over its "
                       f"{config.time_budget:g} s time budget: decoding the clips took {started - run_started:.0f} s")
    if ctx.is_main:
        tb.close()
        origin = dict(origin, epochs_planned=plan.planned, cut_by_budget=plan.cut_by_budget,
                      time_budget=config.time_budget, ema_decay=config.ema_decay, chosen_from_data=chosen,
                      run_seconds=round(time.perf_counter() - run_started, 1))
        finalize_run(config, data, log.rows, stopper, origin, seconds=time.perf_counter() - started,
                     device=ctx.device)
    barrier(ctx)
    return run_dir


def _replan(plan: EpochPlan, scheduler, bar, steps_per_epoch: int, epochs_done: int, elapsed: float,
            epoch_seconds: list[float]) -> None:
    """Revise the epoch plan; when it changed, the cosine now ends where the run will, and the bar says so."""
    if plan.revise_schedule(scheduler, steps_per_epoch, epochs_done, elapsed, epoch_seconds):
        bar.total = plan.planned


class _StepClock:
    """Times the first optimizer steps of a run, so the time budget can size the run before the first epoch
    ends: ``tick`` returns the estimated seconds per epoch once, after step ``MEASURED + 1`` (step 1 pays
    one-off allocations and is left out), and None otherwise. Rank 0's estimate is every rank's."""

    MEASURED = 3

    def __init__(self, ctx: DistContext, early: bool):
        self.ctx, self.early, self.steps, self.started = ctx, early, 0, None

    def tick(self, steps_per_epoch: int) -> float | None:
        self.steps += 1
        if not self.early or steps_per_epoch <= self.MEASURED + 1:
            return None
        if self.steps == 1:
            self.started = time.perf_counter()
        elif self.steps == self.MEASURED + 1:
            per_step = broadcast_value(self.ctx, (time.perf_counter() - self.started) / self.MEASURED)
            return per_step * steps_per_epoch
        return None


def _resume(state_path: Path, labels, model, optimizer, scheduler, scaler, stopper, ema, plan) -> tuple[int, float]:
    """Load the saved state into the run's objects; returns (first epoch still to train, seconds spent)."""
    state = load_train_state(state_path)
    if list(state["labels"]) != labels:
        raise UsageError(f"{state_path}: the saved run has labels {state['labels']}, the data gives {labels}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    stopper.load_state_dict(state["early_stopping"])
    restore_rng_state(state["rng"])
    if ema is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    if state.get("plan") is not None:
        plan.load_state_dict(state["plan"])
    return int(state["epoch"]) + 1, float(state.get("elapsed", 0.0))


def _epoch_line(row: dict, epochs: int, best: bool) -> str:
    val = "" if math.isnan(row["val_loss"]) else f"| val loss {row['val_loss']:.4f}  acc {row['val_acc']:.3f}  "
    return (f"epoch {row['epoch'] + 1:>3}/{epochs}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.3f}  "
            f"{val}({row['seconds']:.1f} s){'  *' if best else ''}")  # no validation split: no val columns

