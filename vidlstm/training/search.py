"""Choosing by data (``train --search``): a quick cross-validation of candidate settings inside the budget.

No one input mode wins on every task: frame differences carry a path traced in the air or a motion
(synthetic motion tasks: rgb+diff far ahead), while posture and appearance tasks (push-up form) did as
well or better on rgb alone at some seeds. So with ``--search``, when the user leaves ``--input-mode``
unset and the data is large enough to tell, `train` trains each candidate briefly on a group-aware
2-fold split of its *training* clips (the validation clips stay out of it, so the final model's
validation figures and its calibration are still out-of-sample), scores every training clip once as
held-out, and keeps the default unless another candidate gets at least ``MARGIN_CLIPS`` more clips
right. The decoded clip cache is shared: the candidates differ in what the model computes from the same
frames, so the search costs training time only, a ``SEARCH_SHARE`` of the budget; the final run trains on
every training clip in the time left. What was tried, the scores and the choice go to
RUN_DIR/search.json and the model's metrics (``chosen_from_data``).

It is off by default because the numbers say so: on fight the search chose rgb+diff in every fold (rgb
scored 0.50-0.55 against 0.74), on pushfit the two were within a clip or two, and the 30% of the budget
it took cost the final runs more accuracy than its choices gained (benchmarks/RESULTS.md, "Choosing the
input mode by data"). It pays where the budget is not binding (a GPU, or a long --time-budget) and the
candidates really differ.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from vidlstm.data.splits import index_folds
from vidlstm.files import atomic_write_text
from vidlstm.logs import bar_disabled, log as logger
from vidlstm.models import set_backbone_trainable
from vidlstm.training.budget import EpochPlan, auto_epochs
from vidlstm.training.loop import InputAdapter, evaluate, train_one_epoch
from vidlstm.training.model_setup import model_for_run
from vidlstm.training.optim import training_parts

CANDIDATES = ({"input_mode": "rgb+diff"}, {"input_mode": "rgb"})
"""What the search tries; the first is the default, kept unless another is clearly better."""
DEFAULT_INPUT_MODE = CANDIDATES[0]["input_mode"]
SEARCH_FOLDS = 2
SEARCH_SHARE = 0.3
"""Share of the time budget the search may take (the final run gets the rest)."""
MIN_SEARCH_CLIPS = 40
"""Fewer training clips than this: 2-fold scores of 20 clips are noise; the default is kept."""
MIN_TRIAL_EPOCHS = 8
"""A budget that fits fewer epochs per trial than this ranks nothing; the default is kept."""
MAX_TRIAL_EPOCHS = 60
MARGIN_CLIPS = 2
"""Another candidate replaces the default only with at least this many more held-out clips right."""
SEARCH_FILE = "search.json"


@dataclass
class SearchOutcome:
    """The settings chosen and the note of how (saved in search.json and in the model's metrics)."""

    settings: dict
    note: dict


def needs_search(config) -> bool:
    """Whether the run leaves a searched setting to the data (today: ``--input-mode`` unset)."""
    return config.input_mode is None


def no_search(config, ctx, targets: np.ndarray, num_classes: int) -> str | None:
    """Why this run, with training clips of class ``targets``, does not search (None: it does)."""
    train_clips = len(targets)
    if not config.search:
        return "off; --search turns it on"
    if config.init_from:
        return "fine-tuning keeps the model's input mode"
    if config.backbone_mode() == "frozen":
        return "frozen backbone: cached features belong to one input mode"
    if ctx.enabled:
        return "distributed run"
    if train_clips < MIN_SEARCH_CLIPS:
        return f"{train_clips} training clips (< {MIN_SEARCH_CLIPS}): too few to tell candidates apart"
    if np.bincount(targets, minlength=num_classes).min() < 2 * SEARCH_FOLDS:
        return f"a class has fewer than {2 * SEARCH_FOLDS} training clips"
    return None


def default_outcome(reason: str, asked: bool = False) -> SearchOutcome:
    """The default input mode, and why there was no search; ``asked``: the user gave --search, so say so."""
    settings = dict(CANDIDATES[0])
    if asked:
        logger.warning(f"--search skipped: {reason}; training with input mode {settings['input_mode']}")
    return SearchOutcome(settings, {"rule": f"default, no search ({reason})", **settings})


def load_outcome(run_dir: Path) -> SearchOutcome | None:
    """The choice an earlier (interrupted) attempt of this run made, so a resumed run keeps it."""
    path = Path(run_dir) / SEARCH_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return SearchOutcome(dict(record["chosen"]), _note(record))


def search(config, ctx, data, labels: list[str], run_started: float) -> SearchOutcome:
    """Cross-validate CANDIDATES on ``data.train_set`` (a train stage RunData), group-aware, and choose."""
    started = time.perf_counter()
    targets, groups = data.train_set.targets, data.train_groups()
    try:
        folds = index_folds(targets, groups, SEARCH_FOLDS, config.seed)
    except ValueError as err:  # e.g. fewer groups than folds
        return default_outcome(f"no {SEARCH_FOLDS}-fold split: {err}")
    held_view = data.held_out_view()
    trials = len(CANDIDATES) * SEARCH_FOLDS
    budget = config.time_budget * SEARCH_SHARE / trials if config.time_budget > 0 else 0.0
    # Clip presentations of all trials together ~ SEARCH_SHARE of the final run's (also without a budget).
    final = config.epochs or auto_epochs(len(targets))
    share = SEARCH_SHARE * final * len(targets) / (trials * max(1, len(folds[0][0])))
    epochs = min(MAX_TRIAL_EPOCHS, max(MIN_TRIAL_EPOCHS, round(share)))
    results = []
    bar = tqdm(total=trials, desc="input-mode search", unit="trial", disable=bar_disabled(config.progress and ctx.is_main),
               dynamic_ncols=True)
    for c, candidate in enumerate(CANDIDATES):
        logits = np.zeros((len(targets), len(labels)), np.float32)
        seconds, fold_acc = 0.0, []
        for f, (fit, held) in enumerate(folds):
            out = _trial(replace(config, **candidate), ctx, labels, data.train_set, held_view, fit, held, epochs,
                         budget if (c, f) == (0, 0) else 0.0)
            bar.update(1)
            bar.set_postfix_str(f"{_describe(candidate)}, fold {f + 1}: {out['epochs']} epochs")
            if (c, f) == (0, 0):
                epochs = out["epochs"]  # the first trial, timed against its share, sizes them all alike
                if epochs < MIN_TRIAL_EPOCHS:
                    bar.close()
                    return default_outcome(f"the time budget fits {epochs} epoch(s) per trial (< {MIN_TRIAL_EPOCHS})")
            logits[held] = out["logits"]
            fold_acc.append(round(float((out["logits"].argmax(1) == targets[held]).mean()), 4))
            seconds += out["seconds"]
        correct = int((logits.argmax(1) == targets).sum())
        loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets)))
        results.append({"settings": candidate, "correct": correct, "clips": len(targets),
                        "accuracy": round(correct / len(targets), 4), "fold_accuracy": fold_acc,
                        "loss": round(loss, 4), "seconds": round(seconds, 1)})
        logger.info(f"search: {_describe(candidate)}: {correct}/{len(targets)} held-out clips right "
                    f"(folds {', '.join(f'{a:.2f}' for a in fold_acc)}; loss {loss:.3f}; {seconds:.0f} s)")
    bar.close()
    best = choose(results)
    record = {"candidates": list(CANDIDATES), "folds": SEARCH_FOLDS, "grouped": groups is not None,
              "trial_epochs": epochs, "results": results, "chosen": results[best]["settings"],
              "rule": f"search: {SEARCH_FOLDS}-fold CV on the training clips, {epochs} epochs per trial; the default "
                      f"({_describe(CANDIDATES[0])}) unless another gets >= {MARGIN_CLIPS} more clips right",
              "seconds": round(time.perf_counter() - started, 1)}
    if ctx.is_main:
        atomic_write_text(Path(config.run_dir) / SEARCH_FILE, json.dumps(record, indent=2) + "\n")
    logger.info(f"search: chose {_describe(record['chosen'])} ({record['seconds']:.0f} s of the run's "
                f"{time.perf_counter() - run_started:.0f} s so far)")
    return SearchOutcome(dict(record["chosen"]), _note(record))


