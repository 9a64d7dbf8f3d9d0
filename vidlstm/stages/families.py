"""`train --backbone auto`: train pretrained and from-scratch models, keep the one the data favours.

No one kind of model wins every task. A frozen ImageNet backbone (EfficientNet-Lite0 at 224 px, read out by a
strongly regularised logistic regression on its features' statistics over time, training/readout.py) knows
people, places, postures and how fast a scene changes, which no few dozen clips can teach. Shown the
differences of consecutive sampled frames (input mode "diff"), the same frozen network describes what moves and
how: on fight that read-out scored 0.839 where the frames' scored 0.793, on pushfit (posture) 0.80 where the
frames' scored 0.85. The read-out sees both, side by side (input mode "rgb,diff"): choosing between a read-out of
each by their out-of-fold estimates lost to it on both sets over five fold seeds (session 23). vidnet trained from
scratch, with keypoints, follows motion and paths that pooled statistics blur (benchmarks/RESULTS.md, "A
pretrained backbone", "The read-out as a logistic regression" and "Motion images"); it sees the frame differences
alone unless the frames' statistics alone tell the classes apart well (``vidnet_input_mode``). So ``auto`` trains
both as ordinary runs in RUN_DIR/candidates/ (each resumable on its own): the read-out first, on every training
clip, capped at ``PRETRAINED_SHARE`` of the time budget after its one decode of each video (extracting its
features is most of its cost; where that decode would take over ``READOUT_DECODE_SHARE`` of the budget it fits on
the videos decoded by then), then vidnet in the time left, on every clip, with its usual validation split.

The judge: the read-out's accuracy is estimated out-of-fold over every training clip (group-aware folds; cheap,
because its features are frozen), vidnet's on its validation split (a fifth of the clips; its last epoch's model, so
the estimate is not selected on that split). The highest estimate wins; on equal estimates the read-out (``choose``),
and also where vidnet's validation split is known to flatter it (near-copies, no groups) while the frames tell the
classes apart (a margin of one standard error never changed a choice for the better: RESULTS.md, session 14).
RUN_DIR/model is a copy of the kept model (a kept read-out gets vidnet beside it as its partner, whose vote breaks its
near-ties: training/partner.py); RUN_DIR/choice.json and the kept model's metrics (``chosen_from_data``)
record every estimate, the rule and the clause that decided, and the warning where the data names no groups while most
clips have a near-copy among the others (``near_copy_warning``: then every estimate is optimistic, vidnet's most).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from vidlstm.data.datasets import discover_dataset, write_manifest
from vidlstm.data.splits import train_val_split
from vidlstm.files import atomic_write_text
from vidlstm.logs import log as logger
from vidlstm.training.auto import resolve_stabilize
from vidlstm.training.clock import RunClock
from vidlstm.training.config import TrainConfig
from vidlstm.training.run_folder import auto_run_finished, clear_model_folder

# One cached view (the segment centres) at 224 px, every training clip (judged out-of-fold, so no validation
# split), and a short epoch loop: the clip logits come from the read-out's logistic regression; the loop only
# trains the per-step heads on the cached features.
_READOUT = dict(backbone="efficientnet_lite0", pretrained=True, image_size=224, clip_head="stats", views=1,
                val_fraction=0.0, epochs=40)
FAMILIES = {
    # What is in the frames and what changes from one sampled frame to the next, side by side in one read-out: over
    # five fold seeds it beat choosing between a read-out of each (fight 0.803 against 0.784, pushfit 0.867 against
    # 0.849; benchmarks/RESULTS.md, session 23), where the out-of-fold choice kept the one worse on held-out clips.
    "pretrained": dict(_READOUT, input_mode="rgb,diff"),
    "scratch": dict(backbone="vidnet"),
}
"""The candidates, in training order; settings the user left unset come from here (or the defaults)."""
PRETRAINED_FAMILIES = ("pretrained",)
"""The read-out families, judged out-of-fold; on equal estimates the first is kept."""
FIXED = ("backbone", "pretrained", "input_mode")
"""Settings that make a family, from FAMILIES whatever the user set (vidnet's names no input mode: --input-mode's)."""
FALLBACK_FAMILY = "scratch"
"""Kept when no pretrained read-out has an out-of-fold estimate (too few clips for two folds)."""
PRETRAINED_SHARE = 0.25
"""Share of the time budget each pretrained candidate may take (decoding and feature extraction included)."""
READOUT_DECODE_SHARE = 0.4
"""Share of the time budget the read-out's one decode of the training videos (and its two feature passes) may take,
before its own run fits the regression. Past it the read-out fits on the videos decoded so far, which cost every class
alike (``splits.stratified_order``): ~200 clips fit in the default 480 s (one decode cost 114 s for 119 fight clips)."""
MIN_READOUT_CLIPS = 5
"""Videos of each class decoded for the read-outs whatever the budget: one per out-of-fold fold."""
READOUT_CLIPS_FILE = "readout_clips.csv"
"""Videos the read-outs fitted on where the budget left some undecoded (readout_clips.json: how many, frames)."""
CHOICE_FILE = "choice.json"


def candidate_config(config: TrainConfig, family: str, budget: float, given: dict | None = None) -> TrainConfig:
    """The run of ``family``: its settings where the user left them unset, its own folder, ``budget`` seconds;
    ``given`` settings over all that (the read-outs' share of the videos, ``READOUT_CLIPS_FILE``, and its frames)."""
    settings = dict(given or {})
    for key, value in FAMILIES[family].items():
        user_value = getattr(config, key)
        default = TrainConfig.__dataclass_fields__[key].default
        settings[key] = value if key in FIXED or user_value in (None, default) else user_value
    folder = config.run_dir / "candidates" / family
    settings.setdefault("image_size", config.image_size)  # None: the candidate backbone's own default
    return replace(config, **settings, out_dir=str(folder), model_out=None, time_budget=budget)


def run(config: TrainConfig, train_one: Callable[[TrainConfig], Path],
        decode_once: Callable[[list[TrainConfig], float | None], tuple[list, int, int] | None] | None = None) -> Path:
    """Train every family with ``train_one`` (the train stage for one backbone), keep the better; RUN_DIR.

    ``decode_once`` (the train stage's ``extract_together``) first fills the read-outs' feature caches from one decode
    of each video; with a time budget it stops at ``READOUT_DECODE_SHARE`` of it, and they fit on the videos decoded.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun: the from-scratch family alone
        logger.info("auto: under torchrun only vidnet trains (the families are compared in one process)")
        return train_one(replace(config, backbone="vidnet"))
    run_dir = config.run_dir
    if config.resume and auto_run_finished(run_dir, config.resolved_model_dir):  # choosing again rewrote choice.json
        logger.info(f"auto: {run_dir} finished already (its choice.json and model): nothing to resume")
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    clock = RunClock(run_dir / "candidates" / "clock.json", config.resume)  # a resume goes on from what was spent
    results = {}
    began = any(_began(candidate_config(config, family, 0.0)) for family in FAMILIES)
    if not began:
        _check_split(config)  # once a candidate began, the run was checked when it started
    # (A new run into a folder where candidates began was refused by train.run, before any decoding: run_folder.py.)
    config, stabilized = _stabilize_once(config) if config.resume or not began else (config, None)
    readout_settings, readout_clips = _readout_videos(config, decode_once, began)
    given = {}  # family -> the settings this run gave it over its own (choice.json records vidnet's)
    skipped_before = _skipped_before(run_dir) if config.resume else {}  # a resume does not undo a finished choice
    for family in FAMILIES:
        total, readout = config.time_budget, family in PRETRAINED_FAMILIES  # total 0: no budget
        left = (total * PRETRAINED_SHARE if readout else total - clock.seconds()) if total > 0 else 0.0
        budget = left if readout or total <= 0 else max(left, 1.0)  # vidnet: what is left, at least 1 s if it trains
        given[family] = readout_settings if readout else vidnet_input_mode(config, results)
        planned = candidate_config(config, family, 0.0)  # where it trains and as what, before its budget is known
        this_began = _began(planned)
        skip = None if this_began else (
            skipped_before.get(family) or _too_little_time(family, left, config.time_budget, results))
        if skip:
            logger.info(f"auto: not training the {family} candidate: {skip}")
            results[family] = {"accuracy": None, "clips": 0, "estimate": "not trained", "backbone": planned.backbone,
                               "skipped": skip}
            continue
        budget = clock.budget(family, budget, this_began) if budget else 0.0  # one that began keeps its budget
        candidate = candidate_config(config, family, budget, given[family])
        if config.resume and not this_began:
            candidate = replace(candidate, resume=False)  # interrupted before this candidate began
        if _done(candidate, config.resume):
            logger.info(f"auto: {family} candidate already trained")
        else:
            mode = candidate.input_mode or "the input --search chooses"
            logger.info(f"auto: training the {family} candidate ({candidate.backbone} on {mode}, "
                        f"{'budget ' + format(budget, '.4g') + ' s' if budget else 'no budget'})")
            train_one(candidate)
        results[family] = dict(_scores(candidate.resolved_model_dir), backbone=candidate.backbone)
        clock.part_ended(family, results[family].get("run_seconds"))
    chosen, clause = _choice(results)
    settings = dict(FAMILIES, scratch=dict(FAMILIES["scratch"], **(given["scratch"] or {})))
    record = {"rule": RULE, "model_dir": str(config.resolved_model_dir),
              "candidates": {f: {"settings": settings[f], **results[f]} for f in FAMILIES}, "chosen": chosen,
              "clause": clause, "vidnet_input_mode_rule": VIDNET_INPUT_RULE, "seconds": round(clock.seconds(), 1)}
    if readout_clips:
        record["readout_videos"] = readout_clips
    if stabilized:
        record["stabilize"] = stabilized
    warning = near_copy_warning(results)
    if warning:
        logger.warning(f"{config.data}: {warning}")
        record["warning"] = warning
    if 0 < config.time_budget < record["seconds"] / 1.2:  # decoding, and the read-out's final fit, are not cut short
        logger.warning(f"auto: the candidates took {record['seconds']:.0f} s, over the {config.time_budget:g} s time "
                       f"budget")
    source = config.run_dir / "candidates" / chosen / "model"
    _copy_model(source, config.resolved_model_dir, record)  # and vidnet joined to a kept read-out: record["partner"]
    atomic_write_text(run_dir / CHOICE_FILE, json.dumps(record, indent=2) + "\n")  # last: the run is finished
    split = source.parent / "split.json"  # what `evaluate --split RUN_DIR/split.json` reads, as for one backbone
    if split.is_file():
        shutil.copyfile(split, run_dir / "split.json")
    scores = ", ".join(f"{family} {_describe(result)}" for family, result in results.items())
    joined = "; vidnet joins it as its partner" if record.get("partner", {}).get("joined") else ""
    logger.info(f"auto: kept the {chosen} model ({scores}): {clause}{joined}")
    return run_dir


def _stabilize_once(config: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """``config`` with ``stabilize`` resolved once for every candidate (they must all see the clips alike), and how
    it was chosen (None: the user's). A resumed run keeps what its candidates were given."""
    if config.stabilize != "auto":
        return config, None
    began = [c for c in (candidate_config(config, f, 0.0) for f in FAMILIES) if _began(c)] if config.resume else []
    value, note = resolve_stabilize(began[0] if began else config, [i.path for i in discover_dataset(config.data).items])
    if value == "on":
        logger.info(f"auto: the clips' view moves (median pan {note.get('median_pan', '?')} of the frame side): "
                    f"every candidate sees them stabilized")
    return replace(config, stabilize=value), note


def _check_split(config: TrainConfig) -> None:
    """vidnet's validation split, tried first: data it cannot split is refused at once, not minutes later."""
    scratch = candidate_config(config, FALLBACK_FAMILY, 0.0)
    train_val_split(discover_dataset(scratch.data), scratch.val_fraction, scratch.seed)


def _readout_videos(config: TrainConfig, decode_once, began: bool) -> tuple[dict | None, dict | None]:
    """Decode the training videos once for the read-out(s), within ``READOUT_DECODE_SHARE`` of the time budget.

    Returns the read-outs' settings where they fit on part of the videos (their manifest, ``READOUT_CLIPS_FILE``, and
    the frames per clip sampled; None: every video) and what that holds, for choice.json. A resumed run keeps what
    the interrupted one chose, so its read-outs see the same videos. ``began``: a candidate of this run has begun."""
    clips_file = config.run_dir / READOUT_CLIPS_FILE
    if not config.resume and not began:  # a stale list from a run that stopped before its first candidate
        clips_file.unlink(missing_ok=True)
        clips_file.with_suffix(".json").unlink(missing_ok=True)
    elif config.resume and clips_file.is_file():
        record = json.loads(clips_file.with_suffix(".json").read_text())  # written before the manifest
        return {"data": str(clips_file), "num_frames": record["num_frames"]}, record
    if decode_once is None:
        return None, None
    deadline = time.monotonic() + READOUT_DECODE_SHARE * config.time_budget if config.time_budget > 0 else None
    readouts = [candidate_config(config, f, 0.0) for f in PRETRAINED_FAMILIES]
    reached = decode_once([candidate for candidate in readouts if not _done(candidate, config.resume)], deadline)
    if reached is None:
        return None, None
    videos, total, num_frames = reached
    record = {"videos": len(videos), "of": total, "num_frames": num_frames, "manifest": str(clips_file),
              "why": f"decoding every training video for the read-outs would take over {READOUT_DECODE_SHARE:.0%} "
                     f"of the {config.time_budget:g} s time budget"}
    atomic_write_text(clips_file.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    write_manifest(clips_file, videos)  # last: a resumed run takes the manifest's presence as both written
    logger.info(f"auto: the read-outs fit on the {len(videos)} of {total} training videos decoded within "
                f"{READOUT_DECODE_SHARE:.0%} of the time budget ({clips_file}); vidnet trains on all of them")
    return {"data": str(clips_file), "num_frames": num_frames}, record


VIDNET_INPUT_RULE = ("vidnet sees the frame differences alone, unless a read-out of the frames alone is estimated at "
                     "least halfway from chance to every clip right (then the frames too); the user's --input-mode "
                     "or --search decides where given")


def vidnet_input_mode(config: TrainConfig, results: dict[str, dict]) -> dict | None:
    """vidnet's input mode from the frames' read-out estimate (``VIDNET_INPUT_RULE``), where the user left it unset.

    Shown the frames, vidnet fits what the training clips look like. Where the label is a motion or a path, that is
    what it must not learn: on synthetic motion (seed-1 folds) vidnet scored 0.81 with the frames and 0.91 on the
    differences alone, on air-drawn paths over real scenes (benchmarks/airdraw.py) 0.74 and 0.91. Where the label
    is what is there (push-up form, a posture) the frames help it: 0.82 0.87 0.87 with them, 0.77 0.85 0.78
    without (benchmarks/RESULTS.md, session 18). The frames' read-out already says which kind of task it is, at
    no cost: on pushfit and fight it gets 0.75-0.85 of two classes right; on motion and paths it stays near chance
    (0.08 of 10, 0.30 of 8). The read-out of frames and differences gives that estimate from the frames' statistics
    alone (``frames_accuracy``): the differences would lift it where the label is a motion. Returns None (the user's
    setting, or --search's) or {"input_mode": mode}.
    """
    if config.input_mode is not None or config.search:
        return None
    return {"input_mode": "rgb+diff" if frames_tell_apart(results) else "diff"}


def frames_tell_apart(results: dict[str, dict]) -> bool:
    """Whether the read-out of the frames alone is estimated at least halfway from chance to every clip right."""
    frames = results.get("pretrained") or {}
    accuracy, classes = frames.get("frames_accuracy", frames.get("accuracy")), frames.get("classes")
    return accuracy is not None and bool(classes) and accuracy >= (1 + 1 / classes) / 2


RULE = ("the highest accuracy estimate: the read-out's out-of-fold, vidnet's on its validation split; on equal "
        "estimates the read-out; vidnet when the read-out has no out-of-fold estimate; the read-out where most clips "
        "have a near-copy, the data names no groups and the frames alone tell the classes apart (vidnet's validation "
        "then holds near-copies of its training clips), where vidnet's validation split holds under 2 clips per "
        "class, and where vidnet was not trained (under a quarter of the time budget left)")


def choose(results: dict[str, dict]) -> str:
    """``RULE``: each result's ``accuracy`` (None: no estimate) over ``clips``.

    Where ``near_copy_warning`` speaks, vidnet's validation clips have near-copies among its training clips, and
    vidnet, which fits its training clips, is scored as if it had seen them (pushfit, a whole-folder run: 0.889 on
    36 validation clips against the read-out's 0.879 out-of-fold). Across recordings (pushfit grouped by look-alike
    clips, 3 folds, two seeds) the read-out scored 0.634 where vidnet on the frames scored 0.595; on random folds the
    two are level (benchmarks/RESULTS.md, sessions 24-25). So there, where the frames tell the classes apart (vidnet
    then sees them too, ``vidnet_input_mode``), the read-out is kept; where they do not (a motion or a path) the
    estimates still decide, since the read-out cannot see such labels.
    """
    return _choice(results)[0]


def _choice(results: dict[str, dict]) -> tuple[str, str]:
    """``choose``'s family, and the clause of ``RULE`` that kept it, in words (choice.json, the card, the log)."""
    estimated = [f for f in PRETRAINED_FAMILIES if (results.get(f) or {}).get("accuracy") is not None]
    if not estimated:
        return FALLBACK_FAMILY, "the read-out has no out-of-fold estimate"
    best = max(estimated, key=lambda f: results[f]["accuracy"])  # the first of equals
    vidnet = results.get("scratch") or {}
    if vidnet.get("accuracy") is None:
        return best, "vidnet was not trained" if vidnet.get("skipped") else "vidnet has no validation estimate"
    if vidnet["accuracy"] <= results[best]["accuracy"]:
        return best, "the highest estimate" if vidnet["accuracy"] < results[best]["accuracy"] else "equal estimates"
    if vidnet.get("clips", 0) < MIN_VAL_CLIPS_PER_CLASS * (results[best].get("classes") or 0):
        return best, f"vidnet's validation split holds under {MIN_VAL_CLIPS_PER_CLASS} clips per class"
    if near_copy_warning(results) is not None and frames_tell_apart(results):
        return best, "near-copies flatter vidnet's validation and the frames tell the classes apart"
    return "scratch", "the highest estimate"


MIN_VAL_CLIPS_PER_CLASS = 2
"""vidnet's validation estimate is weighed against the read-out's only from this many validation clips per class
(a 16-clip set's 2 validation clips, of one class, read 1.000 for a constant answer)."""

NEAR_COPY_SIMILARITY = 0.9
"""Median nearest-neighbour similarity of the clips' frame features (``readout.frames_similarity``) from which most
clips have a near-copy (pushfit 0.96, folds 0.92-0.95; fight 0.81, folds 0.76-0.83; synthetic 0.53: sessions 15, 32)."""


def near_copy_warning(results: dict[str, dict]) -> str | None:
    """Advice where the data names no groups and most clips have a near-copy among the others (a random validation
    split then flatters vidnet: on pushfit 1.00 and 0.96 where held-out clips gave 0.82 and 0.87); else None."""
    frames = results.get("pretrained") or {}
    similarity = frames.get("nearest_neighbour_similarity")
    if similarity is None or frames.get("grouped") or similarity < NEAR_COPY_SIMILARITY:
        return None
    return (f"most clips have a near-copy among the others (median similarity {similarity:.2f} of ImageNet "
            f"features) and the data names no groups, so validation clips have near-copies in training and the "
            f"estimates above are optimistic, vidnet's most; if the clips come from a few recordings, people or "
            f"sessions, give a CSV manifest path,label,group")


def _skipped_before(run_dir: Path) -> dict[str, str]:
    """family -> why the run in ``run_dir`` (finished, its choice.json written) did not train it."""
    try:
        candidates = json.loads((run_dir / CHOICE_FILE).read_text())["candidates"]
        return {f: c["skipped"] for f, c in candidates.items() if isinstance(c, dict) and c.get("skipped")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


MIN_SCRATCH_SHARE = 0.25
"""vidnet trains only with at least this share of the time budget left after the read-out (it decodes every clip,
then needs epochs); with less, one epoch judged on a handful of validation clips could be kept over the read-out."""


def _too_little_time(family: str, budget: float, total: float, results: dict[str, dict]) -> str | None:
    """Why ``family`` is not trained in the ``budget`` seconds left of ``total`` (None: it is): vidnet, where the
    read-out has an estimate to keep and less than ``MIN_SCRATCH_SHARE`` of the budget is left."""
    readout = any((results.get(f) or {}).get("accuracy") is not None for f in PRETRAINED_FAMILIES)
    if family in PRETRAINED_FAMILIES or total <= 0 or not readout or budget >= MIN_SCRATCH_SHARE * total:
        return None
    return (f"{max(budget, 0):.0f} s of the {total:g} s time budget are left, under the {MIN_SCRATCH_SHARE:.0%} it "
            f"needs (a larger --time-budget trains it)")


def _describe(result: dict) -> str:
    if result.get("skipped"):
        return "not trained"
    if result.get("accuracy") is None:
        return "no estimate"
    return f"{result['accuracy']:.3f} {result['estimate']} over {result['clips']} clips"


def _began(candidate: TrainConfig) -> bool:
    """The candidate's run has saved a training state (its first epoch ended, in this run or an interrupted one)."""
    return candidate.state_path.is_file()


def _done(candidate: TrainConfig, resuming: bool) -> bool:
    """A resumed auto run whose candidate already finished: it is not trained again."""
    return resuming and (candidate.resolved_model_dir / "metrics.json").is_file() and _finished(candidate.resolved_model_dir)


def _finished(model_dir: Path) -> bool:
    """A candidate's model folder holds the metrics of a run that ended (only finalize writes run_seconds)."""
    return "run_seconds" in json.loads((model_dir / "metrics.json").read_text())


def _scores(model_dir: Path) -> dict:
    """A candidate's accuracy estimate: its read-out's out-of-fold accuracy over every training clip where it
    has one, else its validation accuracy; None where it has neither."""
    metrics = json.loads((model_dir / "metrics.json").read_text())
    readout = metrics.get("readout") or {}
    if readout.get("cv_accuracy") is not None:
        accuracy, clips = float(readout["cv_accuracy"]), int(readout["train_clips"])
        estimate = f"out-of-fold ({readout['cv_folds']} folds{', grouped' if readout.get('grouped') else ''})"
    elif metrics.get("val_clips"):
        accuracy, clips, estimate = float(metrics["val_accuracy"]), int(metrics["val_clips"]), "validation"
    else:
        accuracy, clips, estimate = None, 0, "none"
    scores = {"accuracy": accuracy, "clips": clips, "estimate": estimate, "epochs_run": metrics.get("epochs_run"),
              "run_seconds": metrics.get("run_seconds"), "classes": len(metrics.get("train_class_counts") or {})}
    if readout.get("frames_cv_accuracy") is not None:  # a two-stream read-out: the frames' statistics alone
        scores["frames_accuracy"] = float(readout["frames_cv_accuracy"])
    if readout.get("nearest_neighbour_similarity") is not None:
        scores.update(nearest_neighbour_similarity=readout["nearest_neighbour_similarity"],
                      grouped=bool(readout.get("grouped")))
    return scores


def _copy_model(source: Path, dest: Path, record: dict) -> None:
    """RUN_DIR/model: the kept candidate's folder, its metrics noting the choice; a kept read-out gets vidnet as its
    partner where the rule says (``training.partner``, noted in ``record["partner"]``)."""
    from vidlstm.training.partner import write_kept_model  # torch: this module imports without it

    clear_model_folder(dest, source)  # never the whole folder: files of the user's beside an earlier model stay
    shutil.copytree(source, dest, dirs_exist_ok=True)
    metrics = json.loads((dest / "metrics.json").read_text())
    metrics.setdefault("chosen_from_data", {})["family"] = {
        "rule": record["rule"], "chosen": record["chosen"], "clause": record["clause"],
        "scores": {f: c["accuracy"] for f, c in record["candidates"].items()},
        **({"not_trained": skipped} if (skipped := {f: c["skipped"] for f, c in record["candidates"].items()
                                                   if c.get("skipped")}) else {}),
        **({"warning": record["warning"]} if record.get("warning") else {})}
    # The metrics and card (the candidates, their estimates and the choice), the model joined with vidnet if it is to.
    if partner := write_kept_model(source.parent.parent, dest, record["chosen"], record["candidates"], metrics):
        record["partner"] = partner
