"""Temporal layers over per-frame features: BiLSTM on packed sequences, masked attention pooling, causal LSTM head."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, B, hidden)


def check_lengths(lengths: torch.Tensor | None, batch: int, steps: int) -> torch.Tensor | None:
    """Validate per-sequence lengths and return them on the CPU (where pack_padded_sequence wants them)."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths).cpu().long()  # (B,)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(f"lengths must lie in [1, {steps}] (got {lengths.tolist()})")
    return lengths


def step_mask(lengths: torch.Tensor | None, batch: int, steps: int, device) -> torch.Tensor:
    """(B, T) bool, True on real steps; all True when ``lengths`` is None."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]  # (B, T)


class BiLSTMEncoder(nn.Module):
    """(B, T, D_in) -> (B, T, 2 * hidden): one fused nn.LSTM call over packed sequences, never a loop over time.

    Packing matters for the backward direction: without it, a short sequence's backward pass
    would start on padding. Outputs past each sequence's length are zero.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        steps = x.shape[1]
        if lengths is None or bool((lengths == steps).all()):
            return self.lstm(x)[0]  # (B, T, 2H): every sequence is full, packing would change nothing
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)  # (B, T, 2H)
        return out


class AttentionPooling(nn.Module):
    """Additive attention over time: score_t = v . tanh(W h_t); padded steps get weight exactly 0.

    Returns the weighted sum (B, D) and the weights (B, T), which sum to 1 over real steps.
    """

    def __init__(self, dim: int, attention_dim: int | None = None):
        super().__init__()
        attention_dim = attention_dim or dim
        self.project = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(self.project(h))).squeeze(-1).float()  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0: padding gets no weight at all
        weights = scores.softmax(dim=-1)  # (B, T)
        pooled = torch.bmm(weights.unsqueeze(1).to(h.dtype), h).squeeze(1)  # (B, D)
        return pooled, weights


