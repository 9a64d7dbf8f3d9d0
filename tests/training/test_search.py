"""The input-mode search: what it tries, how it chooses, and that the final run is the chosen setting's run."""
from __future__ import annotations

import json
import re

import pytest
import torch

from vidlstm.checkpoint import load_model
from vidlstm.data.synth import SynthConfig, generate_dataset
from vidlstm.errors import UsageError
from vidlstm.stages import train
from vidlstm.training import search
from vidlstm.training.config import TrainConfig

TINY = dict(backbone="vidnet", epochs=1, batch_size=4, views=2, num_frames=4, image_size=32, time_budget=0, progress=False, search=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    return generate_dataset(root / "data", SynthConfig(per_class=6, size=32, min_frames=6, max_frames=8, seed=7),
                            classes=("left", "right"))


@pytest.fixture
def quick_search(monkeypatch):
    """The real search on 12 clips, one epoch per trial (the defaults need >= 40 clips, >= 8 epochs)."""
    monkeypatch.setattr(search, "MIN_SEARCH_CLIPS", 8)
    monkeypatch.setattr(search, "MIN_TRIAL_EPOCHS", 1)
    monkeypatch.setattr(search, "MAX_TRIAL_EPOCHS", 1)


def _result(correct, loss, mode):
    return {"settings": {"input_mode": mode}, "correct": correct, "loss": loss}


def test_the_default_is_kept_unless_another_candidate_gets_two_more_clips_right():
    assert search.choose([_result(30, 0.5, "rgb+diff"), _result(31, 0.1, "rgb")]) == 0  # one clip: noise
    assert search.choose([_result(30, 0.5, "rgb+diff"), _result(32, 0.9, "rgb")]) == 1
    assert search.choose([_result(30, 0.5, "rgb+diff"), _result(12, 0.1, "rgb")]) == 0
    assert search.CANDIDATES[0]["input_mode"] == search.DEFAULT_INPUT_MODE == "rgb+diff"


def test_no_search_when_the_user_chose_or_the_data_is_small(data, tmp_path):
    config = TrainConfig(data=str(data), out_dir=str(tmp_path / "a"), **TINY)
    assert search.needs_search(config)
    assert not search.needs_search(TrainConfig(data=str(data), out_dir=str(tmp_path / "b"), input_mode="rgb"))
    assert not TrainConfig(data=".", out_dir="x").search  # opt-in: it cost more than it gained (RESULTS.md)
    ctx = type("Ctx", (), {"enabled": False})()
    targets = torch.tensor([0, 1] * 20).numpy()
    assert search.no_search(config, ctx, targets, 2) is None
    assert "(< 40)" in search.no_search(config, ctx, targets[:39], 2)
    assert "--search turns it on" in search.no_search(TrainConfig(data=".", out_dir="x"), ctx, targets, 2)
    frozen = TrainConfig(data=".", out_dir="x", backbone="vidnet", train_backbone="frozen", search=True)
    assert "frozen" in search.no_search(frozen, ctx, targets, 2)
    with pytest.raises(UsageError, match="--input-mode must be one of"):
        TrainConfig(data=".", out_dir="x", input_mode="depth")


@pytest.mark.slow
def test_a_small_run_keeps_the_default_and_says_why(data, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="vidlstm"):
        run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), **TINY))
    assert any(r.getMessage().startswith("--search skipped: ") and "too few to tell candidates apart" in r.getMessage()
               for r in caplog.records)  # asked for, so said where the user looks, not only in metrics.json
    assert not (run_dir / "search.json").exists()
    note = json.loads((run_dir / "model" / "metrics.json").read_text())["chosen_from_data"]["input_mode"]
    assert note["input_mode"] == "rgb+diff" and "too few to tell candidates apart" in note["rule"]
    assert load_model(run_dir / "model").config.input_mode == "rgb+diff"
    assert json.loads((run_dir / "config.json").read_text())["input_mode"] == "rgb+diff"


