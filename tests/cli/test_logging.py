"""Library log lines go through logging.getLogger("vidlstm"); the CLI's handler prints them as today's one-liners."""
from __future__ import annotations

import logging
import sys

from vidlstm.cli import main
from vidlstm.logs import install_cli_handler, log


def test_cli_handler_levels_and_streams(capsys):
    install_cli_handler(0)
    log.info("epoch 1/2 loss 0.5")
    log.warning("%s: skipped, %s", "a.mp4", "permission denied")
    log.debug("hidden")
    out, err = capsys.readouterr()
    assert out == "epoch 1/2 loss 0.5\n" and err == "warning: a.mp4: skipped, permission denied\n"
    install_cli_handler(-1)  # -q
    log.info("epoch 2/2")
    log.error("broken")
    assert capsys.readouterr() == ("", "error: broken\n")
    install_cli_handler(1)  # -v
    log.debug("detail")
    assert capsys.readouterr().out == "detail\n"
    assert len([h for h in log.handlers if type(h).__name__ == "TqdmHandler"]) == 1  # replaced, not stacked
    assert log.propagate is False and logging.getLogger("vidlstm") is log


def test_under_torchrun_progress_lines_come_from_rank_0_alone(monkeypatch, capsys):
    """Every rank printed "auto: under torchrun only vidnet trains ...", once per rank."""
    for rank, said in (("1", ("", "warning: w\n")), ("0", ("i\n", "warning: w\n"))):
        monkeypatch.setenv("RANK", rank)
        install_cli_handler(0)
        log.info("i")
        log.warning("w")
        assert capsys.readouterr() == said, rank
    monkeypatch.setenv("RANK", "1")
    install_cli_handler(1)  # -v asks for everything, on every rank
    log.info("i")
    assert capsys.readouterr().out == "i\n"
    monkeypatch.delenv("RANK")
    install_cli_handler(0)


def test_quiet_and_verbose_flags_are_accepted_by_every_command(tiny_model_dir, capsys):
    assert main(["info", str(tiny_model_dir), "-q"]) == 0
    assert log.level == logging.WARNING
    assert main(["info", str(tiny_model_dir), "-v"]) == 0
    assert log.level == logging.DEBUG
    install_cli_handler(0)
    capsys.readouterr()


def test_quiet_turns_off_progress_bars_in_train_and_evaluate(make_video, tmp_path, tiny_model_dir, capfd,
                                                              monkeypatch, terminal_stderr):
    data = tmp_path / "data"
    for k, label in enumerate(("left", "right")):
        (data / label).mkdir(parents=True)
        for i in range(2):  # make_video writes under tmp_path; a seed per clip, so no two files are one
            make_video(f"data/{label}/{i}.mp4", num_frames=8, seed=2 * k + i)
    train = ["train", str(data), "--backbone", "vidnet", "--epochs", "1", "--frames", "4", "--image-size", "32",
             "--val-fraction", "0", "--decode-workers", "0"]
    evaluate = ["evaluate", str(data), "--model", str(tiny_model_dir)]
    capfd.readouterr()
    for loud, quiet, piped in ((evaluate + ["-o", str(tmp_path / "e1")], evaluate + ["-o", str(tmp_path / "e2"), "-q"],
                                evaluate + ["-o", str(tmp_path / "e3")]),
                               (train + ["-o", str(tmp_path / "r1")], train + ["-o", str(tmp_path / "r2"), "-q"],
                                train + ["-o", str(tmp_path / "r3")])):
        captured = sys.stderr
        terminal_stderr()
        assert main(loud) == 0
        assert "%|" in capfd.readouterr().err  # tqdm's bar: the control, without -q
        assert main(quiet) == 0
        err = capfd.readouterr().err
        assert "%|" not in err and "it/s" not in err, err
        monkeypatch.setattr(sys, "stderr", captured)
        assert main(piped) == 0  # stderr no terminal (a log file, CI): no bar redraws either
        err = capfd.readouterr().err
        assert "%|" not in err and "it/s" not in err, err
    install_cli_handler(0)


