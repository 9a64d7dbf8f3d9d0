"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits so softmax(z / T) is calibrated."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fit_temperature(logits: np.ndarray, targets: np.ndarray, max_iter: int = 100) -> float:
    """The T > 0 minimising the NLL of ``softmax(logits / T)`` on (N, C) logits; 1.0 when there is nothing to fit."""
    if len(targets) == 0:
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)  # (N, C)
    y = torch.as_tensor(targets, dtype=torch.long)  # (N,)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # optimise log T so T stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    # Clamp: a perfectly separated validation set pushes T toward 0 (infinite confidence); keep it sane.
    return float(np.clip(log_t.exp().item(), 0.05, 20.0))
