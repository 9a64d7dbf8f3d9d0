"""Run length from the data and the time budget; the weight average that the run keeps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vidlstm.training.auto import auto_num_frames
from vidlstm.training.budget import EpochPlan, auto_epochs
from vidlstm.training.ema import ModelEMA
from vidlstm.training.schedule import retarget, warmup_cosine_schedule


def test_auto_epochs_present_a_fixed_number_of_clips_within_bounds():
    assert auto_epochs(160) == 150
    assert auto_epochs(40) == 300  # capped
    assert auto_epochs(5000) == 30  # at least 30


def test_plan_shrinks_to_what_fits_the_budget():
    plan = EpochPlan(planned=100, budget=60.0, reserve=5.0)
    assert plan.revise(1, elapsed=12.0, epoch_seconds=[2.0]) == 1 + 21  # (60 - 5 - 12) / 2 = 21 more
    assert plan.cut_by_budget
    assert plan.revise(3, elapsed=80.0, epoch_seconds=[2.0] * 3) == 3  # over budget: stop now
    assert EpochPlan(planned=10, budget=0.0).revise(1, 1e9, [1e9]) == 10  # 0: no budget


def test_plan_grows_back_when_a_busy_spell_made_it_too_short_at_any_time_but_not_past_the_first_plan():
    plan = EpochPlan(planned=100, budget=60.0, reserve=5.0)
    assert plan.revise(1, elapsed=12.0, epoch_seconds=[2.0]) == 22  # a busy first epoch: cut
    assert plan.revise(2, elapsed=13.0, epoch_seconds=[2.0, 0.5]) == 2 + 33  # (60-5-13) / 1.25: the load went
    assert plan.revise(3, elapsed=14.0, epoch_seconds=[2.0, 0.5, 1.2]) == 35  # 3 + 33 = 36: < 5% more, kept
    assert plan.revise(4, elapsed=14.5, epoch_seconds=[0.5] * 4) == 4 + 81 and plan.cut_by_budget  # < 100
    late = EpochPlan(planned=100, budget=100.0, reserve=0.0)
    late.revise(1, elapsed=10.0, epoch_seconds=[10.0])  # -> 10 epochs
    assert late.planned == 10
    # Past half the plan, faster epochs still lengthen it (the schedule keeps its rate: see the test below).
    assert late.revise(6, elapsed=60.0, epoch_seconds=[1.0] * 5) == 6 + 40
    small = EpochPlan(planned=100, budget=100.0, reserve=0.0)
    small.revise(1, elapsed=10.0, epoch_seconds=[2.0])  # 1 + 45 = 46
    assert small.revise(2, elapsed=11.5, epoch_seconds=[2.0, 1.9]) == 46  # 2 + 45 = 47: a jitter, not a gain
    capped = EpochPlan(planned=30, budget=1000.0, reserve=0.0)
    capped.revise(1, elapsed=100.0, epoch_seconds=[100.0])  # -> 10
    assert capped.revise(2, elapsed=101.0, epoch_seconds=[0.1]) == 30 and not capped.cut_by_budget  # the first plan
    again = EpochPlan(planned=1)
    again.load_state_dict(capped.state_dict())
    assert (again.planned, again.target) == (30, 30)


def _rates(optimizer, scheduler, steps: int) -> list[float]:
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])  # the rate the coming step uses
        optimizer.step()
        scheduler.step()
    return rates


def test_a_plan_changed_after_the_warm_up_keeps_the_rate_in_use_and_reaches_the_floor_at_the_new_end():
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = warmup_cosine_schedule(optimizer, warmup_steps=2, total_steps=100)
    before = _rates(optimizer, scheduler, 60)  # 60% through: rate ~0.35
    rate_now = scheduler.get_last_lr()[0]
    retarget(scheduler, 120)  # the run got longer, late
    assert scheduler.get_last_lr()[0] == pytest.approx(rate_now)  # LambdaLR applies the new lambda at the next step
    after = _rates(optimizer, scheduler, 60)
    assert after[1] == pytest.approx(rate_now, rel=0.01)  # no jump up: a longer plan stretches the decay
    assert all(a >= b - 1e-12 for a, b in zip(before[2:] + after, before[3:] + after[1:]))  # never rises
    assert scheduler.get_last_lr()[0] == pytest.approx(0.01)  # the floor, at step 120
    param2 = nn.Parameter(torch.zeros(1))
    opt2 = torch.optim.SGD([param2], lr=1.0)
    short = warmup_cosine_schedule(opt2, warmup_steps=2, total_steps=100)
    _rates(opt2, short, 60)
    rate_now = short.get_last_lr()[0]
    retarget(short, 70)  # the run got shorter
    squeezed = _rates(opt2, short, 10)
    assert squeezed[1] == pytest.approx(rate_now, rel=0.05) and short.get_last_lr()[0] == pytest.approx(0.01)


def test_retargeted_schedule_still_decays_to_its_floor_at_the_new_end():
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = warmup_cosine_schedule(optimizer, warmup_steps=2, total_steps=100)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    retarget(scheduler, 20)
    rates = []
    for _ in range(10):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    assert rates[-1] == pytest.approx(0.01)  # the floor, at step 20 instead of 100
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    state = scheduler.state_dict()  # a resumed run continues with the re-aimed end
    fresh = warmup_cosine_schedule(torch.optim.SGD([param], lr=1.0), warmup_steps=2, total_steps=100)
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0].total_steps == 20


def test_weight_average_beats_the_noisy_iterates_it_averages():
    """SGD with noisy gradients around a known optimum: the EMA's error is below the raw iterates' mean error."""
    torch.manual_seed(0)
    target = torch.randn(1, 20)
    model = nn.Linear(20, 1, bias=False)
    ema = ModelEMA(model, decay=0.95)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    raw_errors, ema_errors = [], []
    for step in range(400):
        noise = torch.randn(1, 20) * 2.0
        model.weight.grad = model.weight.detach() - target + noise  # gradient of 0.5 |w - target|^2 + noise
        optimizer.step()
        ema.update(model)
        if step >= 200:
            raw_errors.append(float((model.weight.detach() - target).norm()))
            ema_errors.append(float((ema.module.weight - target).norm()))
    assert np.mean(ema_errors) < 0.5 * np.mean(raw_errors)


def test_ema_state_round_trips_and_warms_up():
    model = nn.Linear(3, 2)
    ema = ModelEMA(model, decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0): early weights fade fast
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    other = ModelEMA(nn.Linear(3, 2), decay=0.999)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.module.weight, ema.module.weight)
    assert not any(p.requires_grad for p in ema.module.parameters())


class FakeInfo:
    def __init__(self, frames):
        self.num_frames = frames


def test_auto_frames_take_half_the_median_clip_within_bounds():
    def probe_with(counts):
        table = dict(zip(map(str, range(len(counts))), counts))
        return lambda path, backends=None: FakeInfo(table[str(path)])

    paths = [str(i) for i in range(5)]
    assert auto_num_frames(paths, probe_with([100, 90, 60, 300, 75]))[0] == 16  # median 90 -> 45 -> cap 16
    assert auto_num_frames(paths, probe_with([20, 22, 18, 24, 19]))[0] == 10
    assert auto_num_frames(paths, probe_with([3, 4, 5, 6, 2]))[0] == 4
    frames, note = auto_num_frames(paths[:2], probe_with([20, 24]))
    assert note["median_clip_frames"] == 22.0 and note["probed_clips"] == 2 and frames == 11


def test_auto_frames_skip_files_that_cannot_be_probed():
    from vidlstm.errors import VideoDecodeError

    def probe(path, backends=None):
        if path == "bad":
            raise VideoDecodeError(path, "broken")
        return FakeInfo(40)

    assert auto_num_frames(["bad", "good"], probe)[0] == 16
    assert auto_num_frames(["bad"], probe)[0] == 16  # nothing probed: the maximum, noted
