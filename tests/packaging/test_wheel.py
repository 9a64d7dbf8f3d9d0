"""The wheel carries the shipped model: built, installed into a fresh venv outside the checkout, it classifies."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL_FILES = ("config.json", "labels.json", "model.safetensors", "README.md")


@pytest.mark.slow
def test_wheel_installs_outside_the_checkout_and_classifies_with_its_own_default_model(tmp_path, make_video):
    wheels = tmp_path / "wheels"
    # Build isolation fetches hatchling from the package index pip is configured with (CI's, or a local one).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=600)
    (wheel,) = wheels.glob("vidlstm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"vidlstm/_weights/default/{name}" for name in MODEL_FILES} <= names
    assert {f"vidlstm/_pipelines/{p.name}" for p in (ROOT / "pipelines").glob("*.toml")} <= names
    licences = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]  # the Apache-2.0 text pyproject names
    assert licences and b"Apache License" in zipfile.ZipFile(wheel).read(licences[0])

    # A fresh venv with only the wheel; its dependencies (torch ...) come from this test's environment via a
    # .pth line appended after the venv's own site-packages, so nothing is downloaded or reinstalled.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   timeout=300)

    clip = make_video("clip.mp4", num_frames=24)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIDLSTM_MODEL", "PYTHONPATH")}
    where = subprocess.run([python, "-c", "import vidlstm, vidlstm.defaults as d; "
                            "print(vidlstm.__file__); print(d.default_model_dir())"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout.split("\n")
    assert where[0].startswith(str(env_dir)) and where[1].startswith(str(env_dir))
    assert Path(where[1]).name == "default" and Path(where[1]).parent.name == "_weights"
    run = subprocess.run([env_dir / "bin" / "vidlstm", "classify", str(clip), "--json", "--top-k", "3"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout.splitlines()[-1])
    labels = json.loads((ROOT / "weights" / "default" / "labels.json").read_text())
    assert record["status"] == "ok" and record["label"] in labels and len(record["top_k"]) == 3
    shipped = json.loads((ROOT / "weights" / "default" / "config.json").read_text())
    assert record["frames"] == shipped["num_frames"]  # the shipped model's clip length, from the wheel's config.json
    # The recipes come with the wheel, by name, and start from the shipped model wherever it is installed.
    recipe = subprocess.run([env_dir / "bin" / "vidlstm", "run", "finetune", "--set", "data=clips", "--dry-run"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert recipe.returncode == 0, recipe.stderr
    assert "vidlstm extract clips --cache runs/finetune/cache --model default" in recipe.stdout
