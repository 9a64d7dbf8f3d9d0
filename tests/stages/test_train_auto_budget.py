"""`train --backbone auto` within a time budget: the read-outs' one decode stops at its share of the budget."""
from __future__ import annotations

import csv
import json

import pytest

from vidlstm.data.datasets import discover_dataset
from vidlstm.errors import UsageError
from vidlstm.stages import families, train
from vidlstm.training import prepare
from vidlstm.training.config import TrainConfig
from vidlstm.training.run_folder import check_run_dir


@pytest.fixture
def fake_clock(monkeypatch):
    """auto's clock as a list to move by hand ([seconds]); the split check and the stabilize probe, which decode,
    left out (the candidates are faked by each test's train_one)."""
    clock = [0.0]
    monkeypatch.setattr(families.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(families, "_check_split", lambda config: None)
    monkeypatch.setattr(families, "_stabilize_once", lambda config: (config, None))
    return clock


def test_auto_read_outs_fit_on_the_videos_decoded_within_their_share_of_a_tiny_budget(make_video, tmp_path,
                                                                                     monkeypatch):
    for label, offset in (("a", 0), ("b", 100)):
        for i in range(8):
            make_video(f"data/{label}/{label}{i}.mp4", num_frames=12, seed=offset + i)
    decoded = []  # (size, videos asked for) of each decode pass
    real_decoded_views = prepare.decoded_views

    def counting(jobs, *args, **kwargs):
        decoded.append((jobs[0].image_size, len(jobs)))
        return real_decoded_views(jobs, *args, **kwargs)

    monkeypatch.setattr(prepare, "decoded_views", counting)
    # A share of 0: the deadline has passed when decoding starts, so exactly the minimum is decoded.
    monkeypatch.setattr(families, "READOUT_DECODE_SHARE", 0.0)
    monkeypatch.setattr(families, "_too_little_time", lambda *args: None)  # vidnet trains in whatever is left
    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), epochs=1, views=1,
                         time_budget=5.0, progress=False)
    run_dir = train.run(config)
    assert decoded == [(224, 16), (48, 16)]  # the read-outs' pass (cut after 10), none of their own, then vidnet's
    choice = json.loads((run_dir / "choice.json").read_text())
    kept = choice["readout_videos"]
    assert (kept["videos"], kept["of"], kept["num_frames"]) == (10, 16, 6) and "time budget" in kept["why"]
    with open(kept["manifest"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["label"] for row in rows) == ["a"] * 5 + ["b"] * 5  # MIN_READOUT_CLIPS of each class
    for family in families.PRETRAINED_FAMILIES:
        metrics = json.loads((run_dir / "candidates" / family / "model" / "metrics.json").read_text())
        assert metrics["readout"]["train_clips"] == 10 and choice["candidates"][family]["clips"] == 10
        # The frames per clip the decode sampled (resolved from all 16 videos), so the read-outs decode nothing again.
        saved = json.loads((run_dir / "candidates" / family / "model" / "config.json").read_text())
        assert saved["num_frames"] == 6
    split = json.loads((run_dir / "candidates" / "scratch" / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) == 16  # vidnet trains on every video
    # A resumed run keeps the read-outs' videos.
    train.run(TrainConfig(**{**config.__dict__, "resume": True}))
    again = json.loads((run_dir / "choice.json").read_text())["readout_videos"]
    assert (again["videos"], again["of"], again["manifest"]) == (10, 16, kept["manifest"])
    assert len(discover_dataset(kept["manifest"]).items) == 10



def test_a_new_run_into_a_finished_auto_run_is_refused_and_leaves_its_read_out_videos(tmp_path):
    run_dir = tmp_path / "run"
    state = run_dir / "candidates" / "pretrained" / "last" / "train_state.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"state")
    (run_dir / families.READOUT_CLIPS_FILE).write_text("path,label\n")
    (run_dir / "readout_clips.json").write_text("{}")
    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(run_dir), progress=False)
    with pytest.raises(UsageError, match="already holds a training run"):
        families.run(config, check_run_dir, decode_once=lambda configs, deadline: None)
    assert (run_dir / families.READOUT_CLIPS_FILE).read_text() == "path,label\n"
    assert (run_dir / "readout_clips.json").is_file()


def test_data_that_vidnet_cannot_split_is_refused_before_the_read_outs_train(make_video, tmp_path, monkeypatch):
    for label in ("a", "b"):
        make_video(f"data/{label}/{label}0.mp4", num_frames=12)  # one clip per class
    decoded = []
    monkeypatch.setattr(prepare, "decoded_views", lambda jobs, *args, **kwargs: decoded.append(jobs) or iter(()))
    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), epochs=1, progress=False)
    with pytest.raises(UsageError, match=r"class 'a' has 1 clip\(s\); a train/validation split needs at least 2 "
                                         r"per class; add clips or pass --val-fraction 0"):
        train.run(config)
    assert decoded == [] and not (tmp_path / "run" / "candidates").exists()  # nothing decoded, no candidate began


