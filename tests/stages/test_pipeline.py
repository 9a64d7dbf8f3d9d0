"""Pipeline recipes: ${var} substitution, option conversion, step order, errors; the shipped recipes parse."""
from __future__ import annotations

from pathlib import Path

import pytest

from vidlstm.cli import build_parser
from vidlstm.errors import UsageError
from vidlstm.stages.pipeline import PipelineConfig, load_recipe, run

REPO = Path(__file__).resolve().parents[2]

RECIPE = """
[vars]
data = ""
run = "runs/x"
cache = "${run}/cache"

[[steps]]
name = "features"
command = "extract"
args = ["${data}"]
options = { cache = "${cache}", frames = 8, no_progress = true, pretrained = false, model = "" }

[[steps]]
command = "train"
args = ["${data}"]
options = { out = "${run}", cache = "${cache}", epochs = 3 }
"""


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE)
    return path


def test_steps_get_substituted_arguments_and_options(recipe):
    steps = load_recipe(recipe, {"data": "clips", "run": "out/r1"})
    assert [s.name for s in steps] == ["features", "train"]
    assert steps[0].argv == ["extract", "clips", "--cache", "out/r1/cache", "--frames", "8", "--no-progress"]
    assert steps[1].argv == ["train", "clips", "--out", "out/r1", "--cache", "out/r1/cache", "--epochs", "3"]


def test_run_prints_each_step_and_stops_at_the_first_failure(recipe):
    calls, lines = [], []
    code = run(PipelineConfig(str(recipe), {"data": "d"}), runner=lambda argv: calls.append(argv) or 3,
               echo=lines.append)
    assert code == 3 and len(calls) == 1
    assert lines[0] == "[1/2] features: vidlstm extract d --cache runs/x/cache --frames 8 --no-progress"
    assert "failed with exit code 3" in lines[1]
    calls.clear()
    assert run(PipelineConfig(str(recipe), {"data": "d"}, dry_run=True), runner=calls.append, echo=lines.append) == 0
    assert calls == []


def test_recipe_errors_are_one_line_usage_errors(recipe, tmp_path):
    with pytest.raises(UsageError, match=r"needs \$\{data\}; pass --set data=VALUE"):
        load_recipe(recipe)
    with pytest.raises(UsageError, match="--set dta=... names no variable"):
        load_recipe(recipe, {"dta": "x"})
    bad = tmp_path / "bad.toml"
    bad.write_text('[vars]\na = "${b}"\nb = "${a}"\n[[steps]]\ncommand = "train"\n')
    with pytest.raises(UsageError, match="cycle"):
        load_recipe(bad)
    bad.write_text('[[steps]]\ncommand = "train"\nargs = ["${nope}"]\n')
    with pytest.raises(UsageError, match=r"\$\{nope\} is not a variable"):
        load_recipe(bad)
    with pytest.raises(UsageError, match="no such recipe"):
        load_recipe(tmp_path / "missing.toml")


def test_a_recipe_that_runs_itself_is_refused_not_a_recursion_error(tmp_path, capsys):
    from vidlstm.cli import main

    recipe = tmp_path / "self.toml"
    recipe.write_text(f'[[steps]]\nname = "me"\ncommand = "run"\nargs = ["{recipe}"]\n')
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "self.toml: a step runs this recipe again, which is already running" in err
    assert "RecursionError" not in err


@pytest.mark.parametrize("name", ["finetune.toml", "default_model.toml"])
def test_shipped_recipes_parse_into_valid_commands(name):
    steps = load_recipe(REPO / "pipelines" / name, {"data": "clips"} if name == "finetune.toml" else {})
    parser = build_parser()
    for step in steps:
        args = parser.parse_args(step.argv)  # argparse exits (SystemExit) on any unknown option
        assert args.command == step.argv[0]
