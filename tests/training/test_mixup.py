"""Mixup in the training loop: what the network sees and what the loss asks, drawn reproducibly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vidlstm.errors import UsageError
from vidlstm.models.classifier import LRCNOutput
from vidlstm.training.config import TrainConfig
from vidlstm.training.distributed import DistContext
from vidlstm.training.loop import train_one_epoch


class RecordingNet(nn.Module):
    """Clips (B, T, 3, H, W) -> logits from their mean; keeps a copy of every input it was given."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.fc = nn.Linear(1, classes)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        logits = self.fc(x.flatten(1).mean(1, keepdim=True))  # (B, C)
        steps = x.shape[1]
        return LRCNOutput(logits, logits[:, None].expand(-1, steps, -1), torch.full(x.shape[:2], 1.0 / steps), None)


def _batches(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(4, 2, 3, 5, 5, generator=gen), torch.tensor([0, 1, 2, 1])) for _ in range(3)]


def _run(mixup: float, seed):
    torch.manual_seed(0)
    net = RecordingNet()
    calls = []

    def loss_fn(out, y):
        calls.append(y.clone())
        return nn.functional.cross_entropy(out.logits, y)

    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: the logits never move, the test can recompute
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    row = train_one_epoch(net, _batches(), loss_fn, optimizer, scheduler, DistContext(), progress=False,
                          mixup=mixup, mixup_seed=seed)
    return net, calls, row


def test_without_mixup_the_network_sees_the_clips_as_loaded():
    net, calls, _ = _run(0.0, None)
    for (x, y), seen, target in zip(_batches(), net.seen, calls):
        assert torch.equal(seen, x) and torch.equal(target, y)


def test_mixup_blends_each_batch_with_a_shuffled_copy_and_the_loss_with_both_labels():
    net, calls, row = _run(0.4, (7, 3, 0))
    rng = np.random.default_rng((7, 3, 0))
    losses = []
    for i, ((x, y), seen) in enumerate(zip(_batches(), net.seen)):
        lam = float(rng.beta(0.4, 0.4))
        perm = torch.from_numpy(rng.permutation(len(y)))
        assert 0.0 < lam < 1.0
        assert torch.allclose(seen, lam * x + (1 - lam) * x[perm], atol=1e-6)  # the same blend on every frame
        assert not torch.allclose(seen, x)
        assert torch.equal(calls[2 * i], y) and torch.equal(calls[2 * i + 1], y[perm])  # the loss asks for both
        with torch.no_grad():
            logits = net.fc(seen.flatten(1).mean(1, keepdim=True))
        ce = nn.functional.cross_entropy
        losses.append(float(lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm])))
    assert row["train_loss"] == pytest.approx(np.mean(losses), rel=1e-5)


def test_mixup_draws_repeat_for_the_same_seed_and_differ_for_another_epoch():
    first, _, _ = _run(0.4, (0, 5, 0))
    again, _, _ = _run(0.4, (0, 5, 0))
    other, _, _ = _run(0.4, (0, 6, 0))
    assert all(torch.equal(a, b) for a, b in zip(first.seen, again.seen))  # a resumed epoch sees the same clips
    assert not all(torch.allclose(a, b) for a, b in zip(first.seen, other.seen))


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_a_mixup_strength_that_is_not_a_number_at_least_zero_is_refused_in_one_line(value):
    with pytest.raises(UsageError, match=r"^--mixup must be a number >= 0 \(got "):
        TrainConfig(data="d", out_dir="o", mixup=value)
