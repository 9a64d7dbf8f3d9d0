"""Fill the caches training reads: decoded uint8 views per video, and frozen-backbone features per view."""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from vidlstm.data.cache import ContentHasher, TensorCache, module_fingerprint
from vidlstm.data.datasets import VideoItem
from vidlstm.data.views import clip_spec, decode_views
from vidlstm.data.transforms import frames_to_tensor
from vidlstm.errors import VidlstmError
from vidlstm.training.distributed import DistContext, barrier


def content_hashes(items: list[VideoItem], cache_root) -> list[str]:
    """sha256 of every item's file, remembered across runs in ``cache_root/content_hashes.json``."""
    hasher = ContentHasher(Path(cache_root) / "content_hashes.json")
    shas = [hasher.digest(item.path) for item in items]
    hasher.save()
    return shas


def clip_cache(cache_root, num_frames: int, image_size: int) -> TensorCache:
    return TensorCache(cache_root, "clips", clip_spec(num_frames, image_size))


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
        "clip": clip_spec(cfg.num_frames, cfg.image_size),
    }
    return TensorCache(cache_root, "features", spec)


def _has_all_views(cache: TensorCache, sha: str, views: int) -> bool:
    return all(cache.has(sha, v) for v in range(views))  # a damaged entry is rebuilt


def _decode_job(path: str, sha: str, num_frames: int, image_size: int, views: int, in_worker: bool = True):
    """Decode one video's views; in a worker process with one thread, so workers do not oversubscribe the cores."""
    if in_worker:
        torch.set_num_threads(1)
    try:
        return decode_views(path, sha, num_frames, image_size, views, threads=1), None
    except (VidlstmError, OSError, RuntimeError, ValueError) as err:
        return None, " ".join(str(err).split())


def _decoded_views(jobs, num_frames, image_size, views, decode_workers):
    """Yield (index, views array or None, error or None) for each (index, path, sha) job, in any order."""
    if decode_workers <= 0:
        for i, path, sha in jobs:
            frames, error = _decode_job(str(path), sha, num_frames, image_size, views, in_worker=False)
            yield i, frames, error
        return
    # spawn: forking a process that already runs torch threads can deadlock.
    with futures.ProcessPoolExecutor(decode_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(_decode_job, str(path), sha, num_frames, image_size, views): i for i, path, sha in jobs}
        for done in futures.as_completed(pending):
            frames, error = done.result()
            yield pending[done], frames, error


def fill_caches(items: list[VideoItem], shas: list[str], ctx: DistContext, *, clips: TensorCache | None,
                features: TensorCache | None = None, model=None, num_frames: int, image_size: int, views: int,
                batch_size: int = 8, decode_workers: int = 0, progress: bool = True) -> list[bool]:
    """Make sure every item has ``views`` cached views in ``clips`` and/or ``features``; True per usable item.

    Under DDP each rank fills its own slice of the items, then all wait, so every rank sees the whole cache.
    A video that cannot be decoded is skipped with a warning rather than stopping the run.
    """
    targets = [c for c in (clips, features) if c is not None]
    jobs = [(i, items[i].path, shas[i]) for i in range(ctx.rank, len(items), ctx.world_size)
            if not all(_has_all_views(c, shas[i], views) for c in targets)]
    if features is not None:
        model.eval()
    bar = tqdm(total=len(jobs), desc="decoding videos", disable=not (progress and ctx.is_main and jobs),
               dynamic_ncols=True)
    pending_features: list[tuple[str, torch.Tensor]] = []  # (sha, (V, T, S, S, 3) uint8) awaiting the CNN
    for i, frames, error in _decoded_views(jobs, num_frames, image_size, views, decode_workers):
        bar.update(1)
        if frames is None:
            tqdm.write(f"warning: {items[i].path}: skipped, cannot decode ({error})", file=sys.stderr)
            continue
        if clips is not None:
            for v in range(views):
                clips.put(shas[i], v, {"frames": torch.from_numpy(frames[v])})  # (T, S, S, 3) uint8
        if features is not None:
            pending_features.append((shas[i], frames))
            if len(pending_features) * views >= batch_size:
                _encode_and_store(model, pending_features, features, ctx.device)
                pending_features = []
    if pending_features:
        _encode_and_store(model, pending_features, features, ctx.device)
    bar.close()
    barrier(ctx)
    return [all(_has_all_views(c, sha, views) for c in targets) for sha in shas]


@torch.inference_mode()
def _encode_and_store(model, batch: list[tuple[str, object]], features: TensorCache, device) -> None:
    clips = torch.stack([frames_to_tensor(v) for _, views in batch for v in views]).to(device)  # (N*V, T, 3, S, S)
    feats = model.encode_frames(clips).float().cpu()  # (N*V, T, D)
    k = 0
    for sha, views in batch:
        for v in range(len(views)):
            features.put(sha, v, {"features": feats[k]})  # (T, D)
            k += 1
