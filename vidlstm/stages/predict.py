"""The predict stage: classify every video under some paths into a resumable JSONL/CSV file, one record per file."""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from vidlstm.batch.decode import decode_request
from vidlstm.batch.discover import find_videos
from vidlstm.batch.engine import EngineOptions, EngineStats, predict_records
from vidlstm.batch.record_lines import rebased
from vidlstm.batch.records import (RecordFile, file_changed, file_stamp, output_target, record_format, record_keyer,
                                   recorded_stamp, sort_and_dedup, stamp_record)
from vidlstm.batch.run_settings import check_and_keep, record_settings, records_base
from vidlstm.batch.shard import PART_NAME, part_of, resolve_shard, select_shard
from vidlstm.defaults import available_cores
from vidlstm.errors import UsageError
from vidlstm.logs import log, progress_bar

MAX_LISTED_FAILURES = 20
MAX_WORKERS = 256
ENGINES = ("local", "ray")


DECODE_CPU_SECONDS_PER_FRAME = 0.015
"""Sparse keyframe-snapped decoding of one sampled frame, CPU seconds: measured 0.12 s per 8-frame and
0.25 s per 16-frame clip on the benchmark mix (H.264, 320x240 to 1280x720; benchmarks/RESULTS.md)."""


def default_workers(device: str = "cpu", cnn_seconds_per_clip: float | None = None, num_frames: int = 16) -> int:
    """Decode processes when --workers is not given.

    With a GPU doing the CNN, every core but one decodes. On a CPU, decoders and the CNN share the cores:
    each gets the share of them its CPU time per clip asks for (``cnn_seconds_per_clip`` measured on one
    thread, decoding estimated from ``num_frames``). Measured on 2 cores: a vidnet model (8
    frames, 64 px, ~0.01 s of CNN per clip) runs 1.5x faster with 2 workers than 1; resnet18 (16 frames at
    112 px, ~0.25 s) is as fast or faster with 1 under load. Without a measurement: half the cores.
    """
    cores = available_cores()
    if str(device).startswith("cuda"):
        return max(1, cores - 1)
    if cnn_seconds_per_clip is None:
        return max(1, cores // 2)
    decode = DECODE_CPU_SECONDS_PER_FRAME * num_frames
    return min(cores, max(1, round(cores * decode / (decode + cnn_seconds_per_clip))))


def cnn_seconds_per_clip(predictor) -> float:
    """CPU seconds the model takes for one clip on one thread (a warm-up pass, then one timed pass)."""
    import torch

    cfg = predictor.config
    clip = torch.zeros(1, cfg.num_frames, 3, cfg.image_size, cfg.image_size)  # (1, T, 3, S, S)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            predictor.model(clip)
            start = time.process_time()
            predictor.model(clip)
            return time.process_time() - start
    finally:
        torch.set_num_threads(threads)


def default_torch_threads(workers: int) -> int:
    """CNN threads on a CPU: the cores the decode workers leave free, at least one.

    Measured here (2 cores, one busy decoder): resnet18 runs 65 frames/s on 1 thread but 26-34 on 2,
    because an OpenMP thread sharing its core with a decoder keeps the other one waiting at every barrier.
    """
    return max(1, available_cores() - workers)


@dataclass
class PredictConfig:
    """One `vidlstm predict` run."""

    inputs: list[str]
    """Video files and/or directories."""
    output: str
    """The record file, .jsonl or .csv (a shard writes OUT.partI-of-N.SUFFIX beside it)."""
    model_dir: str | None = None
    """Model folder (None: the shipped default model)."""
    device: str | None = None
    """"cpu", "cuda", "cuda:1" ... (None: cuda if available; under torchrun cuda:LOCAL_RANK)."""
    recursive: bool = False
    """Also look in sub-directories of directory inputs."""
    workers: int | None = None
    """Decode processes; None = default_workers(). 0 counts as 1: a batch run always decodes in a worker
    process, so a decoder that crashes or hangs costs its file, never the run (and the records before it)."""
    batch_size: int = 4
    """Clips per forward pass."""
    timeout: float = 60.0
    """Seconds a decoder may go silent on one file before that file fails and the worker is replaced."""
    top_k: int = 5
    """Labels kept per record."""
    timeline: bool = False
    """Sample the whole video at ``timeline_fps`` and add per-segment labels."""
    timeline_fps: float = 2.0
    """Frames per second of video looked at in timeline mode."""
    min_score: float = 0.0
    """Label a clip 'unknown' when its best calibrated score is below this (0: always guess)."""
    explain_dir: str | None = None
    """Write each clip's explanation (attention per frame JSON + PNG strip) into this folder."""
    retry_errors: bool = False
    """Process again the files whose earlier record is an error (the new record replaces it)."""
    shard: str | None = None
    """"I/N": process only shard I of N (else RANK/WORLD_SIZE under torchrun, else everything)."""
    threads: int = 0
    """torch CPU threads for the CNN (0: default_torch_threads(workers))."""
    progress: bool = True
    """Show a progress bar on a terminal."""
    backends: tuple[str, ...] | None = None
    """Decoder backends to try, in order (None: vidlstm.io's default chain)."""
    exact_frames: bool = False
    """Take each segment's centre frame; False (default): the frame that makes the clip cheapest to decode."""
    engine: str = "local"
    """"local" (this machine's decode workers) or "ray" (Ray Data actors; ``workers`` is then the actor count)."""
    address: str | None = None
    """Ray cluster to join with engine "ray" ("auto", "HOST:PORT"); None: the one joined, else a local one."""

    def __post_init__(self):
        if not self.inputs:
            raise UsageError("no input paths given")
        record_format(self.output)  # UsageError for a suffix that is neither .jsonl nor .csv
        if self.engine not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)} (got {self.engine!r})")
        if self.address is not None and self.engine != "ray":
            raise UsageError("--address is for --engine ray")
        from vidlstm.io.registry import requested_backends

        requested_backends(self.backends)  # a misspelt --backends (or $VIDLSTM_BACKENDS): exit 2, nothing written
        # Bounded like every size from outside: --workers 1000000 would start a million processes.
        checks = {"batch_size": 1 <= self.batch_size <= 4096, "top_k": self.top_k >= 1,
                  "timeout": 0 < self.timeout < math.inf, "timeline_fps": 0 < self.timeline_fps <= 1000,
                  "workers": self.workers is None or 0 <= self.workers <= MAX_WORKERS}
        for name, ok in checks.items():
            if not ok:
                raise UsageError(f"--{name.replace('_', '-')} out of range (got {getattr(self, name)})")


