"""`vidlstm stream`: chunked streaming equals the one-pass causal head, state stays fixed-size, label changes print."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from vidlstm.checkpoint import load_model, save_model
from vidlstm.cli import main
from vidlstm.data.transforms import frames_to_tensor
from vidlstm.models import LRCN, ModelConfig
from vidlstm.inference import Predictor
from vidlstm.io.stream import open_stream
from vidlstm.stages.stream import LabelTracker, StreamClassifier, chunked

ATOL = 1e-4  # chunked vs one pass: the same kernels on differently sized batches
LINE = re.compile(r"^\[ *(\d+\.\d\d) s\] (\w+) \((\d\.\d\d)\)$")


def read_stream(path, size: int, fps: float):
    frames = open_stream(str(path), size, fps)
    try:
        return list(frames)
    finally:
        frames.close()


def test_file_is_subsampled_to_the_requested_rate(make_video):
    video = make_video("clip.mp4", num_frames=30, fps=25.0)
    frames = read_stream(video, 32, fps=8.0)
    # the first frame at or after each multiple of 1/8 s
    assert [f.index for f in frames] == [math.ceil(k * 25 / 8) for k in range(10)]
    assert [f.time for f in frames] == pytest.approx([f.index / 25 for f in frames])
    assert frames[0].rgb.shape == (32, 32, 3) and frames[0].rgb.dtype == np.uint8
    assert len(read_stream(video, 32, fps=0)) == 30  # fps 0: every frame


def test_a_cut_file_streams_the_frames_it_holds_not_those_its_header_claims(make_video):
    """A Matroska header keeps the whole clip's duration when the file is cut: its 200 frames, 52 left."""
    import av

    video = make_video("whole.mkv", num_frames=200, fps=25.0)
    cut = video.with_name("cut.mkv")
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    with av.open(str(cut)) as container:
        held = sum(1 for _ in container.decode(video=0))
    assert held < 100
    frames = open_stream(str(cut), 32, 0)
    try:
        indices = [f.index for f in frames]
    finally:
        frames.close()
    assert indices == list(range(held)) and frames.frames_read == held


def test_streamed_steps_equal_the_one_pass_causal_head_with_fixed_size_state(make_video, tiny_model_dir):
    frames = read_stream(make_video("clip.mp4", num_frames=40, fps=25.0), 32, fps=12.5)  # every other frame
    assert len(frames) == 20
    predictor = Predictor(load_model(tiny_model_dir))
    classifier = StreamClassifier(predictor)
    steps, state_shapes = [], set()
    for chunk in chunked(frames, 3):
        steps += classifier.feed(chunk)
        h, c = classifier.state
        state_shapes.add((tuple(h.shape), tuple(c.shape), tuple(classifier.last_frame.shape)))
    assert state_shapes == {((1, 1, 128), (1, 1, 128), (1, 3, 32, 32))}  # 7 chunks, one state size
    clip = frames_to_tensor(np.stack([f.rgb for f in frames]))[None]  # (1, T, 3, H, W)
    with torch.inference_mode():
        one_pass = predictor.model(clip).causal_step_logits[0].numpy()  # (T, C)
    np.testing.assert_allclose(np.stack([s.logits for s in steps]), one_pass, atol=ATOL, rtol=0)
    assert [s.index for s in steps] == [f.index for f in frames]
    np.testing.assert_allclose(np.stack([s.probs for s in steps]).sum(axis=1), 1.0, atol=1e-5)


def test_label_tracker_reports_changes_and_smooths_them():
    sequence = [(0.0, [0.9, 0.1]), (0.5, [0.8, 0.2]), (1.0, [0.3, 0.7]), (1.5, [0.4, 0.6])]
    raw = LabelTracker(["a", "b"], smoothing=0)
    events = [raw.update(t, np.array(p)) for t, p in sequence]
    assert events == [{"event": "label", "time": 0.0, "label": "a", "score": 0.9}, None,
                      {"event": "label", "time": 1.0, "label": "b", "score": 0.7}, None]
    assert raw.segments == [{"label": "a", "start": 0.0, "end": 1.0}, {"label": "b", "start": 1.0, "end": 1.5}]
    assert raw.overall() == ("a", 0.6)
    smooth = LabelTracker(["a", "b"], smoothing=1.0)
    events = [smooth.update(t, np.array(p)) for t, p in sequence + [(2.0, [0.1, 0.9]), (2.5, [0.1, 0.9])]]
    alpha = 1 - math.exp(-0.5)  # steps 0.5 s apart, time constant 1 s
    expected_a = 0.9
    for _, p in sequence[1:3]:
        expected_a = (1 - alpha) * expected_a + alpha * p[0]
    assert events[2] is None and expected_a > 0.5  # the moving average still says "a" at 1.0 s
    changes = [e for e in events if e]
    assert [e["label"] for e in changes] == ["a", "b"] and changes[1]["time"] > 1.0


