"""`vidlstm export`: ONNX files run in onnxruntime alone and .pt2 programs match the PyTorch model on new sizes.

Tolerance: atol 1e-4 on logits, features and states (float32; measured differences are ~1e-6).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidlstm.checkpoint import load_model, save_model
from vidlstm.cli import main
from vidlstm.models import LRCN, ModelConfig

ATOL = 1e-4
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["left", "right", "up"], backbone="vidnet", image_size=32, num_frames=8,
                             proj_dim=32, hidden_size=32, temperature=1.5))
    return save_model(tmp_path_factory.mktemp("model"), model)


@pytest.fixture(scope="module")
def onnx_export(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    assert main(["export", "--model", str(model_dir), "--format", "onnx", "-o", str(out), "--threads", "1"]) == 0
    return out.parent


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def close(onnx_output: np.ndarray, torch_output: torch.Tensor) -> None:
    np.testing.assert_allclose(onnx_output, torch_output.detach().numpy(), atol=ATOL, rtol=0)


def test_onnx_export_writes_parts_and_a_card(onnx_export):
    assert sorted(p.name for p in onnx_export.iterdir()) == [
        "model.encoder.onnx", "model.json", "model.stream.onnx", "model.temporal.onnx"]
    card = json.loads((onnx_export / "model.json").read_text())
    assert card["labels"] == ["left", "right", "up"]
    assert card["temperature"] == 1.5
    assert card["preprocessing"]["input_mode"] == "rgb+diff"
    assert "stabilize" not in card["preprocessing"]  # the model saw its clips as decoded
    assert [i["name"] for i in card["parts"]["encoder"]["inputs"]] == ["frames", "prev_frame"]
    assert card["parts"]["encoder"]["inputs"][0]["shape"] == ["batch", "time", 3, 32, 32]
    assert [o["name"] for o in card["parts"]["temporal"]["outputs"]] == [
        "logits", "step_logits", "attention", "causal_step_logits"]
    for part in card["parts"].values():
        assert 0 <= part["verified_max_abs_diff"] < ATOL
    inputs = [(i.name, i.shape) for i in session(onnx_export / "model.temporal.onnx").get_inputs()]
    assert inputs == [("features", ["batch", "time", 144]), ("lengths", ["batch"])]


def test_onnx_encoder_matches_pytorch_on_other_batch_sizes_and_lengths(onnx_export, model_dir):
    model = load_model(model_dir)
    encoder = session(onnx_export / "model.encoder.onnx")
    for batch, steps in [(1, 5), (3, 2)]:
        frames, before = torch.rand(batch, steps, 3, 32, 32), torch.rand(batch, 3, 32, 32)
        (features,) = encoder.run(None, {"frames": frames.numpy(), "prev_frame": before.numpy()})
        with torch.no_grad():
            close(features, model.encode_frames(frames, prev_frame=before))


def test_onnx_temporal_matches_pytorch_on_padded_batches(onnx_export, model_dir):
    model = load_model(model_dir)
    temporal = session(onnx_export / "model.temporal.onnx")
    for lengths in ([6, 3], [9, 1, 5, 9]):
        feats = torch.randn(len(lengths), max(lengths), model.feature_dim)
        lengths = torch.tensor(lengths)
        got = temporal.run(None, {"features": feats.numpy(), "lengths": lengths.numpy()})
        with torch.no_grad():
            want = model.forward_features(feats, lengths)
        for have, expected in zip(got, want):
            close(have, expected)
        assert np.all(got[2][1, 3:] == 0)  # no attention on padding


def test_onnx_parts_chain_into_the_full_model_and_stream_chunk_by_chunk(onnx_export, model_dir):
    model = load_model(model_dir)
    frames = torch.rand(2, 7, 3, 32, 32)  # (B, T, 3, H, W)
    encoder = session(onnx_export / "model.encoder.onnx")
    (features,) = encoder.run(None, {"frames": frames.numpy(), "prev_frame": frames[:, 0].numpy()})
    logits = session(onnx_export / "model.temporal.onnx").run(
        ["logits"], {"features": features, "lengths": np.array([7, 7])})[0]
    with torch.no_grad():
        out = model(frames)
    close(logits, out.logits)
    # Streaming: chunks of 3, 3, 1 with the state carried equal the causal head over the whole clip.
    stream = session(onnx_export / "model.stream.onnx")
    h = c = np.zeros((1, 2, 32), np.float32)
    steps, before = [], frames[:, 0]
    for start in range(0, 7, 3):
        chunk = frames[:, start:start + 3]
        (feats,) = encoder.run(None, {"frames": chunk.numpy(), "prev_frame": before.numpy()})
        step_logits, h, c = stream.run(None, {"features": feats, "h": h, "c": c})
        steps.append(step_logits)
        before = chunk[:, -1]
    close(np.concatenate(steps, axis=1), out.causal_step_logits)


@pytest.mark.slow
def test_torch_export_programs_match_pytorch(model_dir, tmp_path, capsys):
    import vidlstm.stages.export_graphs  # noqa: F401  registers the vidlstm::lstm operator the programs use

    out = tmp_path / "exported"
    assert main(["export", "--model", str(model_dir), "--format", "torch", "-o", str(out), "--threads", "1"]) == 0
    assert "temporal" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["encoder.pt2", "export.json", "stream.pt2", "temporal.pt2"]
    model = load_model(model_dir)
    encoder = torch.export.load(out / "encoder.pt2").module()
    temporal = torch.export.load(out / "temporal.pt2").module()
    with torch.no_grad():
        for lengths in ([5, 2], [1]):
            frames = torch.rand(len(lengths), max(lengths), 3, 32, 32)
            features = encoder(frames, frames[:, 0])
            torch.testing.assert_close(features, model.encode_frames(frames), atol=ATOL, rtol=0)
            got = temporal(features, torch.tensor(lengths))
            want = model.forward_features(features, torch.tensor(lengths))
            for have, expected in zip(got, want):
                torch.testing.assert_close(have, expected, atol=ATOL, rtol=0)
        stream = torch.export.load(out / "stream.pt2").module()
        feats, state = torch.randn(1, 4, model.feature_dim), (torch.zeros(1, 1, 32), torch.zeros(1, 1, 32))
        step_logits, h, c = stream(feats, *state)
        want_logits, (want_h, want_c) = model.stream_step(feats, state)
        torch.testing.assert_close(step_logits, want_logits, atol=ATOL, rtol=0)
        torch.testing.assert_close(h, want_h, atol=ATOL, rtol=0)
    # Run as a user runs them, outside no_grad: inference graphs, whose outputs carry no autograd history (each
    # converted with float() warned).
    frames = torch.rand(1, 2, 3, 32, 32)
    assert not encoder(frames, frames[:, 0]).requires_grad
    assert not any(t.requires_grad for t in temporal(model.encode_frames(frames).detach(), torch.tensor([2])))


def test_rgb_model_without_causal_head_exports_encoder_and_temporal_only(tmp_path):
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["x", "y"], backbone="vidnet", image_size=32, num_frames=4, input_mode="rgb",
                             proj_dim=16, hidden_size=16, causal_head=False))
    model_dir = save_model(tmp_path / "rgb_model", model)
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "out"), "--threads", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["encoder.onnx", "export.json", "temporal.onnx"]
    encoder = session(tmp_path / "out" / "encoder.onnx")
    assert [i.name for i in encoder.get_inputs()] == ["frames"]
    frames = torch.rand(1, 3, 3, 32, 32)
    (features,) = encoder.run(None, {"frames": frames.numpy()})
    with torch.no_grad():
        close(features, model.eval().encode_frames(frames))
    outputs = [o.name for o in session(tmp_path / "out" / "temporal.onnx").get_outputs()]
    assert outputs == ["logits", "step_logits", "attention"]


@pytest.mark.parametrize("mode", ["diff", "rgb,diff"])
def test_a_diff_model_exports_an_encoder_that_takes_the_previous_frame(tmp_path, mode):
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["x", "y"], backbone="vidnet", image_size=32, num_frames=4, input_mode=mode,
                             proj_dim=16, hidden_size=16, causal_head=False, stabilize=True)).eval()
    model_dir = save_model(tmp_path / "diff_model", model)
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "out"), "--threads", "1"]) == 0
    # Trained on stabilized clips: the card tells whoever runs the graphs to stabilize first.
    assert "undo the camera's pan" in json.loads((tmp_path / "out" / "export.json").read_text())["preprocessing"]["stabilize"]
    encoder = session(tmp_path / "out" / "encoder.onnx")
    assert [i.name for i in encoder.get_inputs()] == ["frames", "prev_frame"]
    frames, before = torch.rand(2, 5, 3, 32, 32), torch.rand(2, 3, 32, 32)
    (chunk,) = encoder.run(None, {"frames": frames.numpy(), "prev_frame": before.numpy()})
    (start,) = encoder.run(None, {"frames": frames.numpy(), "prev_frame": frames[:, 0].numpy()})
    with torch.no_grad():
        close(chunk, model.encode_frames(frames, prev_frame=before))
        close(start, model.encode_frames(frames))  # a clip's start: its own first frame, a zero difference


def test_bad_export_input_is_one_line_and_exit_code_2(model_dir, tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such model folder" in err
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "missing" / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err and str(tmp_path / "missing") in err
    (tmp_path / "a_file").write_text("x")
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "a_file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(model_dir), "--format", "tflite", "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    # A file name of the other format became a folder so named; an empty -o wrote into the working folder.
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "m.pt2")]) == 2
    assert "m.pt2: ends in .pt2, the suffix of --format torch; for --format onnx give a folder" in capsys.readouterr().err
    assert main(["export", "--model", str(model_dir), "-o", ""]) == 2
    assert "-o names no folder or file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_an_export_that_fails_leaves_no_part_behind_and_says_so_in_one_line(model_dir, tmp_path, capsys,
                                                                           monkeypatch):
    from vidlstm.stages import export

    def broken(part, path):
        if part.name == "temporal":
            raise RuntimeError("the exporter gave up\nmany more lines")
        path.write_bytes(b"graph")

    monkeypatch.setattr(export, "save_onnx", broken)
    monkeypatch.setattr(export, "verify_part", lambda part, path, fmt: 0.0)
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "out"), "--threads", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its temporal graph could not be exported as onnx (RuntimeError: the " \
        "exporter gave up); nothing was written" in err
    assert list((tmp_path / "out").iterdir()) == []  # the encoder written first was removed again


def test_ctrl_c_mid_export_leaves_the_earlier_export_whole(model_dir, tmp_path, capsys, monkeypatch):
    """Ctrl-C while a second model was exported into a folder left one model's card beside the other's graphs."""
    from vidlstm.stages import export

    out = tmp_path / "out"
    monkeypatch.setattr(export, "verify_part", lambda part, path, fmt: 0.0)
    monkeypatch.setattr(export, "save_onnx", lambda part, path: path.write_bytes(f"first {part.name}".encode()))
    assert main(["export", "--model", str(model_dir), "-o", str(out), "--threads", "1"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["encoder.onnx", "export.json", "stream.onnx", "temporal.onnx"]

    def interrupted(part, path):
        path.write_bytes(b"second")
        if part.name == "temporal":
            raise KeyboardInterrupt

    monkeypatch.setattr(export, "save_onnx", interrupted)
    assert main(["export", "--model", str(model_dir), "-o", str(out), "--threads", "1"]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary left, nothing replaced
    capsys.readouterr()
    # A model without a streaming step, exported over them: the earlier stream.onnx goes, not left beside it.
    rgb = save_model(tmp_path / "rgb", LRCN(ModelConfig(labels=["x", "y"], backbone="vidnet", image_size=32,
                                                        num_frames=4, input_mode="rgb", causal_head=False)))
    monkeypatch.setattr(export, "save_onnx", lambda part, path: path.write_bytes(b"rgb"))
    assert main(["export", "--model", str(rgb), "-o", str(out), "--threads", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "export.json", "temporal.onnx"]


def test_ctrl_c_while_the_parts_go_in_place_waits_for_the_card(model_dir, tmp_path, capsys, monkeypatch):
    """A Ctrl-C between the renames left the new encoder beside the old graphs, no card, and the folder refused as
    someone else's by the next export; a full disk was blamed on the model's graph."""
    import errno
    import os
    import signal

    from vidlstm.stages import export, export_paths

    out = tmp_path / "out"
    monkeypatch.setattr(export, "verify_part", lambda part, path, fmt: 0.0)
    monkeypatch.setattr(export, "save_onnx", lambda part, path: path.write_bytes(b"first"))
    assert main(["export", "--model", str(model_dir), "-o", str(out), "--threads", "1"]) == 0
    monkeypatch.setattr(export, "save_onnx", lambda part, path: path.write_bytes(b"second"))
    real = os.replace

    def interrupted(source, target):
        os.kill(os.getpid(), signal.SIGINT)  # held back until every part and the card are in place
        real(source, target)

    monkeypatch.setattr(export_paths.os, "replace", interrupted)
    assert main(["export", "--model", str(model_dir), "-o", str(out), "--threads", "1"]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".onnx"} == {
        "encoder.onnx": b"second", "stream.onnx": b"second", "temporal.onnx": b"second"}
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "export.json", "stream.onnx", "temporal.onnx"]
    monkeypatch.setattr(export_paths.os, "replace", real)

    def full(part, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "save_onnx", full)
    capsys.readouterr()
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "new"), "--threads", "1"]) == 1
    assert capsys.readouterr().err.strip() == (f"vidlstm export: error: {tmp_path / 'new'}: cannot write there (No "
                                               f"space left on device); nothing was written")


def test_an_export_never_replaces_files_it_did_not_write_nor_blames_the_model_for_its_folder(model_dir, tmp_path,
                                                                                             capsys):
    import os

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "encoder.onnx").write_text("precious")  # no export card beside it: someone's own
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "mine"), "--threads", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vidlstm export: error: {tmp_path / 'mine' / 'encoder.onnx'}: exists, with no export card of vidlstm's "
        f"(export.json) beside it, and the export would replace it; give another -o (another file name or folder)")
    assert (tmp_path / "mine" / "encoder.onnx").read_text() == "precious"
    os.symlink(tmp_path / "nowhere", tmp_path / "link")
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "link"), "--threads", "1"]) == 2
    assert capsys.readouterr().err.strip() == (f"vidlstm export: error: {tmp_path / 'link'}: a symbolic link to "
                                               f"nothing ({tmp_path / 'nowhere'}); give a folder, or a file name "
                                               f"ending in .onnx")
    if os.path.isdir("/proc/self"):  # a folder no one may write, root included: it was "its encoder graph could
        # not be exported (PermissionError ...)", exit 1, as if the model were at fault
        assert main(["export", "--model", str(model_dir), "-o", "/proc/vidlstm.onnx", "--threads", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vidlstm export: error: /proc/vidlstm.onnx: cannot write there ("), err


@pytest.mark.parametrize("head", ["lstm+stats", "stats"])
def test_a_pretrained_lite0_model_with_clip_stats_exports_and_matches_on_padded_batches(tmp_path, head):
    """The SAME-padded EfficientNet-Lite0 encoder and the statistics read-out (padding masked) in onnxruntime."""
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["x", "y"], backbone="efficientnet_lite0", pretrained=True, image_size=48,
                             num_frames=4, input_mode="rgb", proj_dim=16, hidden_size=16, clip_head=head))
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(6, 4, model.feature_dim))
    model_dir = save_model(tmp_path / "lite_model", model)
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "out"), "--threads", "1"]) == 0
    model = load_model(model_dir)
    frames = torch.rand(2, 3, 3, 48, 48)
    (features,) = session(tmp_path / "out" / "encoder.onnx").run(None, {"frames": frames.numpy()})
    with torch.no_grad():
        close(features, model.encode_frames(frames))
    temporal = session(tmp_path / "out" / "temporal.onnx")
    feats, lengths = torch.randn(3, 7, model.feature_dim), torch.tensor([7, 2, 5])
    got = temporal.run(None, {"features": feats.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        close(got[0], model.forward_features(feats, lengths).logits)



def test_a_stats_model_exports_as_torch_programs_that_match_on_padded_batches(tmp_path):
    """The statistics' change over T - 1 pairs of steps made torch.export guard the time axis against 2, and the
    temporal program of every read-out model (what `train` keeps on many real sets) failed with a traceback."""
    import vidlstm.stages.export_graphs  # noqa: F401  registers the vidlstm::lstm operator the programs use

    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b"], backbone="vidnet", image_size=32, num_frames=4, proj_dim=8,
                             hidden_size=8, clip_head="stats", causal_head=False)).eval()
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(6, 4, model.feature_dim))
        model.stats_classifier.weight.normal_(0, 0.2)
    model_dir = save_model(tmp_path / "stats_model", model)
    out = tmp_path / "exported"
    assert main(["export", "--model", str(model_dir), "--format", "torch", "-o", str(out), "--threads", "1"]) == 0
    temporal = torch.export.load(out / "temporal.pt2").module()
    for lengths in ([7, 2, 5], [2], [1, 1]):
        feats = torch.randn(len(lengths), max(lengths), model.feature_dim)
        with torch.no_grad():
            close(temporal(feats, torch.tensor(lengths))[0], model.forward_features(feats, torch.tensor(lengths)).logits)


def test_a_stats_model_streams_in_onnx_through_its_readout_as_vidlstm_stream_does(tmp_path):
    """A `clip_head = "stats"` model (what `auto` keeps when a read-out wins) exports a stream graph of its read-out:
    chunk by chunk, each step is the read-out of the last num_frames steps and `logits` is the whole clip's."""
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b", "c"], backbone="vidnet", image_size=32, num_frames=4, proj_dim=8,
                             hidden_size=8, clip_head="stats", causal_head=False)).eval()
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(6, 4, model.feature_dim))
        model.stats_classifier.weight.normal_(0, 0.2)
    model_dir = save_model(tmp_path / "stats_model", model)
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "out"), "--threads", "1"]) == 0
    card = json.loads((tmp_path / "out" / "export.json").read_text())
    assert [i["name"] for i in card["parts"]["stream"]["inputs"]] == [
        "features", "window", "filled", "total", "squares", "change", "count"]
    assert "window, filled" in card["pipeline"]
    stream = session(tmp_path / "out" / "stream.onnx")
    dim, steps = model.feature_dim, 11
    feats = torch.randn(2, steps, dim)  # (B, T, D): two streams at once
    state = [np.zeros((2, 4, dim), np.float32), np.zeros(2, np.int64), *[np.zeros((2, dim)) for _ in range(3)],
             np.zeros(2, np.int64)]
    names = [i.name for i in stream.get_inputs()]
    step_logits = []
    for start, stop in [(0, 3), (3, 8), (8, 9), (9, 11)]:
        out = stream.run(None, dict(zip(names, [feats[:, start:stop].numpy(), *state])))
        step_logits.append(out[0])
        whole, state = out[1], out[2:]
        with torch.no_grad():  # after each chunk: the read-out of every step so far, as classify computes it
            close(whole, model.forward_features(feats[:, :stop], torch.tensor([stop, stop])).logits)
    assert state[1].tolist() == [4, 4] and state[5].tolist() == [steps, steps]
    with torch.no_grad():
        for i, got in enumerate(np.concatenate(step_logits, axis=1).transpose(1, 0, 2)):
            window = feats[:, max(0, i - 3):i + 1]  # the last num_frames steps, fewer at the start
            ones = torch.ones(window.shape[:2], dtype=torch.bool)
            close(got, model.stats_classifier(model.clip_stats(window, ones)))