@dataclass
class PredictSummary:
    """What a run did: counts, where it wrote, and the failures of this run."""

    output: Path
    files: int = 0  # videos in this run's file list (its shard, when sharded)
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # already in the output from an earlier run
    skipped_failed: int = 0  # of the skipped, those whose earlier record is an error
    changed: int = 0  # recorded by an earlier run, but the file changed since (size or time): classified again
    seconds: float = 0.0
    workers: int = 0
    repaired_bytes: int = 0  # torn last line of an interrupted earlier run, dropped
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), the first few
    unsorted_reason: str | None = None  # why the finished output was left in the order appended (read-only folder ...)
    unlisted: int = 0  # folders that could not be listed: their videos were left out
    settings_kept: bool = True  # False: the output's folder cannot be written, so no settings file is beside it
    stats: EngineStats = field(default_factory=EngineStats)

    @property
    def exit_code(self) -> int:
        """1 when any file of the list has an error record (now or from an earlier run) or a folder could not be
        listed, else 0."""
        return 1 if self.failed or self.skipped_failed or self.unlisted else 0


def _has_subfolders(path: Path) -> bool:
    try:
        return path.is_dir() and any(child.is_dir() for child in path.iterdir())
    except OSError:
        return False


def _resolve_device(device: str | None) -> str:
    import torch

    if device:
        return "cpu" if str(device).split(":")[0] == "cpu" else device  # cpu:0 is the CPU, sized as such
    if torch.cuda.is_available():
        # Under torchrun each local rank takes its own GPU.
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def run(config: PredictConfig, decode_fn=decode_request) -> PredictSummary:
    """Classify the files of ``config`` into its output file; files already recorded there are skipped."""
    from vidlstm.defaults import configure_torch_threads
    from vidlstm.inference import Predictor, make_annotator

    start = time.perf_counter()
    if config.engine == "ray":
        from vidlstm.batch.ray_engine import import_ray

        import_ray()  # exit 2 with how to install it, before anything is read or written
    shard = resolve_shard(config.shard)
    unlisted: list[str] = []  # folders that cannot be listed: left out, named, the exit code says so
    files = select_shard(find_videos(config.inputs, recursive=config.recursive, unlisted=unlisted), shard)
    for reason in unlisted:
        print(f"vidlstm predict: warning: {reason}; its videos are left out (fix it and re-run to add them)",
              file=sys.stderr)
    if shard is not None and part_of(config.output):  # p.part0-of-2.part0-of-2.jsonl
        whole = PART_NAME.sub("", Path(config.output).stem) + Path(config.output).suffix
        raise UsageError(f"{config.output}: names a part file already; with a shard give the whole output's name "
                         f"(e.g. {Path(config.output).with_name(whole)}): each shard writes its part beside it")
    # --shard 0/1 too: a job script's N may be 1, and its `vidlstm merge OUT.part*-of-N.SUFFIX` finds the one part.
    output = shard.part_path(config.output) if shard is not None else Path(config.output)
    if not files and (shard is None or shard.count == 1) and not unlisted:
        nested = not config.recursive and any(_has_subfolders(Path(p)) for p in config.inputs)
        hint = " (add --recursive to look in sub-directories)" if nested else ""
        raise UsageError(f"no video files found in {', '.join(map(str, config.inputs))}{hint}")
    device = _resolve_device(config.device)
    predictor = Predictor.from_dir(config.model_dir, device=device)  # fail on a bad model before touching output
    annotate = make_annotator(predictor, config.min_score, config.explain_dir)  # checks --min-score up front
    if config.engine == "ray":
        return _run_on_ray(config, files, output, device, start, len(unlisted))
    predictor.fold_batch_norm()
    if config.workers is not None:
        workers = max(1, config.workers)  # never in-process: "one broken file never stops the run"
    elif device == "cpu":
        workers = default_workers(device, cnn_seconds_per_clip(predictor), predictor.config.num_frames)
    else:
        workers = default_workers(device)
    if device == "cpu" or config.threads:
        configure_torch_threads(config.threads or default_torch_threads(workers))
    summary = PredictSummary(output=output, files=len(files), workers=workers, unlisted=len(unlisted))
    options = EngineOptions(top_k=config.top_k, batch_size=config.batch_size, workers=workers,
                            timeout=config.timeout, timeline_fps=config.timeline_fps if config.timeline else None,
                            backends=config.backends, exact_frames=config.exact_frames)
    _write_records(config, files, summary, lambda todo: predict_records(predictor, todo, options, decode_fn=decode_fn,
                                                                        stats=summary.stats, annotate=annotate),
                   _settings(config))
    summary.seconds = time.perf_counter() - start
    return summary