def choose(results: list[dict]) -> int:
    """Index of the chosen candidate: the best by clips right (then lower loss), if it beats the default
    (index 0) by MARGIN_CLIPS; else the default."""
    best = max(range(len(results)), key=lambda i: (results[i]["correct"], -results[i]["loss"]))
    return best if results[best]["correct"] - results[0]["correct"] >= MARGIN_CLIPS else 0


def _note(record: dict) -> dict:
    return {"rule": record["rule"], **record["chosen"],
            "scores": {_describe(r["settings"]): r["accuracy"] for r in record["results"]}}


def _describe(settings: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in settings.items())


def _trial(config, ctx, labels, train_set, held_view, fit: np.ndarray, held: np.ndarray, epochs: int,
           budget: float) -> dict:
    """Train a fresh model of ``config`` on clips ``fit`` for ``epochs`` (fewer when ``budget`` seconds,
    0: none, do not fit them); held-out logits on ``held``."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    model, _ = model_for_run(config, labels)
    set_backbone_trainable(model, config.backbone_mode())
    model.to(ctx.device)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(Subset(train_set, fit.tolist()), batch_size=config.batch_size, shuffle=True,
                        generator=generator)
    held_loader = DataLoader(Subset(held_view, held.tolist()), batch_size=config.batch_size * 2)
    steps = len(loader)
    parts = training_parts(config, model, train_set.targets[fit], len(labels), steps, epochs)
    ema = parts.ema
    net = InputAdapter(model, from_features=False)
    plan = EpochPlan(epochs, budget, reserve=0.0)
    epoch_seconds: list[float] = []
    epoch = 0
    while epoch < plan.planned:
        train_set.set_epoch(epoch)
        tick = time.perf_counter()
        train_one_epoch(net, loader, parts.loss_fn, parts.optimizer, parts.scheduler, ctx, grad_clip=config.grad_clip,
                        progress=False, after_step=(lambda: ema.update(model)) if ema is not None else None,
                        mixup=config.mixup, mixup_seed=(config.seed, epoch, ctx.rank))
        epoch_seconds.append(time.perf_counter() - tick)
        epoch += 1
        plan.revise_schedule(parts.scheduler, steps, epoch, time.perf_counter() - started, epoch_seconds)
    kept = ema.module if ema is not None else model
    out = evaluate(InputAdapter(kept, from_features=False), held_loader, ctx.device)
    return {"logits": out["logits"], "epochs": epoch, "seconds": time.perf_counter() - started}
