"""`default` names the shipped default model wherever vidlstm runs from, unless a folder of that name is here."""
from __future__ import annotations

import shutil

from vidlstm.cli import main
from vidlstm.cli.common import model_folder
from vidlstm.defaults import default_model_dir


def test_default_names_the_shipped_model_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert model_folder("default") == str(default_model_dir())
    assert main(["info", "default", "--json"]) == 0
    assert str(default_model_dir()) in capsys.readouterr().out
    (tmp_path / "default").mkdir()  # a folder of that name that holds no model does not hide the shipped one
    assert model_folder("default") == str(default_model_dir())
    (tmp_path / "default").rmdir()
    shutil.copytree(default_model_dir(), tmp_path / "default")  # a model folder of that name here is the user's
    assert model_folder("default") == "default"
    assert model_folder("runs/x/model") == "runs/x/model"