class CausalHead(nn.Module):
    """A unidirectional LSTM + per-step classifier: step t sees frames <= t only, so it can run while streaming.

    Its (h, c) state is carried across chunks, so chunked calls equal one pass over the whole sequence.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        # Padding only ever follows the real steps, and a forward LSTM's output at step t does not
        # depend on later inputs, so no packing is needed here.
        out, state = self.lstm(x, state)  # (B, t, H)
        return self.classifier(self.dropout(out)), state  # (B, t, C)


class CentredKeypoints(nn.Module):
    """Keypoints relative to their clip mean, projected to the LSTM input width: (B, T, D) -> (B, T, P).

    The last ``2K`` feature values are soft-argmax (x, y) positions; subtracting their mean over the
    real steps of each clip leaves the path a hand or object traces, wherever in the frame it was
    filmed. Padded steps count for nothing and get 0.
    """

    def __init__(self, num_keypoints: int, out_dim: int):
        super().__init__()
        self.width = 2 * num_keypoints
        self.project = nn.Linear(self.width, out_dim)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        points = feats[..., -self.width:].float()  # (B, T, 2K)
        weights = mask[..., None].to(points.dtype)  # (B, T, 1)
        mean = (points * weights).sum(dim=1, keepdim=True) / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
        centred = (points - mean) * weights  # (B, T, 2K)
        return self.project(centred.to(feats.dtype)) * weights.to(feats.dtype)  # (B, T, P)


SCALE_FLOOR = 0.1
"""No statistic is scaled by less than this share of the median statistic's spread over the training clips. A
few clips of plain scenes leave many ImageNet features all but constant (spread ~1e-5): a clip from elsewhere
that moves one was then standardised to ~1e5 and read out with certainty, whatever it showed. On fight and
pushfit (~120 training clips, no spread under 0.03 of the median) the floor moves nothing (fight 0.803 -> 0.806,
pushfit 0.867 both ways, 5 fold seeds; benchmarks/RESULTS.md, session 26)."""


class ClipStatistics(nn.Module):
    """Per-frame features (B, T, D) -> the clip's statistics over time (B, 3D), standardised.

    Mean, spread and mean absolute change from one sampled frame to the next, per feature, over each clip's
    real frames: what is in the clip, how much it varies, how fast it changes. Frozen pretrained features
    of a few dozen clips are too many numbers per frame for a BiLSTM not to memorise them (on fight it scored
    0.58-0.63), while a logistic regression on these statistics reached 0.79 (benchmarks/RESULTS.md). The
    standardisation (``center``, ``scale``: per statistic, over the training clips) is set once by
    ``fit`` before training (features of a frozen backbone do not change) and saved with the model.
    """

    def __init__(self, feature_dim: int):
        super().__init__()
        self.register_buffer("center", torch.zeros(3 * feature_dim))
        self.register_buffer("scale", torch.ones(3 * feature_dim))

    @staticmethod
    def raw(feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unstandardised statistics (B, 3D) of ``feats`` (B, T, D) over the steps where ``mask`` (B, T) is set."""
        weights = mask.to(feats.dtype)[..., None]  # (B, T, 1)
        count = weights.sum(1).clamp_min(1.0)  # (B, 1)
        mean = (feats * weights).sum(1) / count  # (B, D)
        spread = (((feats - mean[:, None]) ** 2 * weights).sum(1) / count).sqrt()  # (B, D), 0 for one frame
        # Each step against the one before it, all at length T (step 0 against the last, weight 0): no axis of T-1
        # steps, whose size torch.export would have to guard against 1 (such a model's temporal graph failed to export).
        before = torch.roll(feats, 1, dims=1)  # (B, T, D)
        first = torch.arange(feats.shape[1], device=feats.device)[None, :, None] == 0  # (1, T, 1)
        pairs = (weights * torch.roll(weights, 1, dims=1)).masked_fill(first, 0.0)  # (B, T, 1): both frames real
        change = ((feats - before).abs() * pairs).sum(1) / pairs.sum(1).clamp_min(1.0)  # (B, D)
        return torch.cat([mean, spread, change], dim=-1)  # (B, 3D)

    @torch.no_grad()
    def fit(self, feats: torch.Tensor) -> None:
        """Set the standardisation from the training clips' features (N, T, D), every step real."""
        stats = self.raw(feats, torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device))  # (N, 3D)
        self.center.copy_(stats.mean(0))
        spread = stats.std(0, unbiased=False)
        self.scale.copy_(spread.clamp_min(max(SCALE_FLOOR * float(spread.median()), 1e-6)))

    def standardize(self, raw: torch.Tensor) -> torch.Tensor:
        """Statistics from ``raw`` (B, 3D) -> standardised as the read-out was trained on (B, 3D)."""
        return (raw - self.center) / self.scale

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.standardize(self.raw(feats, mask))  # (B, 3D)


