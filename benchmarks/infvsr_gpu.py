"""InfVSR throughput and memory on a GPU: full-size models with random bf16 weights, x4 to 720p.

Per chunk: wall time, frames/s and peak GPU memory; overall: the split between upscale, VAE
encode, DiT and VAE decode (measured in a second pass with device syncs between stages).
Random weights: these numbers measure speed only, never quality.
Usage: python benchmarks/infvsr_gpu.py [--frames 201] [--lr 180 320] [--rope float64] [--compile]
       [--compile-vae-norms] [--vae-conv-form conv3d|taps_summed|taps_stacked] [--vae-channels-last] [--upscale-on-device] [--profile-ops N] [--json F]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from methods.infvsr.adapter import to_model_range, to_uint8  # noqa: E402
from methods.infvsr.dit import WanDiT, WanDiTConfig  # noqa: E402
from methods.infvsr.pipeline import InfVSRPipeline  # noqa: E402
from methods.infvsr.scenes import SceneChunker  # noqa: E402
from methods.infvsr.vae import CONV_FORMS, WanVAE  # noqa: E402
from methods.infvsr.visual_encoder import VisualEncoder  # noqa: E402


def random_init(module: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """Materialise a meta-built module on ``device`` with scaled random weights (speed only)."""
    module = module.to_empty(device=device)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.normal_(0, 1 / math.sqrt(p[0].numel()))
            elif name.endswith(("gamma", "weight")):
                p.fill_(1.0)
            else:
                p.normal_(0, 0.02)
    if hasattr(module, "init_buffers"):
        module.init_buffers()
    return module.to(dtype).eval().requires_grad_(False)


def video(frames: int, h: int, w: int) -> np.ndarray:
    """A smooth moving pattern (uint8 T,H,W,3), generated on the fly."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        out[t, ..., 0] = 127 + 120 * np.sin((x + 2 * t) / 17)
        out[t, ..., 1] = 127 + 120 * np.sin((y - t) / 11)
        out[t, ..., 2] = 127 + 120 * np.sin((x + y + 3 * t) / 23)
    return out


def run(pipe: InfVSRPipeline, clip: np.ndarray, profile: bool) -> list[dict]:
    pipe.reset()
    pipe.stage_seconds = {} if profile else None
    chunker = SceneChunker(detect=False)
    chunks = chunker.push(clip) + chunker.flush()
    rows = []
    for i, c in enumerate(chunks):
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = to_uint8(pipe.process(to_model_range(c.frames), c.new_scene, c.update_reference))
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rows.append({"chunk": i, "frames": len(out), "seconds": dt, "fps": len(out) / dt,
                     "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "cache_mib": pipe.cache_nbytes() / 2**20})
    return rows


def top_ops(pipe: InfVSRPipeline, clip: np.ndarray, n: int) -> list[dict]:
    """The ``n`` ops with the most GPU time over the second chunk of ``clip`` (a steady, cached chunk)."""
    from torch.profiler import ProfilerActivity, profile

    pipe.reset()
    chunks = SceneChunker(detect=False).push(clip[:21])
    pipe.process(to_model_range(chunks[0].frames), True)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        pipe.process(to_model_range(chunks[1].frames), False)
        torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: e.self_device_time_total, reverse=True)
    total = sum(e.self_device_time_total for e in events)
    rows = [{"op": e.key[:80], "calls": e.count, "ms": round(e.self_device_time_total / 1000, 2),
             "share": round(e.self_device_time_total / total, 3)} for e in events[:n]]
    for r in rows:
        print(f"{r['ms']:9.2f} ms {r['share']:6.1%} x{r['calls']:<5d} {r['op']}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=201)
    parser.add_argument("--lr", type=int, nargs=2, default=[180, 320])
    parser.add_argument("--rope", default="float64", choices=["float64", "float32"])
    parser.add_argument("--upscale-on-device", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--vae-channels-last", action="store_true")
    parser.add_argument("--compile-vae-norms", action="store_true")
    parser.add_argument("--vae-conv-form", default="conv3d", choices=["conv3d", *CONV_FORMS])
    parser.add_argument("--profile-ops", type=int, default=0, metavar="N",
                        help="also print the N GPU ops with the most device time over one steady chunk")
    parser.add_argument("--json")
    args = parser.parse_args()
    device, dtype = "cuda", torch.bfloat16
    torch.backends.cudnn.benchmark = True
    with torch.device("meta"):
        dit = WanDiT(WanDiTConfig(rope_dtype=getattr(torch, args.rope)))
        vae, encoder = WanVAE(), VisualEncoder()
    dit, vae, encoder = (random_init(m, device, dtype) for m in (dit, vae, encoder))
    if args.compile:
        dit = torch.compile(dit)
    if args.vae_channels_last:
        vae.to_channels_last()
    if args.compile_vae_norms:
        vae.compile_norms()
    vae.set_conv_form(args.vae_conv_form)
    pipe = InfVSRPipeline(dit, vae, encoder, device=device, dtype=dtype, upscale_on_device=args.upscale_on_device)
    clip = video(args.frames, *args.lr)
    run(pipe, clip[:33], profile=False)  # warm-up: cudnn autotuning, allocator, compile
    rows = run(pipe, clip, profile=False)
    steady = rows[1:]
    total_frames = sum(r["frames"] for r in rows)
    total_s = sum(r["seconds"] for r in rows)
    run(pipe, clip, profile=True)
    split = {k: round(v, 3) for k, v in pipe.stage_seconds.items()}
    summary = {
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "lr": args.lr,
        "hr": [4 * v for v in args.lr], "frames": total_frames, "rope": args.rope, "compile": args.compile,
        "upscale_on_device": args.upscale_on_device, "vae_channels_last": args.vae_channels_last,
        "compile_vae_norms": args.compile_vae_norms, "vae_conv_form": args.vae_conv_form, "dtype": "bfloat16", "weights": "random",
        "fps_overall": total_frames / total_s,
        "fps_steady": sum(r["frames"] for r in steady) / sum(r["seconds"] for r in steady),
        "peak_gib_max": max(r["peak_gib"] for r in rows), "peak_gib_by_chunk": [round(r["peak_gib"], 2) for r in rows],
        "cache_mib_by_chunk": [round(r["cache_mib"], 1) for r in rows], "stage_seconds": split,
        "stage_share": {k: round(v / sum(split.values()), 3) for k, v in split.items()},
    }
    if args.profile_ops:
        summary["top_ops"] = top_ops(pipe, clip, args.profile_ops)
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "chunks": rows}, indent=1))


if __name__ == "__main__":
    main()