@pytest.fixture
def dark_then_bright(make_video, tmp_path):
    """A 2 s clip, dark then bright, and a model whose causal head tells the two halves apart.

    The model is random except for its causal classifier: a linear probe set from the causal LSTM's
    own outputs on this clip (the direction from the dark mean to the bright mean, boundary half-way),
    so the streamed label must turn from "dark" to "bright" after the cut.
    """
    rng = np.random.default_rng(0)
    frames = np.concatenate([np.full((20, 48, 64, 3), 30, np.uint8), np.full((30, 48, 64, 3), 220, np.uint8)])
    frames = np.clip(frames.astype(int) + rng.integers(-10, 11, frames.shape), 0, 255).astype(np.uint8)
    video = make_video("dark_bright.mp4", frames=frames, fps=25.0)
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["dark", "bright"], backbone="vidnet", image_size=32, num_frames=8,
                             proj_dim=16, hidden_size=16)).eval()
    clip = frames_to_tensor(np.stack([f.rgb for f in read_stream(video, 32, fps=0)]))[None]  # (1, T, 3, H, W)
    with torch.no_grad():
        hidden = model.causal.lstm(model.projection(model.encode_frames(clip)))[0][0]  # (T, H)
        dark, bright = hidden[5:20].mean(0), hidden[30:].mean(0)  # away from the cut: the LSTM needs a few steps
        direction = (bright - dark) * 20 / (bright - dark).norm() ** 2  # margin +-10 at the two means
        head = model.causal.classifier
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1] = direction
        head.bias[1] = -direction @ (dark + bright) / 2
    return video, save_model(tmp_path / "dark_bright_model", model)


