"""An exponential moving average of a model's weights: the model a run keeps, less dependent on its last steps.

With a few dozen clips, which epoch scores best on 35 validation clips is noise (fight: best epoch 3 of 18,
83% validation, 67% on new clips). Averaging the weights over the last few hundred steps gives a model
that does not depend on where training stopped, and no validation clip has to choose it.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """``module`` is a copy of the model whose weights follow ``decay``-weighted averages of the model's.

    The decay warms up as (1 + n) / (10 + n) over the first updates (timm, TF), so early, still-random
    weights fade quickly. Buffers (batch-norm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - self.current_decay()
        for ema_param, param in zip(self.module.parameters(), model.parameters()):
            ema_param.lerp_(param.detach(), weight)
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
