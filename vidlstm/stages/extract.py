"""The extract stage: fill the frozen-backbone feature cache for DATA ahead of training (`vidlstm extract`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vidlstm.errors import UsageError
from vidlstm.training.config import TrainConfig, check_model_sizes  # torch-free: `vidlstm --help` must not import torch


@dataclass
class ExtractConfig:
    """Which backbone's features to cache. Use the same settings (and seed) as the `train` run that reads
    them, or ``model_dir`` for the model a `finetune --from` run starts from. ``backbone="auto"`` (the default,
    as train's): the features `train`'s default run reads out (the pretrained candidate's, stages/families.py),
    so a later `train DATA --cache DIR` decodes the videos for vidnet alone."""

    data: str
    cache_dir: str
    model_dir: str | None = None  # take the backbone (and frames/size) from this model folder
    backbone: str = "auto"
    pretrained: bool = False
    weights_file: str | None = None
    input_mode: str | None = None  # None: as TrainConfig (rgb+diff; auto's read-out: its own)
    num_frames: int | None = None  # None: from the data, as TrainConfig, so extract and train share cache entries
    image_size: int | None = None  # None: as TrainConfig (48 for vidnet, 112 for ImageNet backbones; auto: 224)
    stabilize: str = "auto"  # as TrainConfig: undo a moving camera's pan where the clips' views move
    views: int = TrainConfig.views
    seed: int = 0
    batch_size: int = 8
    device: str | None = None
    decode_workers: int = 1  # decode processes (a decoder crash costs one file); 0: in this process
    progress: bool = True

    def __post_init__(self):
        if self.decode_workers < 0:
            raise UsageError(f"--decode-workers must be >= 0 (got {self.decode_workers})")
        check_model_sizes(num_frames=self.num_frames, image_size=self.image_size)  # before the data is read
        if self.model_dir:  # they were dropped without a word: the model's own settings decide
            given = [flag for flag, value, default in (
                ("--backbone", self.backbone, "auto"), ("--pretrained", self.pretrained, False),
                ("--weights-file", self.weights_file, None), ("--input-mode", self.input_mode, None),
                ("--frames", self.num_frames, None), ("--image-size", self.image_size, None),
                ("--stabilize", self.stabilize, "auto")) if value != default]
            if given:
                raise UsageError(f"--model {self.model_dir} gives the backbone, frames, image size and input mode of "
                                 f"the features (what `finetune --from` reads); drop {', '.join(given)}")

    def as_training(self) -> TrainConfig:
        """The settings of the `train DATA --cache DIR` run whose features these are (auto: its read-out's)."""
        from vidlstm.stages.families import PRETRAINED_FAMILIES, candidate_config

        from vidlstm.training.search import DEFAULT_INPUT_MODE

        config = TrainConfig(data=self.data, out_dir="", cache_dir=self.cache_dir, backbone=self.backbone,
                             pretrained=self.pretrained, weights_file=self.weights_file, input_mode=self.input_mode,
                             num_frames=self.num_frames, image_size=self.image_size, stabilize=self.stabilize,
                             views=self.views, seed=self.seed, decode_workers=self.decode_workers)
        if config.backbone == "auto":
            return candidate_config(config, PRETRAINED_FAMILIES[0], 0.0)
        config.input_mode = config.input_mode or DEFAULT_INPUT_MODE  # what train trains on without --search
        return config


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
    from vidlstm.data.datasets import discover_dataset, without_empty_files
    from vidlstm.logs import log as logger
    from vidlstm.training.auto import resolve_from_data
    from vidlstm.training.model_setup import model_for_run
    from vidlstm.training.prepare import content_hashes, feature_cache, fill_caches
    from vidlstm.training.run_folder import check_outside

    check_outside(config.data, "--cache", config.cache_dir)  # before it is made
    start = time.perf_counter()
    dataset = without_empty_files(discover_dataset(config.data, min_classes=1))  # as train: empty files fail
    views = config.views
    if config.model_dir:
        model = load_model(config.model_dir, device=ctx.device)
    else:  # the model train builds from the same settings and data, so extract and train share entries
        training = config.as_training()
        resolve_from_data(training, dataset)
        model = model_for_run(training, dataset.labels)[0].to(ctx.device)
        views = training.views
        if training.backbone_mode() != "frozen":  # a random vidnet's features, which no default train reads
            logger.warning(f"`train --backbone {training.backbone}` trains its backbone ({training.backbone_mode()}) "
                           f"and decodes its clips; it reads these features only with --train-backbone frozen")
    shas = content_hashes(dataset.items, config.cache_dir)
    cache = feature_cache(config.cache_dir, model)
    before = sum(all(cache.entry_path(s, v).exists() for v in range(views)) for s in shas if s is not None)
    usable = fill_caches(dataset.items, shas, ctx, clips=None, encoders=[(cache, model)],
                         num_frames=model.config.num_frames, image_size=model.config.image_size, views=views,
                         batch_size=config.batch_size, decode_workers=config.decode_workers, progress=config.progress)
    if ctx.is_main:
        cache.record_extracted(views)  # a train run that reads other settings says why it decodes again
    # Entries named like videos that are no files (FIFOs, link loops) count as failed: listed, never opened.
    failed = ([dataset.relative_name(entry) for entry in dataset.skipped]
              + [dataset.relative_name(item) for item, ok in zip(dataset.items, usable) if not ok])
    videos = len(dataset.items) + len(dataset.skipped)
    return ExtractSummary(Path(config.cache_dir), cache.folder, videos, before, failed,
                          time.perf_counter() - start)
