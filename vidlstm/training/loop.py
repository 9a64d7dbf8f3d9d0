"""One training epoch and one evaluation pass: plain functions over a model, a loader and a device."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from vidlstm.logs import bar_disabled
from vidlstm.training.distributed import DistContext, all_reduce_sum


class InputAdapter(nn.Module):
    """Calls the LRCN on frames (end-to-end) or on cached features, so DDP can wrap either as one module."""

    def __init__(self, model: nn.Module, from_features: bool):
        super().__init__()
        self.model, self.from_features = model, from_features

    def forward(self, x: torch.Tensor):
        # x: (B, T, D) cached features or (B, T, 3, H, W) frames in [0, 1]
        return self.model.forward_features(x) if self.from_features else self.model(x)


def _autocast(device: torch.device, amp: bool):
    # AMP on CUDA only: CPU autocast (bfloat16) is slower than float32 on most CPUs and hurts the LSTM.
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return nullcontext()


def train_one_epoch(net: nn.Module, loader, loss_fn: nn.Module, optimizer, scheduler, ctx: DistContext, *,
                    scaler: torch.amp.GradScaler | None = None, grad_clip: float = 1.0, amp: bool = False,
                    desc: str = "train", progress: bool = True, after_step=None, mixup: float = 0.0,
                    mixup_seed=None) -> dict:
    """One pass over ``loader`` (optimizer and scheduler stepped per batch); mean loss and accuracy over all ranks.

    ``after_step()`` is called after every optimizer step (the weight average follows the model there).
    ``mixup`` > 0: each batch is blended with a shuffled copy of itself, ``lam * x + (1 - lam) * x[perm]`` with
    ``lam ~ Beta(mixup, mixup)`` (the same blend on every frame, so each clip's own motion stays), and the loss
    is blended alike; drawn from ``numpy.random.default_rng(mixup_seed)`` so a resumed epoch repeats them."""
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    loss_sum, correct, count = 0.0, 0.0, 0.0
    bar = tqdm(loader, desc=desc, leave=False, disable=bar_disabled(progress and ctx.is_main), dynamic_ncols=True)
    rng = np.random.default_rng(mixup_seed) if mixup > 0 else None
    for x, y in bar:
        x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
        mixed = rng is not None and len(y) > 1
        if mixed:
            lam = float(rng.beta(mixup, mixup))
            perm = torch.from_numpy(rng.permutation(len(y))).to(ctx.device)
            x = x.mul(lam).add_(x[perm], alpha=1.0 - lam)  # (B, ...) two clips blended frame by frame
        with _autocast(ctx.device, amp):
            out = net(x)
            loss = loss_fn(out, y)
            if mixed:
                loss = lam * loss + (1.0 - lam) * loss_fn(out, y[perm])
        if mixed and lam < 0.5:
            y = y[perm]  # the accuracy counts the larger share's label
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        batch = len(y)
        loss_sum += float(loss.detach()) * batch
        correct += float((out.logits.detach().argmax(dim=1) == y).sum())
        count += batch
        bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.2f}")
    loss_sum, correct, count = all_reduce_sum(ctx, [loss_sum, correct, count])
    return {"train_loss": loss_sum / max(count, 1), "train_acc": correct / max(count, 1)}


@torch.inference_mode()
def evaluate(net: nn.Module, loader, device: torch.device, amp: bool = False) -> dict:
    """Clip logits (N, C) and targets (N,) over ``loader``, with the plain (unsmoothed, unweighted) clip NLL
    as ``val_loss`` and accuracy as ``val_acc``."""
    net.eval()
    all_logits, all_targets = [], []
    for x, y in loader:
        with _autocast(device, amp):
            out = net(x.to(device))
        all_logits.append(out.logits.float().cpu())  # (B, C)
        all_targets.append(y)
    if not all_logits:
        return {"logits": np.zeros((0, 0), np.float32), "targets": np.zeros(0, np.int64),
                "val_loss": float("nan"), "val_acc": float("nan")}
    logits, targets = torch.cat(all_logits), torch.cat(all_targets)
    return {
        "logits": logits.numpy(),
        "targets": targets.numpy(),
        "val_loss": float(F.cross_entropy(logits, targets)),
        "val_acc": float((logits.argmax(dim=1) == targets).float().mean()),
    }