def test_cli_prints_label_changes_with_increasing_times_and_a_summary(dark_then_bright, capsys):
    video, model_dir = dark_then_bright
    args = ["stream", str(video), "--model", str(model_dir), "--fps", "0", "--chunk-frames", "4", "--smoothing", "0"]
    assert main(args + ["--json", "--threads", "1"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    changes, end = events[:-1], events[-1]
    assert changes[0]["time"] == 0.0 and changes[0]["event"] == "label" and 0.5 <= changes[0]["score"] <= 1
    assert changes[-1]["label"] == "bright" and changes[-1]["time"] >= 0.8  # the cut is at 20 / 25 = 0.8 s
    assert "dark" in [e["label"] for e in changes]
    times = [e["time"] for e in changes]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(a["label"] != b["label"] for a, b in zip(changes, changes[1:]))
    assert end["event"] == "end" and end["frames_read"] == 50 and end["frames_used"] == 50
    assert end["time"] == pytest.approx(49 / 25)
    assert [s["label"] for s in end["segments"]] == [e["label"] for e in changes]
    assert end["label"] == "bright" and end["interrupted"] is False  # 30 of the 50 frames are bright

    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    matched = [LINE.match(line) for line in lines[:len(changes)]]
    assert all(matched), lines
    assert [(float(m[1]), m[2]) for m in matched] == [(e["time"], e["label"]) for e in changes]
    assert lines[len(changes)].startswith("end of stream, last frame classified at 1.96 s: 50 frames read, "
                                          "50 classified")
    assert end["stopped_by"] == "end_of_source"


@pytest.mark.parametrize("signal_error, code, said", [(KeyboardInterrupt, 130, "interrupted"),
                                                       ("Terminated", 143, "terminated (SIGTERM)")])
def test_a_stream_stopped_by_a_signal_prints_its_summary_and_exits_as_signalled(make_video, tiny_model_dir, capsys,
                                                                                monkeypatch, signal_error, code, said):
    """SIGTERM read as a Ctrl-C and both exited 0 once frames flowed: a supervisor that stopped it saw success."""
    import vidlstm.cli
    from vidlstm.stages import stream

    if signal_error == "Terminated":
        signal_error = vidlstm.cli.Terminated
    steps = stream.stream_steps

    def stopped_after_two(*args, **kwargs):
        for number, step in enumerate(steps(*args, **kwargs)):
            if number == 2:
                raise signal_error()
            yield step

    monkeypatch.setattr(stream, "stream_steps", stopped_after_two)
    video = make_video("clip.mp4", num_frames=40, fps=25.0)
    assert main(["stream", str(video), "--model", str(tiny_model_dir), "--json"]) == code
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (end["frames_used"], end["interrupted"], end["stopped_by"]) == (
        2, True, "terminate" if code == 143 else "interrupt")
    assert main(["stream", str(video), "--model", str(tiny_model_dir)]) == code
    assert f"{said}, last frame classified at " in capsys.readouterr().out


def test_max_seconds_stops_early(make_video, tiny_model_dir, capsys):
    video = make_video("clip.mp4", num_frames=40, fps=25.0)
    assert main(["stream", str(video), "--model", str(tiny_model_dir), "--max-seconds", "0.5", "--json"]) == 0
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["frames_used"] == 4 and end["time"] == pytest.approx(0.4)  # 8 fps: 0, 0.16, 0.28, 0.4 (0.52 is past)
    assert end["stopped_by"] == "max_seconds"  # the summary said "end of stream", which it was not
    assert main(["stream", str(video), "--model", str(tiny_model_dir), "--max-seconds", "0.5"]) == 0
    assert "stopped at --max-seconds, last frame classified at 0.40 s: " in capsys.readouterr().out


def test_bad_stream_input(make_video, tiny_model_dir, tmp_path, capsys):
    video = make_video("clip.mp4", num_frames=10)
    cases = [
        ([str(tmp_path / "missing.mp4"), "--model", str(tiny_model_dir)], 2, "no such file"),
        ([str(tmp_path), "--model", str(tiny_model_dir)], 2, "is a directory"),
        ([str(video), "--model", str(tmp_path / "no_model")], 2, "no such model folder"),
        ([str(video), "--model", str(tiny_model_dir), "--fps", "-1"], 2, "--fps must be a finite number >= 0"),
    ]
    (tmp_path / "notes.mp4").write_text("not a video\n")
    cases.append(([str(tmp_path / "notes.mp4"), "--model", str(tiny_model_dir)], 1, "notes.mp4"))
    no_causal = save_model(tmp_path / "no_causal", LRCN(ModelConfig(labels=["a", "b"], image_size=32, proj_dim=8,
                                                                    hidden_size=8, causal_head=False)))
    cases.append(([str(video), "--model", str(no_causal)], 2, "no causal head"))
    for args, code, message in cases:
        assert main(["stream", *args]) == code, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_a_file_streams_through_the_decoder_fallback_chain(make_video, monkeypatch):
    from vidlstm.io import pyav_backend

    video = make_video("clip.mp4", num_frames=30, fps=25.0)
    expected = [f.index for f in read_stream(video, 32, fps=8.0)]

    def broken(*args, **kwargs):
        raise RuntimeError("simulated pyav failure")

    monkeypatch.setattr(pyav_backend, "read", broken)
    frames = open_stream(str(video), 32, 8.0, backends=("pyav", "opencv"))
    got = list(frames)
    assert [f.index for f in got] == expected and got[0].rgb.shape == (32, 32, 3)
    assert frames.frames_read == 30


@pytest.fixture
def stats_model_dir(tmp_path):
    """A model whose clip logits are its statistics read-out alone (what `train --backbone auto` keeps when the
    pretrained family wins), with no causal head: fitted standardisation and a read-out with large weights."""
    torch.manual_seed(0)
    model = LRCN(ModelConfig(labels=["a", "b", "c"], backbone="vidnet", image_size=32, num_frames=4, proj_dim=8,
                             hidden_size=8, clip_head="stats", causal_head=False)).eval()
    with torch.no_grad():
        model.clip_stats.fit(torch.randn(6, 4, model.feature_dim) * 0.1)
        model.stats_classifier.weight.normal_(0, 0.5)
    return save_model(tmp_path / "stats_model", model)


def test_a_stats_model_streams_through_its_readout_and_ends_with_classifys_label(make_video, stats_model_dir):
    frames = read_stream(make_video("clip.mp4", num_frames=44, fps=25.0), 32, fps=12.5)
    assert len(frames) == 22
    predictor = Predictor(load_model(stats_model_dir))
    classifier = StreamClassifier(predictor)  # no causal head, and yet it streams
    model_dim = predictor.model.feature_dim
    assert classifier.source == "statistics read-out"
    steps = []
    for chunk in chunked(frames, 3):
        steps += classifier.feed(chunk)
        assert [tuple(t.shape) for t in classifier.readout.state[:2]] == [(1, 4, model_dim), (1,)]  # never the stream
    model = predictor.model
    clip = frames_to_tensor(np.stack([f.rgb for f in frames]))[None]  # (1, T, 3, H, W)
    with torch.inference_mode():
        feats = model.encode_frames(clip)  # (1, T, D)
        windows = [feats[:, max(0, t - 3):t + 1] for t in range(len(frames))]  # the last 4 steps at each step
        expected = torch.cat([model.stats_classifier(model.clip_stats(w, torch.ones(w.shape[:2], dtype=torch.bool)))
                              for w in windows]).numpy()  # (T, C)
        whole = model.forward_features(feats).logits[0]  # what classify computes on these frames
    np.testing.assert_allclose(np.stack([s.logits for s in steps]), expected, atol=ATOL, rtol=0)
    assert len({int(s.logits.argmax()) for s in steps}) > 1  # the windows do not all say the same
    np.testing.assert_allclose(classifier.whole_stream_probs(), torch.softmax(whole, 0).numpy(), atol=1e-5, rtol=0)


def test_the_stream_summary_names_what_labelled_it(make_video, stats_model_dir, tiny_model_dir, capsys):
    video = make_video("clip.mp4", num_frames=30, fps=25.0)
    model = load_model(stats_model_dir)
    clip = frames_to_tensor(np.stack([f.rgb for f in read_stream(video, 32, fps=8.0)]))[None]
    with torch.inference_mode():
        probs = model.predict_proba(clip)[0].numpy()
    assert main(["stream", str(video), "--model", str(stats_model_dir), "--json", "--chunk-frames", "2"]) == 0
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["labelled_by"] == "statistics read-out" and end["frames_used"] == 10
    assert end["label"] == model.config.labels[int(probs.argmax())] and end["score"] == pytest.approx(probs.max(), abs=1e-4)
    assert main(["stream", str(video), "--model", str(tiny_model_dir)]) == 0
    assert "), by the causal head" in capsys.readouterr().out


@pytest.mark.parametrize("settings, said", [
    (dict(max_seconds=-1.0), "--max-seconds must be a number of seconds > 0 (got -1.0)"),
    (dict(max_seconds=float("nan")), "--max-seconds must be a number of seconds > 0 (got nan)"),
    (dict(fps=float("inf")), "--fps must be a finite number >= 0 (got inf)"),
    (dict(smoothing=float("inf")), "--smoothing must be a finite number of seconds >= 0 (got inf)"),
])
def test_stream_settings_that_mean_nothing_are_usage_errors(settings, said):
    """--max-seconds -1 was reported as the file having no frames, nan was ignored; inf was "must be >= 0"."""
    from vidlstm.errors import UsageError
    from vidlstm.stages.stream import StreamConfig

    with pytest.raises(UsageError) as error:
        StreamConfig(source="clip.mp4", **settings)
    assert str(error.value) == said


def test_a_recording_served_over_http_is_sampled_by_its_own_timestamps(make_video, tmp_path):
    """A URL's frames were timed by when they arrived: a recording served faster than real time came in within a
    second, and one frame of a 4 s clip was classified. Now its timestamps time it, as a file's would."""
    import functools
    import http.server
    import threading

    path = make_video("served.mp4", num_frames=100, fps=25.0)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        served = read_stream(f"http://127.0.0.1:{server.server_address[1]}/served.mp4", 32, fps=5.0)
    finally:
        server.shutdown()
    from_file = read_stream(path, 32, fps=5.0)
    assert len(from_file) == 20
    assert [f.index for f in served] == [f.index for f in from_file]
    assert [f.time for f in served] == pytest.approx([f.time for f in from_file], abs=1e-3)


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a camera that hangs)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted, done = [], threading.Event()

    def accept():
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    done.set()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_url_that_never_answers_is_given_up_and_ctrl_c_ends_the_wait_at_once(silent_server, monkeypatch):
    """OpenCV waited 30 s on a URL that did not answer, Ctrl-C included, and said nothing of a timeout."""
    import signal
    import subprocess
    import sys
    import time

    from vidlstm.errors import VideoDecodeError
    from vidlstm.io import stream

    port, accepted = silent_server
    monkeypatch.setattr(stream, "URL_TIMEOUT_SECONDS", 1.0)
    started = time.monotonic()
    with pytest.raises(VideoDecodeError, match=r"cannot open this camera or stream \(no answer within 1 s\)"):
        stream.open_capture(f"http://127.0.0.1:{port}/camera")
    assert time.monotonic() - started < 10
    seen = len(accepted)
    proc = subprocess.Popen([sys.executable, "-m", "vidlstm", "stream", f"rtsp://127.0.0.1:{port}/x"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(accepted) == seen and time.monotonic() - started < 120:  # until it waits on the URL
        time.sleep(0.1)
    time.sleep(0.5)
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "vidlstm stream: interrupted" in err
    assert time.monotonic() - interrupted < 3.0


def test_a_stalled_stream_is_warned_about_even_where_a_buffered_frame_ends_the_wait(monkeypatch, caplog):
    """FFmpeg handed over a buffered frame after its 15 s read timeout, and the next grab failed at once: only the
    failing grab was timed, so a stall read as a normal end of stream."""
    import cv2

    from vidlstm.io import stream

    clock = [0.0]
    monkeypatch.setattr(stream.time, "monotonic", lambda: clock[0])

    class StallingCapture:
        grabs = 0

        def grab(self):
            self.grabs += 1
            clock[0] += 20.0 if self.grabs == 3 else 0.04  # the third frame comes 20 s late
            return self.grabs <= 3

        def retrieve(self):
            return True, np.zeros((32, 32, 3), np.uint8)

        def get(self, prop):
            return {cv2.CAP_PROP_FPS: 25.0, cv2.CAP_PROP_POS_MSEC: 40.0 * (self.grabs - 1)}.get(prop, 0.0)

        def release(self):
            pass

    frames = stream.CaptureFrames(StallingCapture(), 32, fps=0.0, live=True, media_clock=True, name="rtsp://cam")
    with caplog.at_level("WARNING", logger="vidlstm"):
        assert [f.index for f in frames] == [0, 1, 2]
    assert "rtsp://cam: no frame came for 20 s (the stream stalled)" in caplog.text


def test_an_interrupt_ends_the_wait_for_a_stalled_streams_next_frame_at_once():
    """Ctrl-C during a stalled URL's grab() waited for FFmpeg's 15 s read timeout: Python runs a signal handler
    only once OpenCV gives the thread back. The grab runs in a helper thread; the capture is not released under it."""
    import signal
    import threading
    import time

    import cv2

    from vidlstm.io import stream

    class Interrupted(Exception):
        pass

    class HangingCapture:
        grabs, released, hung = 0, False, threading.Event()

        def grab(self):
            self.grabs += 1
            if self.grabs == 2:  # the second frame comes late, and the thread waits as in C: deaf to signals
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                self.hung.wait(4)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
            return True

        def retrieve(self):
            return True, np.zeros((32, 32, 3), np.uint8)

        def get(self, prop):
            return {cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)

        def release(self):
            self.released = True

    def interrupt(signum, frame):
        raise Interrupted

    capture = HangingCapture()
    frames = stream.CaptureFrames(capture, 32, fps=0.0, live=True, name="rtsp://cam")
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            for _ in frames:
                pass
        assert time.monotonic() - started < 2.0 and capture.grabs == 2
        frames.close()
        assert not capture.released  # OpenCV is still inside grab()
        # and the process's exit does not wait for it
        assert [t.daemon for t in threading.enumerate() if t.name == "vidlstm-grab"] == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        capture.hung.set()
    # A stream that ended: its helper thread ends with it, and close() releases the capture.
    ended = HangingCapture()
    ended.grab = lambda: False
    finished = stream.CaptureFrames(ended, 32, fps=0.0, live=True)
    assert list(finished) == []
    finished.close()
    assert ended.released
    for _ in range(50):  # the interrupted helper ends once its grab returns
        if not any(t.name == "vidlstm-grab" for t in threading.enumerate()):
            break
        time.sleep(0.1)
    assert not any(t.name == "vidlstm-grab" for t in threading.enumerate())


def test_what_opencv_raises_while_opening_a_source_names_the_source(monkeypatch):
    """An exception in the opening thread came back as "stream: OpenCV failed while opening it", naming nothing."""
    import cv2

    from vidlstm.errors import VideoDecodeError
    from vidlstm.io import stream

    def broken(*args):
        raise cv2.error("backend went away")

    monkeypatch.setattr(cv2, "VideoCapture", broken)
    with pytest.raises(VideoDecodeError, match=r"rtsp://cam/1: OpenCV cannot open this camera or stream \(.*backend "
                                               r"went away"):
        stream.open_capture("rtsp://cam/1")
