"""Fill the caches training reads: decoded uint8 views per video, and frozen-backbone features per view."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from vidlstm.data.cache import ContentHasher, TensorCache, module_fingerprint
from vidlstm.data.datasets import VideoItem
from vidlstm.data.transforms import frames_to_tensor
from vidlstm.data.views import clip_spec
from vidlstm.logs import log, progress_bar
from vidlstm.models.fold import fold_batch_norms
from vidlstm.training.decode_jobs import DECODE_TIMEOUT, ViewsRequest, decoded_views
from vidlstm.training.distributed import DistContext, barrier


def content_hashes(items: list[VideoItem], cache_root, warn: bool = True) -> list[str | None]:
    """sha256 of every item's file, remembered across runs in ``cache_root/content_hashes.json``.

    None for a file that cannot be read (no permission, vanished, an I/O error): with ``warn`` it gets
    its one warning line here, and ``fill_caches`` reports it as unusable, so training skips it.
    """
    hasher = ContentHasher(Path(cache_root) / "content_hashes.json")
    shas: list[str | None] = []
    for item in items:
        try:
            shas.append(hasher.digest(item.path))
        except OSError as err:
            if warn:
                warn_skipped(item.path, _read_error(err))
            shas.append(None)
    hasher.save()
    return shas


def check_copies(dataset, shas: list[str | None], train_idx, val_idx) -> int:
    """Warn about byte-identical files: under two labels (the data contradicts itself: one of them is mislabelled)
    and under one label on both sides of the validation split (the validation figures are flattered). Each warning
    counts the pairs and names the first; the run goes on, as with any other flaw of a few files. Returns how many
    pairs straddle the split (the metrics record them)."""
    first_of: dict[str, int] = {}
    two_labels, split_copies = [], []
    side = {i: "train" for i in train_idx} | {i: "val" for i in val_idx}
    for i, sha in enumerate(shas):
        if sha is None:
            continue
        j = first_of.setdefault(sha, i)
        if j == i:
            continue
        a, b = dataset.items[j], dataset.items[i]
        if a.label != b.label:
            two_labels.append((a, b))
        elif i in side and j in side and side[i] != side[j]:
            split_copies.append((a, b))
    if two_labels:
        a, b = two_labels[0]
        _warn_once(f"{len(two_labels)} file(s) are byte-identical copies under another label (first: "
                    f"{dataset.relative_name(a)} ({a.label}) and {dataset.relative_name(b)} ({b.label})): one label of "
                    f"each pair is wrong; remove the wrong copy")
    if split_copies:
        a, b = split_copies[0]
        _warn_once(f"{len(split_copies)} clip(s) have a byte-identical copy on the other side of the validation "
                    f"split (first: {dataset.relative_name(a)} and {dataset.relative_name(b)}): validation figures "
                    f"are optimistic; remove the copies, or give them one group in a CSV manifest")
    return len(split_copies)


_SAID: set[str] = set()


def _warn_once(message: str) -> None:
    """A warning about the data, said once per process: `auto` prepares the same clips for each candidate."""
    if message not in _SAID:
        _SAID.add(message)
        log.warning(message)


def _read_error(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, FileNotFoundError):
        return "no such file (removed while the run started)"
    return f"cannot read ({' '.join((err.strerror or str(err)).split())})"


def clip_cache(cache_root, num_frames: int, image_size: int, stabilize: bool = False) -> TensorCache:
    return TensorCache(cache_root, "clips", clip_spec(num_frames, image_size, stabilize))


def feature_cache(cache_root, model) -> TensorCache:
    """The feature cache of ``model``'s backbone: the spec holds everything that changes its features."""
    cfg = model.config
    spec = {
        "backbone": cfg.backbone,
        "weights": module_fingerprint(model.backbone),  # random init, ImageNet or fine-tuned: each its own entries
        "input_mode": cfg.input_mode,
        "keypoints": cfg.keypoints,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "clip": clip_spec(cfg.num_frames, cfg.image_size, cfg.stabilize),
    }
    return TensorCache(cache_root, "features", spec)


def warn_skipped(path, reason: str) -> None:
    """One warning line per input the run leaves out, printed above any progress bar."""
    log.warning("%s: skipped, %s", path, reason)


def cached(cache: TensorCache, sha: str, views: int) -> bool:
    """Whether every view of the file with content ``sha`` is in ``cache`` (a damaged entry is not: it is rebuilt)."""
    return all(cache.has(sha, v) for v in range(views))


