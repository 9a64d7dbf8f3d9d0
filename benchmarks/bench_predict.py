"""Batch inference benchmark: `vidlstm predict` against a straightforward baseline, in one run, on the same clips.

Prints one table:
  (a) videos/s of predict (decode workers, sparse seek-based decoding at 112 px, clips batched across
      videos, channels_last + inference_mode) against the baseline written below (OpenCV reads every
      frame, resizes each, takes 16 uniform frames, resnet18 in the default memory layout under no_grad,
      one video at a time); the same LRCN(resnet18) weights on both sides;
  (b) frames/s of predict's CNN stage against what resnet18 alone achieves here (channels_last +
      inference_mode, batch 32 at 112 px, same thread count): per second inside the forward passes
      (the stage's own efficiency) and per second of the whole run (wall, decoders included);
  (c) peak RSS of `vidlstm classify` on a 1-minute and a 60-minute video;
  (d) wall and CPU time of `vidlstm classify` on one 10 s clip from a cold start (a fresh interpreter),
      beside `import torch` alone in the same minute (the floor the machine's load sets).

    python benchmarks/bench_predict.py [--clips 12] [--quick] [--workers 1 2]

Clips are generated once by make_clips.py (H.264, 5-60 s, 320x240-1280x720) under benchmarks/.data.
Numbers move with the load on the machine: compare the ratios, which come from one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LABELS = [f"class{i}" for i in range(10)]
NUM_FRAMES, IMAGE_SIZE = 16, 112


def make_model(root: Path) -> Path:
    """An LRCN with a resnet18 backbone (random weights: speed does not depend on them), saved once."""
    folder = root / "model_resnet18"
    if not (folder / "config.json").exists():
        import torch

        from vidlstm.checkpoint import save_model
        from vidlstm.models import LRCN, ModelConfig

        torch.manual_seed(0)
        # input_mode "rgb": the backbone is exactly torchvision's resnet18, as in the baseline.
        save_model(folder, LRCN(ModelConfig(labels=LABELS, backbone="resnet18", input_mode="rgb",
                                            num_frames=NUM_FRAMES, image_size=IMAGE_SIZE)))
    return folder


# --- (a) the straightforward baseline ------------------------------------------------------------------

def cpu_seconds() -> float:
    """CPU time of this process so far, all its threads (decoder threads and torch's included)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline_classify(paths, model_dir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to classify ``paths`` the straightforward way, one video at a time."""
    import copy

    import cv2
    import numpy as np
    import torch

    from vidlstm.checkpoint import load_model

    model = load_model(model_dir).eval()
    backbone = copy.deepcopy(model.backbone).to(memory_format=torch.contiguous_format)  # default layout
    start, start_cpu = time.perf_counter(), cpu_seconds()
    for path in paths:
        cap = cv2.VideoCapture(str(path))
        frames = []
        while True:  # read every frame, resize each
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (IMAGE_SIZE, IMAGE_SIZE)))
        cap.release()
        picked = np.stack([frames[i] for i in np.linspace(0, len(frames) - 1, NUM_FRAMES).astype(int)])
        with torch.no_grad():
            x = torch.from_numpy(picked).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, H, W)
            feats = backbone(model.normalize(x))  # (T, D)
            probs = torch.softmax(model.forward_features(feats[None]).logits, -1)  # (1, C)
        assert probs.shape == (1, len(LABELS))
    return time.perf_counter() - start, cpu_seconds() - start_cpu


# --- (a)+(b) vidlstm predict ---------------------------------------------------------------------------

def run_predict(clip_dir: Path, model_dir: Path, out: Path, workers: int | None, batch_size: int,
                exact_frames: bool = False):
    """(wall seconds, CPU seconds, PredictSummary) of one complete `predict` stage run (model load, worker start
    included); CPU seconds add the main process's and what the decode workers report."""
    from vidlstm.stages.predict import PredictConfig, run

    out.unlink(missing_ok=True)
    start, start_cpu = time.perf_counter(), cpu_seconds()
    summary = run(PredictConfig(inputs=[str(clip_dir)], output=str(out), model_dir=str(model_dir), device="cpu",
                                workers=workers, batch_size=batch_size, progress=False, exact_frames=exact_frames))
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
    assert summary.failed == 0 and summary.ok == summary.files, summary.failures
    return seconds, cpu + summary.stats.decode_cpu_seconds, summary