@pytest.mark.parametrize("readout_seconds, vidnet_trains", [(80.0, False), (50.0, True)])
def test_vidnet_trains_only_with_a_quarter_of_the_budget_left(tmp_path, fake_clock, capsys, readout_seconds,
                                                              vidnet_trains):
    """With --time-budget 60 on a loaded machine the read-out left vidnet 1 s: one epoch, judged on 6 validation
    clips, was kept over it. Now vidnet is not trained in less than MIN_SCRATCH_SHARE of the budget."""
    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    clock = fake_clock
    trained = []

    def train_one(candidate):
        trained.append((candidate.backbone, candidate.time_budget))
        model_dir = candidate.resolved_model_dir
        save_model(model_dir, LRCN(ModelConfig(labels=["a", "b"], num_frames=4, image_size=32)))
        estimate = ({"readout": {"cv_accuracy": 0.8, "train_clips": 20, "cv_folds": 5}}
                    if candidate.backbone != "vidnet" else {"val_clips": 6, "val_accuracy": 1.0})
        (model_dir / "metrics.json").write_text(json.dumps({**estimate, "run_seconds": 1.0}))
        clock[0] += readout_seconds if candidate.backbone != "vidnet" else 1.0
        return candidate.run_dir

    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), time_budget=100.0,
                         progress=False)
    run_dir = families.run(config, train_one)
    choice = json.loads((run_dir / "choice.json").read_text())
    if vidnet_trains:
        assert trained == [("efficientnet_lite0", 25.0), ("vidnet", 50.0)] and choice["chosen"] == "scratch"
    else:
        assert trained == [("efficientnet_lite0", 25.0)] and choice["chosen"] == "pretrained"
        assert choice["candidates"]["scratch"]["skipped"] == ("20 s of the 100 s time budget are left, under the 25% "
                                                              "it needs (a larger --time-budget trains it)")
        # The summary says so (it ended in a KeyError), and a resume keeps the finished run's choice.
        from dataclasses import replace

        from vidlstm.cli.train import print_summary
        print_summary(run_dir)
        said = capsys.readouterr().out
        assert "scratch - (not trained)" in said and "trained 1 of 2 candidates in" in said
        assert choice["candidates"]["scratch"]["backbone"] == "vidnet"  # not the read-out's, as it said
        card = (run_dir / "model" / "README.md").read_text()  # and the card says why (it showed a bare "-")
        assert "trained 1 of 2 candidates and kept `pretrained`" in card
        assert "| scratch | - (not trained: 20 s of the 100 s time budget are left, under the 25% it needs" in card
        clock[0] = 0.0
        families.run(replace(config, resume=True), train_one)
        assert trained == [("efficientnet_lite0", 25.0)]
        assert json.loads((run_dir / "choice.json").read_text())["chosen"] == "pretrained"


