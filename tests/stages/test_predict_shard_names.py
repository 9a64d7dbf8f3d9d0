"""Which file a sharded predict writes: every `--shard I/N`, N = 1 included, its part OUT.partI-of-N.SUFFIX; a
torchrun of one process (WORLD_SIZE=1) splits nothing and writes OUT itself."""
from __future__ import annotations

from batch.predict_helpers import tiny_model_dir, video_folder
from vidlstm.batch.records import read_records
from vidlstm.cli import main as cli_main
from vidlstm.stages.predict import PredictConfig, run


def _predict_cli(videos, out, model_dir, *extra):
    return cli_main(["predict", str(videos), "-o", str(out), "--model", str(model_dir), "--device", "cpu",
                     "--workers", "1", "--threads", "1", "--no-progress", *extra])


def test_shard_0_of_1_writes_its_part_as_every_shard_does(tmp_path, make_video, monkeypatch, capsys):
    """`--shard 0/1` wrote OUT itself, not the OUT.part0-of-1.SUFFIX its help names: a job script's
    `vidlstm merge OUT.part*-of-N.jsonl` found no part where N was 1, and `-o` naming a part was let through."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model_dir, videos = tiny_model_dir(tmp_path), video_folder(make_video, 2)
    out, part = tmp_path / "p.jsonl", tmp_path / "p.part0-of-1.jsonl"
    assert _predict_cli(videos, out, model_dir, "--shard", "0/1") == 0
    assert f"-> {part}" in capsys.readouterr().out
    assert not out.exists() and len(read_records(part)) == 2
    assert cli_main(["merge", *map(str, tmp_path.glob("p.part*-of-1.jsonl")), "-o", str(out)]) == 0
    said = capsys.readouterr()
    assert f"2 records (2 ok, 0 failed) from 1 part, 0 duplicates dropped -> {out}" in said.out
    assert "incomplete" not in said.err
    assert _predict_cli(videos, part, model_dir, "--shard", "0/1") == 2
    assert f"{part}: names a part file already; with a shard give the whole output's name" in capsys.readouterr().err


def test_a_torchrun_of_one_process_writes_the_output_itself(tmp_path, make_video, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    model_dir, videos = tiny_model_dir(tmp_path), video_folder(make_video, 2)
    config = dict(inputs=[str(videos)], model_dir=str(model_dir), device="cpu", workers=1, threads=1, progress=False)
    assert run(PredictConfig(output=str(tmp_path / "p.jsonl"), **config)).output == tmp_path / "p.jsonl"
    # --shard beside it is no conflict (there is no torchrun split to disagree with), and names its part
    summary = run(PredictConfig(output=str(tmp_path / "q.jsonl"), shard="0/1", **config))
    assert summary.output == tmp_path / "q.part0-of-1.jsonl" and summary.ok == 2