def fill_caches(items: list[VideoItem], shas: list[str], ctx: DistContext, *, clips: TensorCache | None,
                encoders: list = (), num_frames: int, image_size: int, views: int, batch_size: int = 8,
                decode_workers: int = 1, decode_timeout: float = DECODE_TIMEOUT, progress: bool = True,
                warn: bool = True, deadline: float | None = None, at_least: int = 0) -> list[bool | None]:
    """Make sure every item has ``views`` cached views in ``clips`` and/or in each feature cache of ``encoders``
    ((feature cache, model) pairs); True per usable item. Each view's camera pan is undone first where the caches'
    specs say their views are stabilized (``clip_spec``): the spec, not the caller, decides what is stored under it.

    ``deadline`` (a ``time.monotonic()`` value): once it has passed and ``at_least`` videos have been decoded,
    the rest are left undecoded, and their entries are None (not reached) instead of False (unusable). The videos
    are decoded in the order of ``items``, so what is reached is a prefix of it.

    Every encoder's features come from the same decoded views, so that models which sample alike (auto's two
    read-outs) decode each video once. Under DDP each rank fills its own slice of
    the items, then all wait, so every rank sees the whole cache. Videos are decoded in ``decode_workers``
    worker processes (0: in this process, with no protection from a decoder that crashes or hangs). A video
    that cannot be decoded, whose decoder crashed or that took over ``decode_timeout`` seconds is skipped,
    with a warning unless ``warn`` is False, rather than stopping the run.
    """
    targets = [c for c in (clips, *(cache for cache, _ in encoders)) if c is not None]
    stabilized = {bool(c.spec.get("stabilize") or c.spec.get("clip", {}).get("stabilize")) for c in targets}
    if len(stabilized) > 1:
        raise ValueError("caches filled from one decode must all hold stabilized views, or none")
    stabilize = stabilized.pop() if stabilized else False
    threads = 1 if decode_workers else 0  # workers share the cores with the CNN: one decoder thread each
    jobs = [ViewsRequest(i, str(items[i].path), shas[i], num_frames, image_size, views, threads, stabilize)
            for i in range(ctx.rank, len(items), ctx.world_size)
            if shas[i] is not None and not all(cached(c, shas[i], views) for c in targets)]
    for cache, encoder in encoders:
        encoder.eval()
        # Said even where the caller quiets per-file warnings (auto's shared read-out decode): it is about the run.
        why = cache.extracted_with_other_settings([job.sha for job in jobs[:64]], views) if jobs else None
        if why and ctx.is_main:
            log.warning("%s: `vidlstm extract` cached these clips' features with other settings (%s); the %d video(s) "
                        "not cached as this run reads them are decoded again", cache.root, why, len(jobs))
    encoders = [(cache, _folded(encoder)) for cache, encoder in encoders] if jobs else []  # none run without jobs
    bar = progress_bar(bool(progress and ctx.is_main and jobs), total=len(jobs), desc="decoding videos", unit="video",
                       dynamic_ncols=True)
    pending_features: list[tuple[str, torch.Tensor]] = []  # (sha, (V, T, S, S, 3) uint8) awaiting the CNN
    results = decoded_views(jobs, decode_workers, decode_timeout) if jobs else iter(())
    reached: set[int] = set()
    for job, frames, reason in results:
        bar.update(1)
        i = job.task_id
        reached.add(i)
        if deadline is not None and len(reached) >= at_least and time.monotonic() >= deadline:
            results.close()  # the decode workers stop; this video's views are still kept below
        if frames is None:
            if warn:
                warn_skipped(items[i].path, reason)
            continue
        if clips is not None:
            for v in range(views):
                clips.put(shas[i], v, {"frames": torch.from_numpy(frames[v])})  # (T, S, S, 3) uint8
        if encoders:
            pending_features.append((shas[i], frames))
            if len(pending_features) * views >= batch_size:
                for cache, encoder in encoders:
                    _encode_and_store(encoder, pending_features, cache, ctx.device)
                pending_features = []
    if pending_features:
        for cache, encoder in encoders:
            _encode_and_store(encoder, pending_features, cache, ctx.device)
    bar.close()
    barrier(ctx)
    usable = [sha is not None and all(cached(c, sha, views) for c in targets) for sha in shas]
    if deadline is not None:  # not decoded before the deadline: not reached (None), rather than unusable
        usable = [None if not ok and sha is not None and i not in reached else ok
                  for i, (ok, sha) in enumerate(zip(usable, shas))]
    return usable


def _folded(model):
    """An eval-mode copy of ``model`` whose frozen backbone has its batch norms folded (models/fold.py: Lite0 at
    224 px extracts ~1.5x as many frames/s); the same features to float rounding, under the same cache spec."""
    backbone = fold_batch_norms(model.backbone, trace=False)[0]  # a copy (or the backbone, if nothing folds)
    return copy.deepcopy(model, memo={id(model.backbone): backbone}).eval()  # the rest copied, the backbone not again


@torch.inference_mode()
def _encode_and_store(model, batch: list[tuple[str, object]], features: TensorCache, device) -> None:
    clips = torch.stack([frames_to_tensor(v) for _, views in batch for v in views]).to(device)  # (N*V, T, 3, S, S)
    feats = model.encode_frames(clips).float().cpu()  # (N*V, T, D)
    k = 0
    for sha, views in batch:
        for v in range(len(views)):
            features.put(sha, v, {"features": feats[k]})  # (T, D)
            k += 1