def test_a_resumed_auto_run_keeps_each_candidates_budget_and_counts_the_interrupted_process(tmp_path, fake_clock):
    """A run interrupted while vidnet trained, resumed in a new process: vidnet kept the budget it was first given
    (it was given nearly the whole budget again, on top of what the read-out had spent), and choice.json's seconds
    count the interrupted process too."""
    from dataclasses import replace

    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    clock = fake_clock
    trained = []
    interrupt = [True]

    def train_one(candidate):
        trained.append((candidate.backbone, candidate.time_budget, candidate.resume))
        if candidate.backbone == "vidnet" and interrupt[0]:
            candidate.state_path.parent.mkdir(parents=True, exist_ok=True)
            candidate.state_path.write_bytes(b"saved after an epoch")
            clock[0] += 10.0
            raise KeyboardInterrupt
        model_dir = candidate.resolved_model_dir
        save_model(model_dir, LRCN(ModelConfig(labels=["a", "b"], num_frames=4, image_size=32)))
        vidnet = candidate.backbone == "vidnet"
        estimate = {"val_clips": 6, "val_accuracy": 1.0} if vidnet else {
            "readout": {"cv_accuracy": 0.8, "train_clips": 20, "cv_folds": 5}}
        (model_dir / "metrics.json").write_text(json.dumps({**estimate, "run_seconds": 30.0 if vidnet else 20.0}))
        candidate.state_path.parent.mkdir(parents=True, exist_ok=True)
        candidate.state_path.write_bytes(b"saved after an epoch")
        clock[0] += 20.0
        return candidate.run_dir

    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), time_budget=100.0,
                         progress=False)
    with pytest.raises(KeyboardInterrupt):
        families.run(config, train_one)
    assert trained == [("efficientnet_lite0", 25.0, False), ("vidnet", 80.0, False)]
    clock[0], interrupt[0] = 0.0, False  # a new process
    run_dir = families.run(replace(config, resume=True), train_one)
    assert trained[2:] == [("vidnet", 80.0, True)]  # the read-out finished; vidnet resumes with its first budget
    choice = json.loads((run_dir / "choice.json").read_text())
    assert choice["seconds"] == 50.0  # 20 s before vidnet began, and vidnet's 30 s over both processes


def test_vidnet_is_not_trained_where_the_read_out_spent_more_than_a_tiny_budget(tmp_path, fake_clock):
    """--time-budget 0.001: vidnet's share was clamped to 1 s before the quarter rule looked at it, so it trained."""
    from vidlstm.checkpoint import save_model
    from vidlstm.models import LRCN, ModelConfig

    clock = fake_clock
    trained = []

    def train_one(candidate):
        trained.append(candidate.backbone)
        save_model(candidate.resolved_model_dir, LRCN(ModelConfig(labels=["a", "b"], num_frames=4, image_size=32)))
        (candidate.resolved_model_dir / "metrics.json").write_text(json.dumps(
            {"readout": {"cv_accuracy": 0.8, "train_clips": 20, "cv_folds": 5}, "run_seconds": 5.0}))
        clock[0] += 5.0
        return candidate.run_dir

    config = TrainConfig(data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), time_budget=1.0, progress=False)
    choice = json.loads((families.run(config, train_one) / "choice.json").read_text())
    assert trained == ["efficientnet_lite0"] and choice["chosen"] == "pretrained"
    assert choice["candidates"]["scratch"]["skipped"].startswith("0 s of the 1 s time budget are left")


def test_a_huge_time_budget_plans_like_none():
    """--time-budget 1e308 overflowed the epoch plan (OverflowError) whenever an epoch took under a second."""
    from vidlstm.training.budget import EpochPlan

    plan = EpochPlan(planned=30, budget=1e308)
    assert plan.revise(1, elapsed=0.5, epoch_seconds=[0.5]) == 30 and not plan.cut_by_budget
