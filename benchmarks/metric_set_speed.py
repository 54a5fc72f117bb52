"""Cost of the InfVSR-table metric set plus semantic drift, streamed chunk by chunk at 720p.

Per metric: seconds of ``update`` per frame (device synced after each call), then frames/s of the
whole set; and RAFT-large (20 iterations) pairs/s at 360x640 for batch 1, 8, 16, 32 (E*warp's flow).
Random weights throughout where files are absent (speed only, never quality). DOVER needs the
official DOVER package and is left out when it is not installed.
Usage: python benchmarks/metric_set_speed.py [--frames 96] [--size 720 1280] [--device auto] [--json F]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch

from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import InfvsrError
from infvsr_bench.metrics import METRICS, build_metric
from infvsr_bench.metrics.flow import FlowRuntime, build_flow

# The InfVSR paper's Table 1 columns, then the long-form semantic metrics (they share two backbones).
TABLE = ["psnr", "ssim", "lpips", "dists", "musiq", "clipiqa", "dover", "ewarp"]
SEMANTIC = ["subject_consistency", "background_consistency", "semantic_drift_dino", "semantic_drift_clip"]


def moving_frames(n: int, h: int, w: int, shift: int = 0) -> np.ndarray:
    """``n`` uint8 frames of a smooth moving pattern (T,H,W,3); ``shift`` perturbs it (a fake SR)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        out[t, ..., 0] = 127 + 120 * np.sin((x + 2 * t + shift) / 17)
        out[t, ..., 1] = 127 + 120 * np.sin((y - t) / 11)
        out[t, ..., 2] = 127 + 120 * np.sin((x + y + 3 * t) / 23)
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def metric_costs(names: list[str], frames: int, size: tuple[int, int], chunk: int, device: str) -> dict[str, float]:
    """Seconds per frame of each metric's update, all metrics fed the same chunks in turn as the runner
    does (so metrics sharing a backbone embed each frame once), after one warm-up chunk."""
    gt = moving_frames(frames + chunk, *size)
    sr = moving_frames(frames + chunk, *size, shift=3)
    wanted = {"device": device, "weights": "random"}
    metrics = {name: build_metric(name, {k: v for k, v in wanted.items() if k in METRICS.get(name).runtime_options})
               for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for i in range(0, chunk + frames, chunk):
        sr_chunk, gt_chunk = sr[i:i + chunk], gt[i:i + chunk]
        for name, metric in metrics.items():
            if i == 0:
                metric.reset()  # the first chunk warms up kernels, cudnn autotuning and lazy weights
            sync(device)
            start = time.perf_counter()
            metric.update(sr_chunk, gt_chunk, i)
            if i + chunk >= chunk + frames:
                metric.compute()
            sync(device)
            if i:
                seconds[name] += time.perf_counter() - start
    costs = {name: s / frames for name, s in seconds.items()}
    for name, cost in costs.items():
        print(f"{name:24s} {cost * 1000:8.2f} ms/frame  ({1 / cost:7.1f} frames/s)", flush=True)
    return costs


def raft_pairs_per_second(device: str, size: tuple[int, int], batches: list[int], pairs: int) -> dict[int, float]:
    """Pairs/s of RAFT-large (random weights, 20 iterations) at ``size``, by batch size."""
    out = {}
    for batch in batches:
        flow = build_flow("raft", {"iters": 20}, FlowRuntime(device=device, batch_size=batch, weights="random"))
        a = torch.rand(pairs, 3, *size, device=flow.device)
        b = torch.rand(pairs, 3, *size, device=flow.device)
        flow(a[:batch], b[:batch])
        sync(device)
        start = time.perf_counter()
        flow(a, b)
        sync(device)
        out[batch] = pairs / (time.perf_counter() - start)
        print(f"RAFT-large 20 it {size[0]}x{size[1]} batch {batch}: {out[batch]:.1f} pairs/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", type=int, nargs=2, default=[720, 1280])
    parser.add_argument("--chunk", type=int, default=12, help="frames per update (InfVSR's chunk)")
    parser.add_argument("--device", default="auto", help="auto = CUDA when present")
    parser.add_argument("--metrics", default=",".join(TABLE + SEMANTIC))
    parser.add_argument("--raft-pairs", type=int, default=32, help="0 skips the RAFT batch comparison")
    parser.add_argument("--method-fps", type=float, help="the method's own frames/s: prints the set's cost relative to it")
    parser.add_argument("--json")
    args = parser.parse_args()
    try:
        args.device = str(resolve_device(args.device))
    except InfvsrError as exc:
        raise SystemExit(f"error: {exc}") from None
    names = [n for n in args.metrics.split(",") if n]
    if "dover" in names and importlib.util.find_spec("dover") is None:
        print("dover: the official DOVER package is not installed; left out")
        names.remove("dover")
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "none"
    print(f"{args.frames} frames {args.size[0]}x{args.size[1]}, chunks of {args.chunk}, device {args.device} ({gpu}), "
          f"torch {torch.__version__}, random weights", flush=True)
    costs = metric_costs(names, args.frames, tuple(args.size), args.chunk, args.device)
    total = sum(costs.values())
    print(f"whole set: {total * 1000:.1f} ms/frame = {1 / total:.1f} frames/s")
    if args.method_fps:
        print(f"metric time = {total * args.method_fps:.1%} of the method's own time at {args.method_fps} frames/s")
    raft = {}
    if args.raft_pairs:
        half = (args.size[0] // 2, args.size[1] // 2)
        raft = raft_pairs_per_second(args.device, half, [b for b in (1, 8, 16, 32) if b <= args.raft_pairs], args.raft_pairs)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": args.device, "gpu": gpu, "torch": torch.__version__, "frames": args.frames,
            "size": args.size, "chunk": args.chunk, "weights": "random", "seconds_per_frame": costs,
            "set_frames_per_second": 1 / total, "raft_pairs_per_second": raft}, indent=1))


if __name__ == "__main__":
    try:
        main()
    except InfvsrError as exc:  # unknown metric, missing weights file, unavailable device: one line
        raise SystemExit(f"error: {exc}") from None
