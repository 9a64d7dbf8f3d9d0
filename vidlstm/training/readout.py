"""The statistics read-out (``clip_head="stats"``) fitted as a logistic regression with a strong L2.

On frozen ImageNet features a few dozen clips are far fewer than the 3 x 1280 statistics a clip is described
by. Trained by the epoch loop (AdamW's weak decoupled decay, dropout, 80% of the clips) the read-out scored
fight 0.713 and pushfit 0.769; a logistic regression on the same statistics with an L2 as strong as
``C = 0.01`` scored 0.79 and 0.84 (benchmarks/RESULTS.md, "A pretrained backbone"). So at the end of a run
the read-out is refitted exactly that way, on every training clip (every cached view of it), and the same
fit on group-aware folds of the training clips gives out-of-fold logits: an accuracy estimate that every
training clip takes part in (what ``--backbone auto`` judges the family by) and, without a validation
split, the temperature.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vidlstm.data.splits import index_folds
from vidlstm.training.losses import balanced_class_weights

READOUT_C = 0.01
"""Inverse L2 strength, scikit-learn's convention: minimise C * sum of losses + |W|^2 / 2 (the bias is free)."""
READOUT_FOLDS = 5
"""Folds of the out-of-fold estimate (fewer when a class or the groups are too few)."""


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, c: float = READOUT_C, balanced: bool = False,
                 max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on (N, F) ``x`` and (N,) class ids: (weight (K, F), bias (K,)).

    The objective is scikit-learn's ``LogisticRegression(C=c)`` (``balanced``: ``class_weight="balanced"``, the
    training loss's class weights): c * sum_i w_i * CE_i + |W|^2 / 2, by L-BFGS in
    float64, so the same data gives the same model (tests/training/test_readout.py compares them). With two
    classes scikit-learn fits one weight vector w = W[1] - W[0]; the softmax's minimum-norm pair has
    |W|^2 = |w|^2 / 2, so there the penalty counts twice to match it.
    """
    x = x.detach().to(torch.float64)
    y = y.to(torch.long)
    w = (balanced_class_weights(y.numpy(), num_classes).to(torch.float64)[y] if balanced
         else torch.ones(len(y), dtype=torch.float64))  # (N,) per-sample weights
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")
    scale = (2.0 if num_classes == 2 else 1.0) / (c * len(y))  # the objective divided by c * N

    def closure():
        optimizer.zero_grad()
        loss = (w * F.cross_entropy(x @ weight.T + bias, y, reduction="none")).sum() / len(y) \
            + 0.5 * scale * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().float(), bias.detach().float()


def out_of_fold_logits(x: np.ndarray, y: np.ndarray, clip_of: np.ndarray, groups: np.ndarray | None,
                       num_classes: int, *, c: float = READOUT_C, class_weights: bool = True, seed: int = 0,
                       folds: int = READOUT_FOLDS) -> tuple[np.ndarray | None, int]:
    """Logits (clips, K) of each training clip's first view from a fit that did not see the clip (nor its group).

    ``x`` (N, F) holds every view of every clip, ``clip_of`` (N,) the clip each row belongs to (clips 0..M-1;
    its first row is the clip's centre view). Returns (logits, folds used), or (None, 0) when the clips allow
    no two folds.
    """
    first = np.unique(clip_of, return_index=True)[1]  # (M,) each clip's first row
    clips = len(first)
    clip_y = y[first]
    k = min(folds, int(np.bincount(clip_y, minlength=num_classes).min()))
    if groups is not None:
        k = min(k, len(set(groups.tolist())))
    if k < 2:
        return None, 0
    try:
        pairs = index_folds(clip_y, groups, k, seed)
    except ValueError:  # e.g. groups that cannot be spread over k stratified folds
        return None, 0
    logits = np.zeros((clips, num_classes))
    for fit_clips, held_clips in pairs:
        rows = np.isin(clip_of, fit_clips)
        if len(np.unique(y[rows])) < num_classes:  # a class absent from this fold's fit: no estimate
            return None, 0
        W, b = fit_logistic(torch.from_numpy(x[rows]), torch.from_numpy(y[rows]), num_classes, c, class_weights)
        held = torch.from_numpy(x[first[held_clips]]).float()
        logits[held_clips] = (held @ W.T + b).numpy()
    return logits, k


def nearest_neighbour_similarity(clip_features: np.ndarray) -> float | None:
    """Median over clips of the cosine similarity to the most similar other clip, in features centred on their mean
    (``clip_features`` (M, D), one row per clip); None for fewer than 3 clips.

    Near 1 when most clips have a near-copy among the others (clips cut from a few recordings): measured on the frames'
    features 0.96 on pushfit, 0.81 on fight (clips from 39 source videos), 0.53 on synthetic clips drawn independently.
    """
    if len(clip_features) < 3:
        return None
    x = clip_features.astype(np.float64) - clip_features.mean(0, dtype=np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    return round(float(np.median(similarity.max(1))), 4)


def frames_similarity(features: torch.Tensor, views: int, streams: int) -> float | None:
    """``nearest_neighbour_similarity`` of the clips' mean features (``features`` (M * views, T, D), a clip's views
    consecutive, its first the segment centres), of the frames' half where the model sees two streams: the threshold
    it is read against (``families.NEAR_COPY_SIMILARITY``) was set on the frames, and the differences' half pulled
    pushfit's training folds from 0.92-0.95 to 0.87-0.92, under it in 4 of 9 (benchmarks/near_copies.py)."""
    clips = features[::views].mean(1)
    return nearest_neighbour_similarity(clips[:, : clips.shape[1] // streams].numpy())


@torch.no_grad()
def refit_stats_readout(model, train_set, groups: np.ndarray | None, *, class_weights: bool = True,
                        seed: int = 0, c: float = READOUT_C) -> dict:
    """Refit ``model.stats_classifier`` on every cached view of ``train_set`` (frozen features); the note
    for metrics.json, with the out-of-fold accuracy and logits (``oof_logits``, ``oof_targets``) when folds allow."""
    num_classes = model.config.num_classes
    feats = train_set.every_view().float()  # (M * V, T, D), views of a clip consecutive
    views = len(feats) // max(1, len(train_set))
    device = model.clip_stats.center.device
    mask = torch.ones(feats.shape[:2], dtype=torch.bool, device=device)
    x = model.clip_stats(feats.to(device), mask).cpu().numpy().astype(np.float64)  # (M * V, 3D) standardised
    clip_of = np.repeat(np.arange(len(train_set)), views)
    y = np.repeat(np.asarray(train_set.targets), views)
    W, b = fit_logistic(torch.from_numpy(x), torch.from_numpy(y), num_classes, c, class_weights)
    model.stats_classifier.weight.copy_(W.to(device))
    model.stats_classifier.bias.copy_(b.to(device))
    note = {"fit": "logistic regression on every training view's statistics (L-BFGS, L2)", "c": c,
            "train_clips": len(train_set), "views": views, "grouped": groups is not None}
    similarity = frames_similarity(feats, views, model.streams)
    if similarity is not None:
        note["nearest_neighbour_similarity"] = similarity
    logits, k = out_of_fold_logits(x, y, clip_of, groups, num_classes, c=c, class_weights=class_weights, seed=seed)
    if logits is not None:
        targets = np.asarray(train_set.targets)
        note.update(cv_folds=k, grouped=groups is not None,
                    cv_accuracy=round(float((logits.argmax(1) == targets).mean()), 6),
                    oof_logits=logits, oof_targets=targets)
        if model.streams == 2:  # the frames' statistics alone too: what auto's vidnet rule reads
            frames, _ = out_of_fold_logits(x[:, frames_columns(model.feature_dim)], y, clip_of, groups, num_classes,
                                           c=c, class_weights=class_weights, seed=seed)
            if frames is not None:
                note["frames_cv_accuracy"] = round(float((frames.argmax(1) == targets).mean()), 6)
    return note


def frames_columns(feature_dim: int) -> np.ndarray:
    """The columns of a two-stream model's clip statistics (mean, spread, change of ``feature_dim`` features: the
    frames' then their differences') that describe the frames alone."""
    half = feature_dim // 2
    return np.concatenate([np.arange(half) + part * feature_dim for part in range(3)])
