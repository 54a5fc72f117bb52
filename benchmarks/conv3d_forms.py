"""Time the VAE's 3x3x3 causal conv three ways at its 720p shapes: cuDNN conv3d, and the VAE's
``CONV_FORMS`` (one conv2d per time tap summed; one conv2d over the taps stacked on channels).
Same numbers (checked), different kernels: the fastest is what ``WanVAE.set_conv_form`` should
pick on that GPU. bf16, channels-last, random weights.
Usage: python benchmarks/conv3d_forms.py [--device cuda] [--frames 4] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infvsr_bench.devices import resolve_device, resolve_dtype  # noqa: E402
from methods.infvsr.vae import CONV_FORMS  # noqa: E402

# (channels, height, width) of the 3x3x3 convs that dominate the Wan VAE at 720p output.
SHAPES = [(96, 720, 1280), (192, 360, 640), (384, 180, 320)]


def conv3d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x [1,C,T+2,H,W] (history first), w [O,C,3,3,3] -> [1,O,T,H,W]: cuDNN's 3-D kernel."""
    return F.conv3d(x, w, padding=(0, 1, 1))


FORMS = {"conv3d": conv3d} | {name: (lambda x, w, f=f: f(x, w, None, (1, 1))) for name, f in CONV_FORMS.items()}


def timed(fn: Callable[[], torch.Tensor], device: str, repeats: int) -> float:
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", help="auto = CUDA when present (the dtype follows: bfloat16 there)")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--scale", type=int, default=1, help="divide H and W (quick CPU checks)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    args.device, dtype = str(device), resolve_dtype("auto", device)
    torch.backends.cudnn.benchmark = True
    for c, h, w in SHAPES:
        h, w = h // args.scale, w // args.scale
        x = torch.randn(1, c, args.frames + 2, h, w, device=args.device, dtype=dtype)
        x = x.to(memory_format=torch.channels_last_3d)
        weight = (torch.randn(c, c, 3, 3, 3, device=args.device, dtype=dtype) / (27 * c) ** 0.5)
        weight = weight.to(memory_format=torch.channels_last_3d)
        ref = conv3d(x, weight).float()
        tflop = 2 * 27 * c * c * args.frames * h * w / 1e12
        for name, fn in FORMS.items():
            err = (fn(x, weight).float() - ref).abs().max().item() / ref.abs().max().item()
            seconds = timed(lambda fn=fn: fn(x, weight), args.device, args.repeats)
            print(f"C={c:3d} {h}x{w} T={args.frames} {name:12s} {seconds * 1000:8.2f} ms "
                  f"{tflop / seconds:7.1f} TFLOP/s  rel. diff {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
