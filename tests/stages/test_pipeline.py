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


def test_every_step_is_checked_before_the_first_runs(tmp_path, capsys):
    from vidlstm.cli import main

    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[[steps]]\ncommand = "synth"\nargs = ["{tmp_path / "clips"}"]\n'
                      f'[[steps]]\nname = "fit"\ncommand = "train"\nargs = ["{tmp_path / "clips"}"]\n'
                      f'options = {{ out = "{tmp_path / "run"}", epochs = "abc" }}\n')
    for extra in ([], ["--dry-run"]):
        assert main(["run", str(recipe), *extra]) == 2
        assert (f"r.toml: step 2 (fit): vidlstm train: error: argument --epochs: expected a positive integer, "
                f"got 'abc'") in capsys.readouterr().err
    assert not (tmp_path / "clips").exists()  # the first step never ran
    recipe.write_text(f'[[steps]]\ncommand = "synth"\nargs = ["{tmp_path / "clips"}"]\noptions = {{ per_klass = 1 }}\n')
    assert main(["run", str(recipe)]) == 2  # an option the command lacks: named as the step's command's, not run's
    assert "r.toml: step 1 (synth): vidlstm synth: error: unrecognized arguments: --per-klass 1" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_run_resume_continues_a_begun_training_step_instead_of_being_refused(tmp_path, capsys):
    from vidlstm.cli import main

    clips, run_dir = tmp_path / "clips", tmp_path / "run"
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[[steps]]\ncommand = "synth"\nargs = ["{clips}"]\n'
                      f'options = {{ per_class = 2, size = 32, min_frames = 8, max_frames = 8 }}\n'
                      f'[[steps]]\ncommand = "train"\nargs = ["{clips}"]\n'
                      f'options = {{ out = "{run_dir}", backbone = "vidnet", epochs = 1, frames = 4, image_size = 32, '
                      f'val_fraction = 0, no_progress = true }}\n')
    assert main(["run", str(recipe)]) == 0
    state = (run_dir / "last" / "train_state.pt").read_bytes()
    made = (clips / "manifest.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["run", str(recipe)]) == 2  # the run folder holds a run: refused without --resume, before any step
    assert capsys.readouterr().err.strip() == (
        f"vidlstm run: error: {recipe}: step 2 (train): {run_dir} already holds a training run; run the recipe with "
        f"--resume to continue it (the other steps run again), or set another run folder")
    assert (clips / "manifest.csv").stat().st_mtime_ns == made  # the clips were not made again first
    assert main(["run", str(recipe), "--dry-run"]) == 0  # a dry run only prints the steps
    recipe.write_text(recipe.read_text().replace(f'out = "{run_dir}", ', "").replace(
        f'args = ["{clips}"]\noptions = {{ backbone', f'args = ["{clips}", "--out={run_dir}"]\noptions = {{ backbone'))
    assert f"--out={run_dir}" in recipe.read_text()
    assert main(["run", str(recipe)]) == 2  # --out=PATH is a run folder too
    assert "step 2 (train): " in capsys.readouterr().err
    assert main(["run", str(recipe), "--resume"]) == 0  # a finished run: resumed, nothing trained again
    assert (run_dir / "last" / "train_state.pt").read_bytes() == state


@pytest.mark.parametrize("text, said", [
    ('[[steps]]\ncommand = "synth"\nargs = ["x"]\noptions = "per_class=2"\n',
     "step 1: 'options' must be a table (got 'per_class=2')"),
    ('steps = ["train"]\n', "step 1 must be a table ([[steps]] with command = ...), not 'train'"),
    ('vars = 3\n[[steps]]\ncommand = "synth"\nargs = ["x"]\n', "'vars' must be a table of names and values ([vars])"),
    ('[[steps]]\ncommand = ["synth"]\nargs = ["x"]\n', "step 1: 'command' must be a string (got ['synth'])"),
    ('[[steps]]\ncommand = "synth"\nargs = "xy"\n', "step 1: 'args' must be an array (got 'xy')"),
    ('[[steps]]\ncommand = "synth"\nargs = ["x"]\nfoo = 1\n', "step 1: unknown key 'foo' (a step has command, name, "
                                                             "args, options)"),
    ('\ufeffstepz = 1\n[setings]\n[[steps]]\ncommand = "synth"\nargs = ["x"]\n',  # a BOM is no statement; ignored,
     # where a step's key is refused
     "unknown top-level key(s) 'setings', 'stepz'; a recipe holds [vars] and [[steps]]"),
    (b'[[steps]]\ncommand = "synth"\nargs = ["caf\xe9"]\n',  # Latin-1: a UnicodeDecodeError traceback
     "cannot read the recipe (not UTF-8 text, as TOML must be: byte 0xe9 on line 3)"),
])
def test_recipe_values_of_the_wrong_type_are_one_line_errors(tmp_path, text, said):
    """Each was an AttributeError or TypeError traceback, an unknown key was ignored, and a string of args was split
    into its letters."""
    path = tmp_path / "r.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UsageError) as error:
        load_recipe(path)
    assert str(error.value) == f"{path}: {said}"


def test_the_shipped_recipes_hold_only_known_step_keys():
    for recipe in sorted((Path(__file__).resolve().parents[2] / "pipelines").glob("*.toml")):
        assert load_recipe(recipe, {"data": "d", "model": "m"} if "finetune" in recipe.name else None)


def test_the_recipes_that_come_with_vidlstm_are_found_by_name(tmp_path, monkeypatch, capsys):
    """Outside a source checkout `vidlstm run pipelines/finetune.toml` found no file: the recipes were not in the
    wheel, and finetune.toml started from a model path only a checkout has."""
    from vidlstm.cli import main
    from vidlstm.stages.pipeline import find_recipe, shipped_recipes

    assert set(shipped_recipes()) == {p.stem for p in (REPO / "pipelines").glob("*.toml")} >= {"finetune",
                                                                                                "default_model"}
    monkeypatch.chdir(tmp_path)
    for name in ("finetune", "finetune.toml", "pipelines/finetune.toml"):
        assert find_recipe(name) == shipped_recipes()["finetune"]
    (tmp_path / "finetune").mkdir()  # a folder of that name (the recipe makes runs/finetune) is no recipe
    assert find_recipe("finetune") == shipped_recipes()["finetune"]
    assert find_recipe("myrecipes/finetune.toml") == Path("myrecipes/finetune.toml")  # a typo runs nothing shipped
    assert find_recipe("./finetune.toml") == Path("finetune.toml")  # nor does a path to a file that is not there
    (tmp_path / "finetune.toml").write_text('[[steps]]\ncommand = "info"\n')
    for name in ("finetune.toml", "finetune"):  # the user's own file comes first
        assert find_recipe(name) == Path("finetune.toml")
    (tmp_path / "finetune.toml").unlink()
    steps = load_recipe("finetune", {"data": "clips"})
    assert steps[0].argv == ["extract", "clips", "--cache", "runs/finetune/cache", "--model", "default"]
    assert main(["run", "nope"]) == 2
    assert capsys.readouterr().err.strip() == ("vidlstm run: error: nope: no such recipe file (the recipes that "
                                               "come with vidlstm, by name: default_model, finetune)")


def test_an_interrupted_step_says_to_resume_the_recipe_not_the_step(tmp_path, monkeypatch, capsys):
    """Ctrl-C in a recipe's finetune step said "vidlstm finetune: interrupted; run the same command with --resume",
    a command the user never typed: `vidlstm run RECIPE --resume` is what continues it."""
    from vidlstm.cli import IN_RECIPE, info, main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", interrupted)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[steps]]\nname = "look"\ncommand = "info"\n')
    assert main(["run", str(recipe)]) == 130
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"vidlstm info: interrupted; run the same `vidlstm run {recipe}` command with "
                                    f"--resume to continue")
    assert captured.out.splitlines()[-1] == "[1/1] look was interrupted; stopping"
    assert IN_RECIPE == []
    assert main(["info"]) == 130 and capsys.readouterr().err.strip() == "vidlstm info: interrupted"


