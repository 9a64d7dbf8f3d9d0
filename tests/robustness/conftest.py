"""Fixtures of the robustness suite: the damaged-input corpora, generated and real (see damaged_inputs.py)."""
from __future__ import annotations

import pytest

# The checks in these helper modules are asserts too: let pytest explain them when they fail.
pytest.register_assert_rewrite("cli_runs", "damaged_inputs")

from damaged_inputs import (Input, class_folders, encode_exact, generated_corpus, moving_square_clip,  # noqa: E402
                            real_corpus)


@pytest.fixture(scope="session")
def damaged_corpus(tmp_path_factory) -> list[Input]:
    """Generated inputs in one folder: a healthy clip, 10 truncations, byte flips, header-only copies, wrong
    extensions, a folder and a FIFO named .mp4, a symlink loop, 1x1, 4K, zero- and one-frame clips, a GIF."""
    return generated_corpus(tmp_path_factory.mktemp("damaged_generated"))


@pytest.fixture(scope="session")
def _real_corpus_cache(tmp_path_factory) -> dict:
    return {"root": tmp_path_factory.mktemp("damaged_real"), "inputs": None}


@pytest.fixture
def real_damaged_corpus(shared_data, _real_corpus_cache) -> list[Input]:
    """Three real videos (MP4, AVI, WebM) with every damage, plus odd real files (built once per session);
    skipped where ../shared/data is absent."""
    if _real_corpus_cache["inputs"] is None:
        _real_corpus_cache["inputs"] = real_corpus(shared_data / "videos", _real_corpus_cache["root"])
    return _real_corpus_cache["inputs"]


@pytest.fixture
def small_data(tmp_path):
    """(DATA, clip): two classes named like tiny_model_dir's labels with two clean clips each, and one more clip."""
    class_folders([], tmp_path / "data", classes=("left", "right"), clean_per_class=2)
    clip = encode_exact(tmp_path / "clip.mp4", moving_square_clip(12, 32, 32), pix_fmt="yuv420p")
    return tmp_path / "data", clip


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a tmpfs of ``size`` ("4k", "64k") at a new folder, unmounted after the test; it can be
    grown with ``mount -o remount,size=...``. Root only: skipped elsewhere, where monkeypatched full disks still run."""
    import os
    import subprocess

    mounted = []

    def mount(size: str):
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                               capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs needs root")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)
