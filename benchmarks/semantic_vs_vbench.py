"""Our streaming subject/background consistency vs a VBench-style implementation of the same numbers.

The VBench way decodes the whole clip into one float32 tensor (0-255, as VBench's ``load_video``),
transforms it all, then loops over the frames (CLIP in the precision VBench uses on the device:
fp16 on CUDA, fp32 on the CPU); ours streams chunks through the registered metrics. Both use the same network and weights
(pretrained when present, else ``--random-weights``), so their scores must agree to 1e-6, while
peak RSS must stay flat for ours and grow with the clip for theirs. Each side runs in its own
process at each length, on a smooth pan over a real photograph (skimage astronaut).
Usage: python benchmarks/semantic_vs_vbench.py [--frames 500 2000] [--size 240 320]
       [--backbones dino clip] [--random-weights] [--chunk 32] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data
from torchvision import transforms as T

from infvsr_bench.devices import resolve_device
from infvsr_bench.metrics import METRICS, build_metric
from infvsr_bench.metrics.features import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    FeatureBank,
)
from infvsr_bench.metrics.semantic import clip_precision

COLUMNS = {"dino": "subject_consistency", "clip": "background_consistency", "efficientnet_lite0": "semantic_offline"}
CLASSES = {"subject_consistency": "SubjectConsistency", "background_consistency": "BackgroundConsistency",
           "semantic_offline": "SemanticOffline"}
# VBench's transforms (Vchitect/VBench@45e79ec1 vbench/utils.py dino_transform / clip_transform), applied to
# float32 (T,C,H,W) in 0-255: resized without rounding or clamping, then scaled and normalised.
VBENCH_TRANSFORMS = {
    "dino": T.Compose([T.Resize(size=224, antialias=False), T.Lambda(lambda x: x.div(255.0)),
                       T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]),
    "clip": T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC, antialias=False), T.CenterCrop(224),
                       T.Lambda(lambda x: x.div(255.0)), T.Normalize(CLIP_MEAN, CLIP_STD)]),
    "efficientnet_lite0": T.Compose([T.Resize(224, antialias=True), T.Lambda(lambda x: x.float().div(255.0)),
                                     T.Normalize((0.5,) * 3, (0.5,) * 3)]),
}


def pan_frames(n: int, size: tuple[int, int], chunk: int) -> Iterator[np.ndarray]:
    """Chunks of a smooth pan over a real photograph, generated on the fly."""
    img = data.astronaut()
    h, w = size
    span_y, span_x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    for start in range(0, n, chunk):
        out = []
        for t in range(start, min(n, start + chunk)):
            x = int(span_x + span_x * np.sin(t / 150))
            y = int(span_y + span_y * np.sin(t / 97))
            out.append(img[y: y + h, x: x + w])
        yield np.stack(out)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(args: argparse.Namespace) -> dict[str, float]:
    """Stream chunks through the registered metrics (features shared between them per chunk)."""
    for column in (COLUMNS[b] for b in args.backbones):
        if column not in METRICS:
            METRICS.register(column, f"infvsr_bench.metrics.semantic:{CLASSES[column]}")
    options = {"weights": "random" if args.random_weights else "auto", "device": args.device}
    metrics = {b: build_metric(COLUMNS[b], options) for b in args.backbones}
    loaded = peak_rss_mib()
    start = 0
    for chunk in pan_frames(args.n, tuple(args.size), args.chunk):
        for m in metrics.values():
            m.update(chunk, None, start)
        start += len(chunk)
    return {"scores": {b: m.compute().scalars[m.column] for b, m in metrics.items()}, "rss_after_load_mib": loaded}


@torch.inference_mode()
def vbench(args: argparse.Namespace) -> dict[str, float]:
    """VBench's subject/background consistency loop: whole clip in memory, one frame at a time."""
    device = resolve_device(args.device)
    precision = {b: clip_precision("vbench", device) if b == "clip" else "float32" for b in args.backbones}
    nets = {b: FeatureBank.get(b, device, weights="random" if args.random_weights else "auto", precision=precision[b])
            for b in args.backbones}
    loaded = peak_rss_mib()
    frames = np.concatenate(list(pan_frames(args.n, tuple(args.size), args.n)))
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    scores = {}
    for b, bank in nets.items():
        images = VBENCH_TRANSFORMS[b](video)
        video_sim, first, former = 0.0, None, None
        for i in range(len(images)):
            feats = F.normalize(bank.net(images[i].unsqueeze(0).to(bank.device)), dim=-1, p=2)  # net casts to its dtype
            if i == 0:
                first = feats
            else:
                sim_pre = max(0.0, F.cosine_similarity(former, feats).item())
                sim_fir = max(0.0, F.cosine_similarity(first, feats).item())
                video_sim += (sim_pre + sim_fir) / 2
            former = feats
        scores[b] = video_sim / (len(images) - 1)
    return {"scores": scores, "rss_after_load_mib": loaded}


def run_side(role: str, n: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--role", role, "--n", str(n), "--size", *map(str, args.size),
           "--backbones", *args.backbones, "--chunk", str(args.chunk), "--device", args.device]
    cmd += ["--random-weights"] if args.random_weights else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320])
    parser.add_argument("--backbones", nargs="+", default=["dino", "clip"], choices=sorted(COLUMNS))
    parser.add_argument("--random-weights", action="store_true", help="seeded random weights (no files needed)")
    parser.add_argument("--chunk", type=int, default=32, help="frames per streamed chunk (ours)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--role", choices=["ours", "vbench"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.role:
        start = time.perf_counter()
        result = (ours if args.role == "ours" else vbench)(args)
        print(json.dumps({**result, "peak_rss_mib": peak_rss_mib(), "seconds": time.perf_counter() - start}))
        return
    worst = 0.0
    for n in args.frames:
        sides = {role: run_side(role, n, args) for role in ("ours", "vbench")}
        for role, r in sides.items():
            print(f"{n:6d} frames {role:6s}: " + "  ".join(f"{COLUMNS[b]} {s:.8f}" for b, s in r["scores"].items())
                  + f"  | RSS after model load {r['rss_after_load_mib']:.0f} MiB, peak {r['peak_rss_mib']:.0f} MiB,"
                  f" {r['seconds']:.1f} s", flush=True)
        diff = max(abs(sides["ours"]["scores"][b] - sides["vbench"]["scores"][b]) for b in args.backbones)
        worst = max(worst, diff)
        print(f"{n:6d} frames max |ours - vbench| = {diff:.2e}")
    print(f"agreement: {'OK' if worst <= 1e-6 else 'FAIL'} (max difference {worst:.2e}, bound 1e-6)")


if __name__ == "__main__":
    main()