def _run_on_ray(config: PredictConfig, files, output: Path, device: str, start: float,
                unlisted: int = 0) -> PredictSummary:
    """The same run with Ray Data actors computing the records (vidlstm.batch.ray_engine)."""
    from vidlstm.batch.ray_engine import connect, default_actors, ray_records

    summary = PredictSummary(output=output, files=len(files), workers=0, unlisted=unlisted)
    options = EngineOptions(top_k=config.top_k, batch_size=config.batch_size, workers=1, timeout=config.timeout,
                            timeline_fps=config.timeline_fps if config.timeline else None, backends=config.backends,
                            exact_frames=config.exact_frames)
    model_dir = _model_dir(config)

    def compute(todo):  # called only where files are left to do: a finished run starts no cluster (~10 s)
        connect(config.address)
        summary.workers = config.workers or default_actors()
        return ray_records(todo, options, model_dir=model_dir.resolve(), device=device, min_score=config.min_score,
                           explain_dir=config.explain_dir, actors=summary.workers)

    _write_records(config, files, summary, compute, _settings(config))
    summary.seconds = time.perf_counter() - start
    return summary


def _warn_of_twins(output, earlier, new_paths: list[str], stamps: dict) -> None:
    """Say where files new to the output have the name, size and time of files recorded under other paths: the
    same videos reached another way (the data moved or mounted elsewhere, an older vidlstm's output resumed from
    another folder), which this run classifies again and the output will hold twice."""
    recorded = {(os.path.basename(r["path"]), stamp): r["path"] for r in earlier
                if (stamp := recorded_stamp(r)) is not None}
    twins = [(path, recorded[(os.path.basename(path), stamps[path])]) for path in new_paths
             if stamps.get(path) is not None and (os.path.basename(path), stamps[path]) in recorded]
    if twins:
        print(f"vidlstm predict: warning: {output}: {len(twins)} file(s) new to it have the name, size and time of "
              f"a file recorded under another path ({twins[0][0]} and {twins[0][1]}): they are classified again and "
              f"held twice; if they are the same videos reached another way, stop (Ctrl-C) and run from where the "
              f"output's first run started, on the same paths", file=sys.stderr)