@pytest.mark.parametrize("options, said", [
    ("{ per_class = [1, 2] }", "option 'per_class' takes one value (a string or a number), not an array ([1, 2])"),
    ('{ force = "yes" }', "option 'force' is a flag: true or false (TOML's booleans, without quotes; the text "
                          "\"true\" or \"false\", as a ${var} gives, also counts), not \"yes\""),
    ("{ force = 1 }", "option 'force' is a flag: true or false (TOML's booleans, without quotes; the text \"true\" or "
                      "\"false\", as a ${var} gives, also counts), not 1"),
    ("{ seed = true }", "option 'seed' takes one value (a string or a number), not true"),
    ("{ size = { px = 32 } }", "option 'size' takes one value (a string or a number), not a table ({\"px\": 32})"),
])
def test_an_option_value_of_a_kind_the_option_does_not_take_names_the_step_and_the_key(tmp_path, capsys, options,
                                                                                       said):
    """`per_class = [1, 2]` and `force = "yes"` ended in argparse's "unrecognized arguments: 2" / "...: yes", naming
    neither the step nor the key."""
    from vidlstm.cli import main

    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[[steps]]\ncommand = "synth"\nargs = ["{tmp_path / "first"}"]\n'
                      f'[[steps]]\nname = "clips"\ncommand = "synth"\nargs = ["{tmp_path / "s"}"]\n'
                      f'options = {options}\n')
    for extra in ([], ["--dry-run"]):
        assert main(["run", str(recipe), *extra]) == 2
        assert capsys.readouterr().err.strip() == f"vidlstm run: error: {recipe}: step 2 (clips): {said}"
    assert not (tmp_path / "first").exists()  # refused before the first step ran