def test_run_hands_its_quiet_or_verbose_flag_to_every_step(tiny_model_dir, tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[[steps]]\ncommand = "info"\nargs = ["{tiny_model_dir}"]\n')
    assert main(["run", str(recipe), "-q"]) == 0
    assert log.level == logging.WARNING  # the step's own handler, installed with -q
    assert main(["run", str(recipe), "-v"]) == 0
    assert log.level == logging.DEBUG
    assert main(["run", str(recipe)]) == 0
    assert log.level == logging.INFO
    install_cli_handler(0)
    capsys.readouterr()


def test_verbose_adds_a_line_per_file_to_predict(make_video, tiny_model_dir, tmp_path, capsys):
    clip = make_video("a.mp4", num_frames=8)
    assert main(["predict", str(clip), "-o", str(tmp_path / "p.jsonl"), "--model", str(tiny_model_dir)]) == 0
    assert f"{clip}: " not in capsys.readouterr().out
    assert main(["predict", str(clip), "-o", str(tmp_path / "q.jsonl"), "--model", str(tiny_model_dir), "-v"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{clip}: ")]
    assert len(lines) == 1 and " frames, " in lines[0]
    install_cli_handler(0)


def test_line_progress_says_count_share_time_and_what_is_left(capsys):
    from vidlstm.logs import LineProgress, progress_bar

    install_cli_handler(0)
    clock = iter([0.0, 30.0, 65.0, 3700.0])
    bar = progress_bar(True, total=4, desc="decoding videos", unit="video", every=0.0, clock=lambda: next(clock))
    assert isinstance(bar, LineProgress)  # stderr is pytest's capture: no terminal
    bar.update(1)
    bar.set_postfix(failed=1)
    bar.update(2)
    bar.update(1)
    assert capsys.readouterr().out.splitlines() == [
        "decoding videos: 1/4 videos (25%) in 0:30, ~1:30 left",
        "decoding videos: 3/4 videos (75%) in 1:05, ~0:21 left; failed=1",
        "decoding videos: 4/4 videos (100%) in 1:01:40; failed=1"]
    quiet = LineProgress(total=3, desc="epoch", every=3600.0)  # at most once an interval
    for _ in range(3):
        quiet.update()
    assert quiet.n == 3 and capsys.readouterr().out == ""
    assert progress_bar(False, total=2).disable  # not asked for: tqdm's disabled bar, no lines


def test_predict_and_evaluate_print_progress_lines_where_stderr_is_no_terminal(make_video, tiny_model_dir, tmp_path,
                                                                               capsys, monkeypatch):
    """A log file or CI got nothing while a long batch ran: the bar is off there, and no line stood in for it."""
    monkeypatch.setenv("VIDLSTM_PROGRESS_SECONDS", "0")
    data = tmp_path / "data"
    clips = [make_video(f"data/left/{i}.mp4", num_frames=8, seed=i) for i in range(2)]
    assert main(["predict", *map(str, clips), "-o", str(tmp_path / "p.jsonl"), "--model", str(tiny_model_dir),
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "predict: 1/2 files (50%) in 0:0" in out and "predict: 2/2 files (100%)" in out, out
    assert main(["predict", *map(str, clips), "-o", str(tmp_path / "q.jsonl"), "--model", str(tiny_model_dir),
                 "--workers", "0", "-q"]) == 0
    assert "predict: " not in capsys.readouterr().out  # -q: no progress lines
    assert main(["predict", *map(str, clips), "-o", str(tmp_path / "r.jsonl"), "--model", str(tiny_model_dir),
                 "--workers", "0", "--no-progress"]) == 0
    assert "predict: " not in capsys.readouterr().out
    assert main(["evaluate", str(data), "--model", str(tiny_model_dir), "-o", str(tmp_path / "e")]) == 0
    assert "evaluating: 2/2 videos (100%)" in capsys.readouterr().out
    install_cli_handler(0)


def test_a_progress_line_stdout_cannot_take_is_dropped_without_a_logging_traceback(monkeypatch, capsys):
    """`predict ... > /dev/full` or `| head -1` printed a "--- Logging error ---" traceback per progress line."""
    import tqdm

    for error in (BrokenPipeError(32, "Broken pipe"), OSError(28, "No space left on device")):
        def failing(*args, error=error, **kwargs):
            raise error

        install_cli_handler(0)
        monkeypatch.setattr(tqdm.tqdm, "write", failing)
        log.info("predict: 1/2 files (50%) in 0:01")
        monkeypatch.undo()
        assert capsys.readouterr() == ("", "")
    install_cli_handler(0)