def _rebase(record: dict, base: str) -> None:
    """A record of this run, its relative paths (the video's, its explanation's) made relative to ``base``, the
    output's first run's folder; the video's through its real folder (``lnk/../v``: where ``lnk`` leads)."""
    record["path"] = rebased(record["path"], os.getcwd(), base)
    if isinstance(record.get("explanation"), str) and not os.path.isabs(record["explanation"]):
        record["explanation"] = os.path.relpath(os.path.abspath(record["explanation"]), base)


def _model_dir(config: PredictConfig) -> Path:
    from vidlstm.defaults import default_model_dir

    return Path(config.model_dir) if config.model_dir else default_model_dir()


def _settings(config: PredictConfig) -> dict:
    return record_settings(_model_dir(config), config.top_k, config.timeline_fps if config.timeline else None,
                           config.min_score, config.exact_frames, config.explain_dir is not None)


def _write_records(config: PredictConfig, files, summary: PredictSummary, compute, settings: dict) -> None:
    """Skip the files already recorded in the output, append a record per file ``compute(todo)`` yields, sort.

    ``settings``: what shapes this run's records (``run_settings``); an output made with others is refused."""
    with RecordFile(summary.output) as out:
        records = out.open()
        warnings, summary.settings_kept = check_and_keep(summary.output, output_target(summary.output), settings,
                                                         bool(records))
        for warning in warnings:
            print(f"vidlstm predict: warning: {warning}", file=sys.stderr)
        # Relative paths are the first run's: `v/a.mp4` and `$PWD/v/a.mp4` are one file, in one run and across a
        # resume, and so is `../v/a.mp4` in a run resumed from a sub-folder, which records it as `v/a.mp4`.
        base = records_base(output_target(summary.output))
        recorded, key = record_keyer(base), record_keyer()  # a record's path, and a path this run was given
        # Stamped before any decoding: a file changed during the run differs from its record at the next resume.
        stamps = {f.path: file_stamp(f.path) for f in files}
        now = {key(f.path): stamps[f.path] for f in files}  # a file replaced by an older one keeps its new record
        earlier = {recorded(r["path"]): r for r in sort_and_dedup(records, base, now.get)}
        summary.repaired_bytes = out.repaired_bytes
        changed = {f.path for f in files
                   if key(f.path) in earlier and file_changed(earlier[key(f.path)], stamps[f.path])}
        redo = {"error"} if config.retry_errors else set()
        status = {f.path: earlier[key(f.path)].get("status") if key(f.path) in earlier else None for f in files}
        todo = [f.path for f in files if status[f.path] is None or status[f.path] in redo or f.path in changed]
        summary.skipped = len(files) - len(todo)
        summary.changed = len(changed)
        summary.skipped_failed = sum(status[p] == "error" and "error" not in redo and p not in changed for p in status)
        _warn_of_twins(summary.output, earlier.values(), [p for p in todo if status[p] is None], stamps)
        bar = progress_bar(config.progress, total=len(todo), unit="file", desc="predict", dynamic_ncols=True)
        with bar:
            appended = []  # their stamps, which an older CSV layout has no columns for until the final rewrite
            for record in compute(todo) if todo else ():
                appended.append(stamps.get(record["path"]))
                stamp_record(record, appended[-1])
                if base != os.getcwd():
                    _rebase(record, base)
                out.append(record)
                log.debug("%s: %s", record["path"], f"{record['label']} {record['score']:.3f} ({record.get('decoder')}, "
                          f"{record.get('frames')} frames, {record.get('seconds') or 0:.2f} s)"
                          if record["status"] == "ok" else f"error: {record.get('error')}")
                if record["status"] == "ok":
                    summary.ok += 1
                else:
                    summary.failed += 1
                    if len(summary.failures) < MAX_LISTED_FAILURES:
                        summary.failures.append((record["path"], record.get("error") or ""))
                    bar.set_postfix(failed=summary.failed, refresh=False)
                bar.update(1)
        # Finished: the file's final form is sorted by path with one record per file, like a merged run.
        out.rewrite_sorted(base, appended, now.get)
        summary.unsorted_reason = out.unsorted_reason