def test_an_export_of_the_other_format_does_not_take_over_a_card(tmp_path):
    """`-o m.onnx` then `--format torch -o m.pt2` rewrote m.json for the torch programs: the ONNX files lost theirs."""
    import json

    from vidlstm.errors import UsageError
    from vidlstm.stages.export_paths import resolve_outputs

    (tmp_path / "m.json").write_text(json.dumps({"format": "onnx"}))
    with pytest.raises(UsageError, match=r"m.json: describes the --format onnx export there; give --format torch "
                                         r"another -o"):
        resolve_outputs(tmp_path / "m.pt2", "torch", ["encoder"])
    assert resolve_outputs(tmp_path / "m.onnx", "onnx", ["encoder"])[1] == tmp_path / "m.json"  # the same again
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "export.json").write_text(json.dumps({"format": "torch"}))
    with pytest.raises(UsageError, match="export.json: describes the --format torch export there"):
        resolve_outputs(tmp_path / "out", "onnx", ["encoder"])
    (tmp_path / "data.json").write_text('{"mine": 1}')  # the user's own file where the card would go
    with pytest.raises(UsageError, match="data.json: exists and is no export card of vidlstm's"):
        resolve_outputs(tmp_path / "data.onnx", "onnx", ["encoder"])
    assert (tmp_path / "data.json").read_text() == '{"mine": 1}'