class StatsStream(nn.Module):
    """The statistics read-out (``ClipStatistics`` + its linear classifier) over a stream, in fixed memory.

    What ``vidlstm stream`` labels a ``clip_head = "stats"`` model's steps with, and that model's exported
    ``stream`` graph: one module, so the two cannot drift. The state is plain tensors (``initial_state``).

    Inputs: ``features`` (B, t, D) of one chunk; ``window`` (B, W, D), the last W = ``num_frames`` features
    before the chunk, right-aligned, of which the last ``filled`` (B,) int64 are real (0 at the start); and the
    running float64 sums over every step so far, ``total``, ``squares``, ``change`` (B, D), with ``count`` (B,)
    int64 steps. Outputs: ``step_logits`` (B, t, C), each step's read-out of the last W steps up to it (fewer at
    a stream's start), as the model was trained on W-frame clips; ``logits`` (B, C), the read-out of every step
    so far (``classify``'s label for the same frames); then the next state. Windows come from cumulative sums in
    float64, so a chunk of any length costs a fixed amount per step, without a loop over steps.
    """

    def __init__(self, clip_stats: ClipStatistics, classifier: nn.Module):
        super().__init__()
        self.clip_stats, self.stats_classifier = clip_stats, classifier

    @staticmethod
    def initial_state(batch: int, width: int, dim: int, device=None) -> tuple[torch.Tensor, ...]:
        """(window, filled, total, squares, change, count) before the first step: zeros."""
        return (torch.zeros(batch, width, dim, device=device), torch.zeros(batch, dtype=torch.int64, device=device),
                *[torch.zeros(batch, dim, dtype=torch.float64, device=device) for _ in range(3)],
                torch.zeros(batch, dtype=torch.int64, device=device))

    def _readout(self, mean: torch.Tensor, spread: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
        raw = torch.cat([mean, spread, change], dim=-1).to(self.clip_stats.center.dtype)  # (..., 3D)
        return self.stats_classifier(self.clip_stats.standardize(raw))  # (..., C)

    def forward(self, features, window, filled, total, squares, change, count) -> tuple[torch.Tensor, ...]:
        width, steps = window.shape[1], features.shape[1]
        seq = torch.cat([window, features], dim=1)  # (B, W+t, D): position W+i is the chunk's step i
        x = seq.double()
        positions = torch.arange(x.shape[1], device=x.device)  # (W+t,)
        real = (positions[None, :] >= width - filled[:, None]).double()  # (B, W+t): the chunk and `filled` before
        xr = x * real[..., None]
        pair = real[:, 1:] * real[:, :-1]  # (B, W+t-1): pair j is positions (j, j+1), both real
        moves = (x[:, 1:] - x[:, :-1]).abs() * pair[..., None]  # (B, W+t-1, D)

        def running(v: torch.Tensor) -> torch.Tensor:  # v (B, n, ...) -> (B, n+1, ...), [:, k] = sum of v[:, :k]
            return torch.cat([torch.zeros_like(v[:, :1]), v.cumsum(1)], dim=1)

        sums, sq_sums, counts = running(xr), running(xr * xr), running(real)
        move_sums, pair_counts = running(moves), running(pair)
        step = torch.arange(steps, device=x.device)  # (t,)
        lo, hi = step + 1, step + width + 1  # step i's window: positions [i+1, i+W], i.e. sums[hi] - sums[lo]
        n = (counts[:, hi] - counts[:, lo])[..., None]  # (B, t, 1), >= 1: the step itself is real
        mean = (sums[:, hi] - sums[:, lo]) / n
        spread = ((sq_sums[:, hi] - sq_sums[:, lo]) / n - mean * mean).clamp_min(0.0).sqrt()
        pairs = (pair_counts[:, hi - 1] - pair_counts[:, lo])[..., None].clamp_min(1.0)  # pairs j in [i+1, i+W-1]
        step_logits = self._readout(mean, spread, (move_sums[:, hi - 1] - move_sums[:, lo]) / pairs)  # (B, t, C)

        total_next = total + x[:, width:].sum(1)  # (B, D) float64
        squares_next = squares + (x[:, width:] * x[:, width:]).sum(1)
        # The chunk's pairs: from (last of the window, first of the chunk) on; the first counts only after a step.
        change_next = change + (move_sums[:, -1] - move_sums[:, width - 1])
        count_next = count + steps
        seen = count_next.double()[:, None]  # (B, 1) >= 1
        whole_mean = total_next / seen
        whole_spread = (squares_next / seen - whole_mean * whole_mean).clamp_min(0.0).sqrt()
        logits = self._readout(whole_mean, whole_spread, change_next / (seen - 1.0).clamp_min(1.0))  # (B, C)
        return (step_logits, logits, seq[:, steps:], (filled + steps).clamp_max(width),
                total_next, squares_next, change_next, count_next)


def leave_one_out_weights(clip_stats: ClipStatistics, classifier: nn.Module, feats: torch.Tensor, mask: torch.Tensor,
                          logits: torch.Tensor) -> torch.Tensor:
    """Which frames the statistics read-out's label rests on (B, T): how much each real frame adds to the logit of
    the clip's top class (that logit minus the read-out's without the frame), the positive parts shared out to sum 1;
    equal weights where no frame adds. A ``clip_head = "stats"`` model's attention pooling decides nothing (its
    weights stay near uniform), so its explanations show these instead. One clip at a time: T masked copies each."""
    batch, steps = feats.shape[:2]
    keep = ~torch.eye(steps, dtype=torch.bool, device=feats.device)  # row t: every step but t
    top = logits.argmax(-1)  # (B,)
    weights = []
    for b in range(batch):
        without = classifier(clip_stats(feats[b].expand(steps, -1, -1), keep & mask[b]))  # (T, C)
        gain = (logits[b, top[b]] - without[:, top[b]]).clamp_min(0) * mask[b]  # (T,)
        total = gain.sum()
        weights.append(gain / total if total > 0 else mask[b].to(gain.dtype) / mask[b].sum().clamp_min(1))
    return torch.stack(weights)