@pytest.mark.slow
def test_search_scores_every_training_clip_once_per_candidate_and_records_the_choice(data, tmp_path, quick_search):
    run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), **TINY))
    record = json.loads((run_dir / "search.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())
    assert [r["settings"] for r in record["results"]] == [{"input_mode": "rgb+diff"}, {"input_mode": "rgb"}]
    for r in record["results"]:
        assert r["clips"] == len(split["train"])  # each training clip held out once; validation clips never
        assert 0 <= r["correct"] <= r["clips"] and len(r["fold_accuracy"]) == 2
        assert r["accuracy"] == pytest.approx(r["correct"] / r["clips"], abs=1e-4)
    assert record["trial_epochs"] == 1
    assert record["chosen"] == record["results"][search.choose(record["results"])]["settings"]
    chosen = record["chosen"]["input_mode"]
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["chosen_from_data"]["input_mode"]["input_mode"] == chosen
    assert set(metrics["chosen_from_data"]["input_mode"]["scores"]) == {"input mode rgb+diff", "input mode rgb"}
    assert load_model(run_dir / "model").config.input_mode == chosen
    assert "search" in (run_dir / "model" / "README.md").read_text()  # the model card shows the search


@pytest.mark.slow
def test_the_final_run_after_choosing_rgb_is_the_run_with_input_mode_rgb(data, tmp_path, quick_search, monkeypatch):
    monkeypatch.setattr(search, "choose", lambda results: 1)  # whatever the scores: rgb
    searched = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "searched"), **TINY))
    direct = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "direct"), input_mode="rgb", **TINY))
    a, b = load_model(searched / "model"), load_model(direct / "model")
    assert a.config.input_mode == b.config.input_mode == "rgb"
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


@pytest.mark.slow
def test_a_resumed_run_keeps_the_input_mode_its_search_chose(data, tmp_path, quick_search, monkeypatch):
    monkeypatch.setattr(search, "choose", lambda results: 1)
    config = dict(TINY, epochs=2)

    def interrupt(epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), **config), on_epoch_end=interrupt)
    monkeypatch.setattr(train, "search", lambda *a, **k: pytest.fail("a resumed run must not search again"))
    run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), resume=True, **config))
    assert load_model(run_dir / "model").config.input_mode == "rgb"
    note = json.loads((run_dir / "model" / "metrics.json").read_text())["chosen_from_data"]["input_mode"]
    assert note["input_mode"] == "rgb" and "2-fold CV" in note["rule"]


@pytest.mark.slow
def test_a_budget_too_small_for_the_trials_keeps_the_default(data, tmp_path, monkeypatch):
    monkeypatch.setattr(search, "MIN_SEARCH_CLIPS", 8)  # trials still need >= 8 epochs
    # Each trial's share of the budget is ~1e-6 s: one epoch on any machine overruns it (3 s alone fit 8 tiny
    # epochs on a fast CI machine).
    monkeypatch.setattr(search, "SEARCH_SHARE", 1e-5)
    run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), **dict(TINY, epochs=None,
                                                                                         time_budget=3.0)))
    note = json.loads((run_dir / "model" / "metrics.json").read_text())["chosen_from_data"]["input_mode"]
    assert note["input_mode"] == "rgb+diff"
    assert re.search(r"time budget fits 1 epoch\(s\) per trial \(< 8\)", note["rule"]), note["rule"]
    assert not (run_dir / "search.json").exists()


@pytest.mark.slow
def test_by_default_there_is_no_search_and_the_input_mode_is_rgb_plus_diff(data, tmp_path, quick_search):
    run_dir = train.run(TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), **dict(TINY, search=False)))
    assert not (run_dir / "search.json").exists()
    note = json.loads((run_dir / "model" / "metrics.json").read_text())["chosen_from_data"]["input_mode"]
    assert note == {"rule": "default, no search (off; --search turns it on)", "input_mode": "rgb+diff"}
