"""AdamW over the trainable parameters (no weight decay on biases and normalisation weights), and the
optimizer, schedule, weight average and loss a training loop builds from a TrainConfig."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vidlstm.training.ema import ModelEMA
from vidlstm.training.losses import LRCNLoss, balanced_class_weights
from vidlstm.training.schedule import warmup_cosine_schedule


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            # 1-D tensors are biases and norm scales: decaying them only fights the normalisation.
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel for all parameters; measured ~10x faster steps on CPU than the default for-each path,
    # which matters when the rest of a step is a small LSTM on cached features.
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=True)


@dataclass
class TrainingParts:
    """What one training run steps: the optimizer, its per-step schedule, the weight average (or None) and
    the loss."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: ModelEMA | None
    loss_fn: nn.Module


def training_parts(config, model: nn.Module, targets: np.ndarray, num_classes: int, steps_per_epoch: int,
                   epochs: int) -> TrainingParts:
    """The parts of a run of ``epochs`` epochs of ``steps_per_epoch`` steps on clips of class ``targets``,
    as ``config`` (a TrainConfig) sets them: the final run and every search trial build them alike."""
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    scheduler = warmup_cosine_schedule(optimizer, round(config.warmup_epochs * steps_per_epoch),
                                       epochs * steps_per_epoch)
    ema = ModelEMA(model, config.ema_decay) if config.ema_decay > 0 else None
    weights = balanced_class_weights(targets, num_classes) if config.class_weights else None
    loss_fn = LRCNLoss(weights, config.label_smoothing, config.step_loss_weight, config.causal_loss_weight)
    return TrainingParts(optimizer, scheduler, ema, loss_fn)
