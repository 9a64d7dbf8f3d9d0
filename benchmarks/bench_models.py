"""CNN-stage throughput: frames/s of the backbones vidlstm uses, against the layout/mode a naive loop would use.

    python benchmarks/bench_models.py [--threads N] [--size 112] [--batch 32] [--repeats 10]

Prints a markdown table. Ratios are against the default-layout (NCHW), grad-enabled forward pass of the
same network measured in the same run, so machine noise largely cancels. The last columns are what inference
runs: channels_last + inference_mode with the batch norms folded into the convolutions (models/fold.py).
"""
from __future__ import annotations

import argparse
import time

import torch

from vidlstm.models import LRCN, ModelConfig, get_backbone
from vidlstm.models.fold import fold_batch_norms


def frames_per_second(fn, frames: int, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitive caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return frames / sorted(times)[len(times) // 2]  # median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--backbones", default="vidnet,resnet18,mobilenet_v3_small")
    parser.add_argument("--pretrained", action="store_true",
                        help="the ImageNet weights where installed (efficientnet_lite0): real batch-norm statistics")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} size={args.size} batch={args.batch}\n")
    print("| network | input ch | naive (NCHW, autograd) f/s | channels_last + inference_mode f/s | ratio "
          "| + batch norms folded f/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in args.backbones.split(","):
        for channels in (3, 6):
            pretrained = args.pretrained and channels == 3 and name == "efficientnet_lite0"
            net = get_backbone(name, in_channels=channels, pretrained=pretrained).module.eval()
            x = torch.rand(args.batch, channels, args.size, args.size)
            naive = frames_per_second(lambda: net(x), args.batch, args.repeats)
            fast_net = net.to(memory_format=torch.channels_last)
            x_cl = x.contiguous(memory_format=torch.channels_last)

            def fast():
                with torch.inference_mode():
                    fast_net(x_cl)

            fast_fps = frames_per_second(fast, args.batch, args.repeats)
            folded_net = fold_batch_norms(fast_net)[0].to(memory_format=torch.channels_last)

            def folded():
                with torch.inference_mode():
                    folded_net(x_cl)

            folded_fps = frames_per_second(folded, args.batch, args.repeats)
            net.to(memory_format=torch.contiguous_format)
            print(f"| {name} | {channels} | {naive:.0f} | {fast_fps:.0f} | {fast_fps / naive:.2f}x "
                  f"| {folded_fps:.0f} | {folded_fps / naive:.2f}x |")
    # The whole model (normalise + frame differences + CNN + BiLSTM + attention) as classify runs it.
    model = LRCN(ModelConfig(labels=["a", "b"], backbone="vidnet", image_size=args.size, num_frames=16)).eval()
    model = model.to(memory_format=torch.channels_last)
    clips = torch.rand(max(1, args.batch // 16), 16, 3, args.size, args.size)

    def whole():
        with torch.inference_mode():
            model(clips)

    fps = frames_per_second(whole, clips.shape[0] * 16, args.repeats)
    print(f"\nfull LRCN (vidnet, rgb+diff, {clips.shape[0]} clips x 16 frames): {fps:.0f} frames/s")


if __name__ == "__main__":
    main()
