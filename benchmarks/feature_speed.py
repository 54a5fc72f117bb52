"""Frames/s of batched semantic feature extraction (DINO ViT-B/16, CLIP ViT-B/32, EfficientNet-Lite0)
on 720p frames, including the VBench preprocessing. Random weights for DINO/CLIP when their files are
absent: the speed does not depend on the weights.
Usage: python benchmarks/feature_speed.py [--frames 32] [--size 720 1280] [--batch 16] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from infvsr_bench.metrics.features import FeatureBank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, nargs=2, default=[720, 1280])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backbones", nargs="+", default=["dino", "clip", "efficientnet_lite0"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, *args.size, 3), dtype=np.uint8)
    print(f"{args.frames} frames {args.size[0]}x{args.size[1]}, batch {args.batch}, torch threads "
          f"{torch.get_num_threads()}, device {args.device}")
    for name in args.backbones:
        bank = FeatureBank.get(name, args.device, weights="auto" if name == "efficientnet_lite0" else "random")
        bank.embed(frames[: args.batch], args.batch)  # warm-up
        start = time.perf_counter()
        bank.embed(frames, args.batch)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{name:20s} {args.frames / seconds:7.1f} frames/s")


if __name__ == "__main__":
    main()