def test_a_flag_takes_true_or_false_as_text_and_an_array_gives_a_repeatable_option_once_per_value(tmp_path,
                                                                                                  capsys):
    """`force = "false"` was `--force false` ("unrecognized arguments: false"), though a ${var} is always text, and
    `explanations = ["a", "b"]` was `--explanations a b`."""
    from vidlstm.cli import main

    recipe = tmp_path / "r.toml"
    recipe.write_text('[vars]\nforce = false\n'  # a TOML boolean: its ${force} is the text "False"
                      '[[steps]]\ncommand = "synth"\nargs = ["s"]\noptions = { force = "${force}", seed = 3 }\n'
                      '[[steps]]\ncommand = "report"\nargs = ["run"]\n'
                      'options = { explanations = ["a", "b"], output = "r.html", title = "false" }\n')
    for value, words in ((None, ""), ("false", ""), ("", ""), ("true", " --force"), ("TRUE", " --force")):
        assert main(["run", str(recipe), "--dry-run", *(["--set", f"force={value}"] if value is not None else [])]) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"[1/2] synth: vidlstm synth s{words} --seed 3",  # a value option's "false" is its value:
            "[2/2] report: vidlstm report run --explanations a --explanations b --output r.html --title false"]


def test_recipe_dir_and_cwd_are_the_recipe_files_folder_and_the_folder_run_started_in(tmp_path, monkeypatch):
    """As the README says: both absolute (`${recipe_dir}` was the recipe's path as given, `..` for `../r.toml`)."""
    import os

    (tmp_path / "recipes").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "recipes" / "r.toml").write_text(
        '[[steps]]\ncommand = "synth"\nargs = ["${recipe_dir}/clips"]\n'
        '[[steps]]\ncommand = "synth"\nargs = ["${cwd}/clips"]\n')
    monkeypatch.chdir(tmp_path / "work")
    for given in ("../recipes/r.toml", str(tmp_path / "recipes" / "r.toml")):
        (_, beside), (_, here) = (step.argv for step in load_recipe(given))
        assert os.path.isabs(beside) and os.path.isabs(here)
        assert os.path.realpath(beside) == os.path.realpath(tmp_path / "recipes" / "clips")
        assert os.path.realpath(here) == os.path.realpath(tmp_path / "work" / "clips")