def resnet18_reference_rate(threads: int, seconds: float = 6.0) -> float:
    """Frames/s of resnet18 alone at 112 px: channels_last, inference_mode, batch 32 (the achievable rate)."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    model = torchvision.models.resnet18(weights=None).eval().to(memory_format=torch.channels_last)
    x = torch.rand(32, 3, IMAGE_SIZE, IMAGE_SIZE).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)  # warm-up: oneDNN picks its kernels
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(x)
            frames += len(x)
    return frames / (time.perf_counter() - start)


# --- (c)+(d) fresh processes ---------------------------------------------------------------------------

def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "vidlstm", *map(str, args)]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def measure_process(cmd) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds) of a command run to completion in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-300:]}")
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def cold_start(clip: Path, model_dir: Path, repeats: int = 3) -> dict[str, tuple[float, float]]:
    """Best-of (wall, CPU) seconds in fresh interpreters: classify CLIP (resnet18 model and the shipped default),
    --help, and `import torch` alone."""
    commands = {"classify": _cli("classify", clip, "--model", model_dir), "classify default": _cli("classify", clip),
                "help": _cli("--help"),
                "import torch": [sys.executable, "-c", "import torch"]}
    best = {}
    for _ in range(repeats):  # interleaved, so that each sees the same load
        for name, cmd in commands.items():
            wall, _, cpu = measure_process(cmd)
            best[name] = min(best.get(name, (wall, cpu)), (wall, cpu))
    return best


def help_imports_torch() -> bool:
    code = "import sys, runpy; sys.argv=['vidlstm','--help']\ntry: runpy.run_module('vidlstm', run_name='__main__')\n" \
           "except SystemExit: pass\nprint('torch' in sys.modules, file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    return proc.stderr.strip().splitlines()[-1] == "True"


# --- the table -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12, help="benchmark clips (default 12)")
    parser.add_argument("--quick", action="store_true", help="skip the 60-minute memory test (c)")
    parser.add_argument("--no-exact", action="store_true", help="skip the --exact-frames row")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per forward pass (default 4)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="decode workers to try (default 1 2)")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from make_clips import DATA_DIR, make_clip_dir, make_long_video, write_h264

    import torch

    from vidlstm.defaults import configure_torch_threads
    from vidlstm.stages.predict import available_cores

    threads = configure_torch_threads(0)
    clip_dir = make_clip_dir(args.clips)
    clips = sorted(clip_dir.glob("*.mp4"))
    model_dir = make_model(DATA_DIR)
    video_seconds = sum(int(p.name.split("_")[1].rstrip("s")) for p in clips)
    print(f"{len(clips)} clips, {video_seconds} s of H.264 video; {available_cores()} cores, torch {torch.__version__}, "
          f"{threads} torch threads; model LRCN(resnet18), {NUM_FRAMES} frames at {IMAGE_SIZE} px\n")
    width = 86
    print(f"| {'measurement':<{width}} | {'result':>16} | {'vs ref':>7} | {'CPU s/video':>11} | {'vs ref':>6} |")
    print(f"|{'-' * (width + 2)}|{'-' * 18}|{'-' * 9}|{'-' * 13}|{'-' * 8}|")

    def row(name, value, ratio="", cpu="", cpu_ratio=""):
        print(f"| {name:<{width}} | {value:>16} | {ratio:>7} | {cpu:>11} | {cpu_ratio:>6} |", flush=True)

    base, base_cpu = baseline_classify(clips, model_dir)  # on all cores: the straightforward default
    row("(a) baseline: OpenCV reads all frames, resnet18 default layout, 1 video at a time",
        f"{len(clips) / base:.2f} videos/s", "1.0x", f"{base_cpu / len(clips):.2f}", "1.0x")
    runs = [(f"--workers {w}", w, False) for w in args.workers]
    if not args.no_exact:
        runs.append((f"--workers {args.workers[0]} --exact-frames", args.workers[0], True))
    cnn_rows = []
    for label, workers, exact_frames in runs:
        seconds, cpu, summary = run_predict(clip_dir, model_dir, DATA_DIR / "bench_preds.jsonl", workers,
                                            args.batch_size, exact_frames)
        row(f"(a) vidlstm predict {label}", f"{len(clips) / seconds:.2f} videos/s", f"{base / seconds:.1f}x",
            f"{cpu / len(clips):.2f}", f"{base_cpu / cpu:.1f}x")
        stats = summary.stats
        cnn_rows.append((label, stats.frames_encoded / stats.cnn_seconds, stats.frames_encoded / seconds,
                         stats.wait_seconds / seconds))
    # What a user running `vidlstm predict` with no --model gets: the shipped vidnet model.
    from vidlstm.defaults import default_model_dir

    shipped = json.loads((default_model_dir() / "config.json").read_text())
    shipped_name = f"{shipped['backbone']}, {shipped['num_frames']} frames, {shipped['image_size']} px"

    for workers in [*args.workers, None]:
        seconds, cpu, summary = run_predict(clip_dir, default_model_dir(), DATA_DIR / "bench_preds_default.jsonl",
                                            workers, args.batch_size)
        flag = f"--workers {workers}" if workers is not None else f"no --workers (chose {summary.workers})"
        row(f"(a) vidlstm predict {flag}, shipped default model ({shipped_name})",
            f"{len(clips) / seconds:.2f} videos/s", f"{base / seconds:.1f}x", f"{cpu / len(clips):.2f}",
            f"{base_cpu / cpu:.1f}x")
    # The CNN runs on the cores the decoders leave it (predict's default_torch_threads): compare like with like.
    cnn_threads = torch.get_num_threads()
    reference = resnet18_reference_rate(cnn_threads)
    row(f"(b) resnet18 alone: channels_last, inference_mode, batch 32, 112 px, {cnn_threads} thread(s)",
        f"{reference:.0f} frames/s", "100%")
    if cnn_threads != threads:
        row(f"(b) resnet18 alone, same, {threads} threads", f"{resnet18_reference_rate(threads):.0f} frames/s")
    for label, rate, wall_rate, idle in cnn_rows:
        row(f"(b) predict's CNN stage, {label}: frames / forward-pass time", f"{rate:.0f} frames/s",
            f"{100 * rate / reference:.0f}%")
        row(f"(b)   same run: frames / wall time (CNN waited for decoders {100 * idle:.0f}% of it)",
            f"{wall_rate:.0f} frames/s", f"{100 * wall_rate / reference:.0f}%")

    if not args.quick:
        rss = {}
        for minutes in (1, 60):
            video = make_long_video(minutes)
            _, rss[minutes], _ = measure_process(_cli("classify", video, "--model", model_dir))
            row(f"(c) peak RSS, vidlstm classify on a {minutes}-minute 320x240 video", f"{rss[minutes]:.0f} MiB",
                f"{rss[minutes] / rss[1]:.2f}x")

    ten_seconds = DATA_DIR / "cold_10s_640x360.mp4"
    if not ten_seconds.exists():
        write_h264(ten_seconds, 250, 640, 360, seed=5)
    try:
        best = cold_start(ten_seconds, model_dir)
    except RuntimeError as err:
        row("(d) vidlstm classify, one 10 s clip, cold start", "FAILED")
        print(f"    {err}")
        return
    for name, label in (("classify", "(d) vidlstm classify, one 10 s clip, cold start, resnet18 model (best of 3)"),
                        ("classify default", "(d) vidlstm classify, same clip, cold start, shipped default model"),
                        ("help", f"(d) vidlstm --help, cold start (imports torch: {help_imports_torch()})"),
                        ("import torch", "(d) python -c 'import torch' alone, same minutes (best of 3)")):
        wall, cpu = best[name]
        row(label, f"{wall:.2f} s", cpu=f"{cpu:.2f}")


if __name__ == "__main__":
    main()
