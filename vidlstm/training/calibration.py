"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits so softmax(z / T) is calibrated."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


def succession_smoothing(num_clips: int, num_classes: int) -> float:
    """Label smoothing that makes a validation set of ``num_clips`` claim no more than it shows.

    Fitting T by plain NLL on a validation set the model gets entirely right drives T to 0: every later
    prediction, wrong ones included, then scores 1.000 (measured: pushfit folds, 24 validation clips,
    T = 0.05, test errors at score 1.0). With n clips all right, Laplace's rule of succession puts the
    chance that the next one is right at (n + 1) / (n + 2); targets smoothed by
    alpha = K / ((K - 1)(n + 2)) give the true class exactly that weight. Large sets barely move
    (n = 192, K = 8: alpha = 0.006).
    """
    if num_clips <= 0 or num_classes < 2:
        return 0.0
    return num_classes / ((num_classes - 1) * (num_clips + 2))


def fit_temperature(logits: np.ndarray, targets: np.ndarray, max_iter: int = 100) -> float:
    """The T > 0 minimising the NLL of ``softmax(logits / T)`` on (N, C) logits, against targets smoothed by
    :func:`succession_smoothing` (so a small, fully separated set cannot claim certainty); 1.0 when there is
    nothing to fit."""
    if len(targets) == 0:
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)  # (N, C)
    y = torch.as_tensor(targets, dtype=torch.long)  # (N,)
    smoothing = succession_smoothing(len(y), z.shape[1])
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # optimise log T so T stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y, label_smoothing=smoothing)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(np.clip(log_t.exp().item(), MIN_TEMPERATURE, MAX_TEMPERATURE))
