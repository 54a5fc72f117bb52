"""Peak RSS of `run method=bicubic metrics=[psnr,ssim]` on a 1,000- vs a 4,000-frame clip.

Constant memory means the longer clip must not need more: the acceptance bound is 10%.
Usage: python benchmarks/rss_vs_length.py [--lengths 1000 4000] [--size 240 320] [--metrics psnr,ssim]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from infvsr_bench.io.writers import open_writer
from infvsr_bench.results.record import read_run_record


def write_pan_clip(root: Path, n: int, size: tuple[int, int]) -> None:
    """GT: a smooth pan over a real photograph (streamed); LR: antialiased bicubic x1/4."""
    img = data.astronaut()
    h, w = size
    span_y, span_x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    gt_w = open_writer(root / "GT" / "clip.mkv")
    lr_w = open_writer(root / "LR" / "clip.mkv")
    for t in range(n):
        x = int(span_x + span_x * np.sin(t / 150))
        y = int(span_y + span_y * np.sin(t / 97))
        frame = np.ascontiguousarray(img[y: y + h, x: x + w])
        gt_w.write(frame)
        lr = F.interpolate(torch.from_numpy(frame).permute(2, 0, 1)[None].float(), scale_factor=0.25,
                           mode="bicubic", antialias=True, align_corners=False)
        lr_w.write(lr.round().clamp(0, 255).byte()[0].permute(1, 2, 0).numpy())
    gt_w.close()
    lr_w.close()


def peak_rss(root: Path, out: Path, metrics: str) -> float:
    cmd = [sys.executable, "-m", "infvsr_bench", "run", "method=bicubic", "dataset=folder",
           f"dataset.root={root}", f"output_root={out}", f"metrics=[{metrics}]", "progress=false"]
    subprocess.run(cmd, check=True, capture_output=True)
    return read_run_record(out / "folder" / "bicubic").timings["process_peak_rss_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320])
    parser.add_argument("--metrics", default="psnr,ssim")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lengths:
            root = Path(tmp) / f"data{n}"
            write_pan_clip(root, n, tuple(args.size))
            results[n] = peak_rss(root, Path(tmp) / f"runs{n}", args.metrics)
            print(f"{n:6d} frames ({args.size[0]}x{args.size[1]} GT): peak RSS {results[n]:.1f} MiB", flush=True)
    base = results[args.lengths[0]]
    for n in args.lengths[1:]:
        print(f"ratio {n}/{args.lengths[0]}: {results[n] / base:.3f} (bound 1.10)")


if __name__ == "__main__":
    main()
