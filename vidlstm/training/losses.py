"""The training loss: clip cross-entropy plus per-step cross-entropy of the BiLSTM and causal heads."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch import nn


def balanced_class_weights(targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """(C,) weights n / (k * count) (scikit-learn "balanced"); 1.0 for classes absent from ``targets``."""
    weights = np.ones(num_classes, dtype=np.float64)
    present = np.unique(targets)
    weights[present] = compute_class_weight("balanced", classes=present, y=targets)
    return torch.tensor(weights, dtype=torch.float32)


class LRCNLoss(nn.Module):
    """``clip CE + step_weight * per-step CE + causal_weight * causal per-step CE`` (label smoothing, class weights).

    The per-step terms teach every time step to carry the label, which the timeline output and the
    streaming (causal) head rely on; the clip term is what accuracy is measured on. The causal head at
    step t has seen only frames <= t, so its term is weighted (t + 1) / T (``causal_ramp``): asking it
    to name the class from the first frame alone would reward memorising appearance, not motion.
    """

    def __init__(self, class_weights: torch.Tensor | None = None, label_smoothing: float = 0.1,
                 step_weight: float = 0.5, causal_weight: float = 0.5, causal_ramp: bool = True):
        super().__init__()
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)
        self.label_smoothing, self.step_weight, self.causal_weight = label_smoothing, step_weight, causal_weight
        self.causal_ramp = causal_ramp

    def _ce(self, logits: torch.Tensor, targets: torch.Tensor, sample_weights: torch.Tensor | None = None
            ) -> torch.Tensor:
        """Mean cross-entropy, normalised by the total weight (class weight x sample weight) like F.cross_entropy."""
        class_w = None if self.class_weights is None else self.class_weights.to(logits.device)
        if sample_weights is None:
            return F.cross_entropy(logits.float(), targets, weight=class_w, label_smoothing=self.label_smoothing)
        per = F.cross_entropy(logits.float(), targets, weight=class_w, label_smoothing=self.label_smoothing,
                              reduction="none")  # (N,) already scaled by the class weight
        total = sample_weights * (class_w[targets] if class_w is not None else 1.0)  # (N,)
        return (per * sample_weights).sum() / total.sum()

    def forward(self, out, targets: torch.Tensor) -> torch.Tensor:
        """``out``: an LRCNOutput over full-length clips (B, T, ...); targets (B,) class indices."""
        loss = self._ce(out.logits, targets)  # clip logits (B, C)
        steps = out.step_logits.shape[1]
        step_targets = targets.repeat_interleave(steps)  # (B*T,) every step carries the clip's label
        if self.step_weight > 0:
            loss = loss + self.step_weight * self._ce(out.step_logits.flatten(0, 1), step_targets)
        if self.causal_weight > 0 and out.causal_step_logits is not None:
            ramp = None
            if self.causal_ramp:
                ramp = torch.arange(1, steps + 1, device=targets.device, dtype=torch.float32) / steps  # (T,)
                ramp = ramp.repeat(len(targets))  # (B*T,) matching flatten(0, 1) of (B, T, C)
            loss = loss + self.causal_weight * self._ce(out.causal_step_logits.flatten(0, 1), step_targets, ramp)
        return loss