def test_a_second_export_into_the_same_place_while_one_runs_is_refused(model_dir, tmp_path, capsys, monkeypatch):
    """`--format onnx` and `--format torch` into one -o at the same moment both ended 0, and the card described one
    export beside the other's graphs."""
    from vidlstm.stages import export

    second, meanwhile = [], []

    def save_while_another_starts(part, path):
        path.write_bytes(b"onnx")
        while part.name == "encoder" and second:  # the first export is under way: others start, into its place
            argv = second.pop(0)
            meanwhile.append((main(["export", "--model", str(model_dir), *argv, "--threads", "1"]),
                              capsys.readouterr().err.strip()))

    def refused(out) -> str:
        return f"vidlstm export: error: {out}: another vidlstm export is writing there; wait for it to end, or give " \
               f"another -o"

    monkeypatch.setattr(export, "save_onnx", save_while_another_starts)
    monkeypatch.setattr(export, "verify_part", lambda part, path, fmt: 0.0)
    out = tmp_path / "out"
    second[:] = [["--format", "torch", "-o", str(out)], ["--format", "torch", "-o", f"{out}/"], ["-o", str(out)]]
    assert main(["export", "--model", str(model_dir), "-o", str(out), "--threads", "1"]) == 0
    assert meanwhile == [(2, refused(out)), (2, refused(f"{out}/")), (2, refused(out))]
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "export.json", "stream.onnx", "temporal.onnx"]
    assert json.loads((out / "export.json").read_text())["format"] == "onnx"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the lock beside the folder went with the export

    # `-o m.onnx` and `-o m.pt2` share the card m.json, so its lock; another name beside them is another export.
    meanwhile.clear()
    second[:] = [["--format", "torch", "-o", str(tmp_path / "m.pt2")], ["-o", str(tmp_path / "n.onnx"), "--no-verify"]]
    assert main(["export", "--model", str(model_dir), "-o", str(tmp_path / "m.onnx"), "--threads", "1"]) == 0
    assert meanwhile[0] == (2, refused(tmp_path / "m.pt2")) and meanwhile[1][0] == 0
    assert json.loads((tmp_path / "m.json").read_text())["format"] == "onnx"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".", "m.", "n."))) == [
        "m.encoder.onnx", "m.json", "m.stream.onnx", "m.temporal.onnx",
        "n.encoder.onnx", "n.json", "n.stream.onnx", "n.temporal.onnx"]
