"""The extract stage: fill the frozen-backbone feature cache for DATA ahead of training (`vidlstm extract`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vidlstm.errors import UsageError
from vidlstm.training.config import TrainConfig  # torch-free: `vidlstm --help` must not import torch


@dataclass
class ExtractConfig:
    """Which backbone's features to cache. Use the same settings (and seed) as the `train` run that reads
    them, or ``model_dir`` for the model a `finetune --from` run starts from."""

    data: str
    cache_dir: str
    model_dir: str | None = None  # take the backbone (and frames/size) from this model folder
    backbone: str = "vidnet"
    pretrained: bool = False
    weights_file: str | None = None
    input_mode: str = "rgb+diff"
    num_frames: int | None = None  # None: from the data, as TrainConfig, so extract and train share cache entries
    image_size: int | None = None  # None: as TrainConfig (48 for vidnet, 112 for ImageNet backbones)
    views: int = TrainConfig.views
    seed: int = 0
    batch_size: int = 8
    device: str | None = None
    decode_workers: int = 1  # decode processes (a decoder crash costs one file); 0: in this process
    progress: bool = True

    def __post_init__(self):
        if self.image_size is None:
            self.image_size = TrainConfig(data="", out_dir="", backbone=self.backbone).image_size
        if self.decode_workers < 0:
            raise UsageError(f"--decode-workers must be >= 0 (got {self.decode_workers})")


@dataclass
class ExtractSummary:
    cache_dir: Path
    feature_folder: Path
    videos: int
    already_cached: int
    failed: list[str]
    seconds: float


def run(config: ExtractConfig) -> ExtractSummary:
    from vidlstm.training.distributed import cleanup, init_distributed

    ctx = init_distributed(config.device)  # under torchrun, each rank extracts its slice of the videos
    try:
        return _extract(config, ctx)
    finally:
        cleanup(ctx)


def _extract(config: ExtractConfig, ctx) -> ExtractSummary:
    from vidlstm.checkpoint import load_model
    from vidlstm.data.datasets import discover_dataset
    from vidlstm.training.auto import auto_num_frames
    from vidlstm.training.model_setup import fresh_model, keypoint_settings
    from vidlstm.training.prepare import content_hashes, feature_cache, fill_caches

    start = time.perf_counter()
    dataset = discover_dataset(config.data, min_classes=1)
    if config.model_dir:
        model = load_model(config.model_dir, device=ctx.device)
    else:
        defaults = TrainConfig(data="", out_dir="", backbone=config.backbone)  # train's settings: shared entries
        num_frames = config.num_frames or auto_num_frames([item.path for item in dataset.items])[0]
        model = fresh_model(dataset.labels, seed=config.seed, weights_file=config.weights_file,
                            backbone=config.backbone, pretrained=config.pretrained, input_mode=config.input_mode,
                            num_frames=num_frames, image_size=config.image_size,
                            **keypoint_settings(config.backbone, defaults.keypoint_stage,
                                                defaults.centred_keypoints)).to(ctx.device)
    shas = content_hashes(dataset.items, config.cache_dir)
    cache = feature_cache(config.cache_dir, model)
    before = sum(all(cache.entry_path(s, v).exists() for v in range(config.views)) for s in shas if s is not None)
    usable = fill_caches(dataset.items, shas, ctx, clips=None, encoders=[(cache, model)],
                         num_frames=model.config.num_frames, image_size=model.config.image_size, views=config.views,
                         batch_size=config.batch_size, decode_workers=config.decode_workers, progress=config.progress)
    # Entries named like videos that are no files (FIFOs, link loops) count as failed: listed, never opened.
    failed = ([dataset.relative_name(entry) for entry in dataset.skipped]
              + [dataset.relative_name(item) for item, ok in zip(dataset.items, usable) if not ok])
    videos = len(dataset.items) + len(dataset.skipped)
    return ExtractSummary(Path(config.cache_dir), cache.folder, videos, before, failed,
                          time.perf_counter() - start)
