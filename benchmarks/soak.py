"""Soak: one long clip (20,000 frames by default) through `run method=bicubic` with every metric that works
offline, the process's resident memory (VmRSS) read every 1,000 frames.

Acceptance: after warm-up (the first sample, at 1,000 frames) memory is flat: every sample of the second half
is within 10% of the first. The run goes through the real command (`infvsr_bench.app.cli.main`, in this process,
pipelined as by default); the only addition is a hook on bicubic's `process` that counts frames and reads
VmRSS at each multiple of ``--every``. A metric whose pretrained files are absent is left out and listed.

Usage: nice -n 10 python benchmarks/soak.py [--frames 20000] [--size 96 128] [--every 1000]
       [--metrics psnr,ssim,...] [--set metrics.niqe.stride=4 ...] [--json soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf
from rss_vs_length import write_pan_clip

from infvsr_bench.app.cli import compose, group_options
from infvsr_bench.app.cli import main as cli_main
from infvsr_bench.errors import InfvsrError
from infvsr_bench.metrics import build_metric
from infvsr_bench.results.record import read_table
from infvsr_bench.run.memory import current_rss_mib
from methods.classical import Bicubic

BOUND = 0.10


def offline_metrics(root: Path, overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """Every metric config that builds here without a download (else the one-line reason it does not)."""
    usable, left_out = [], {}
    for name in group_options("metrics"):
        cfg = compose([f"metrics=[{name}]", "dataset=folder", f"dataset.root={root}",
                       *[o for o in overrides if o.startswith(f"metrics.{name}.")]])
        try:
            build_metric(name, OmegaConf.to_container(cfg.metrics, resolve=True)[name])
        except InfvsrError as exc:
            left_out[name] = str(exc).split(";")[0]
        else:
            usable.append(name)
    return usable, left_out


class RssHook:
    """Counts the frames bicubic has processed; reads VmRSS each time the count passes a multiple of ``every``."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.frames = 0
        self.began = time.perf_counter()
        self.samples: list[dict[str, float]] = []
        self._process = Bicubic.process

    def __enter__(self) -> "RssHook":
        hook = self

        def process(method, lr):
            out = hook._process(method, lr)
            before, hook.frames = hook.frames, hook.frames + len(lr)
            if hook.frames // hook.every > before // hook.every:
                hook.samples.append({"frames": hook.frames // hook.every * hook.every, "rss_mib": current_rss_mib(),
                                     "seconds": time.perf_counter() - hook.began})
                print(f"sample: {hook.samples[-1]}", file=sys.stderr, flush=True)
            return out

        Bicubic.process = process
        return self

    def __exit__(self, *exc) -> None:
        Bicubic.process = self._process


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()}-core {model}, {gib:.0f} GiB, {platform.system()} {platform.machine()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--size", type=int, nargs=2, default=[96, 128], help="GT height width (NIQE needs >= 96)")
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--metrics", default="", help="comma-separated; default: every metric usable offline")
    parser.add_argument("--set", nargs="*", default=[], help="extra run overrides, e.g. metrics.niqe.stride=4")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--list-offline", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list_offline:
        print(json.dumps(offline_metrics(args.list_offline, args.set)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "data", Path(tmp) / "runs"
        t0 = time.perf_counter()
        write_pan_clip(root, args.frames, tuple(args.size))
        print(f"clip: {args.frames} frames, GT {args.size[0]}x{args.size[1]}, written in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        if args.metrics:
            metrics, left_out = args.metrics.split(","), {}
        else:  # found in a child process, so that no metric built for the check stays in this one's memory
            found = subprocess.run([sys.executable, __file__, "--list-offline", str(root), "--set", *args.set],
                                   check=True, capture_output=True, text=True).stdout
            metrics, left_out = json.loads(found.splitlines()[-1])
        for name, why in left_out.items():
            print(f"left out {name}: {why}", flush=True)
        print(f"metrics: {','.join(metrics)}", flush=True)
        run = ["run", "method=bicubic", "dataset=folder", f"dataset.root={root}", f"output_root={out}",
               f"metrics=[{','.join(metrics)}]", "progress=false", *args.set]
        with RssHook(args.every) as hook:
            code = cli_main(run)
        wall = time.perf_counter() - hook.began
        clips = read_table(out / "folder" / "bicubic" / "clips.parquet")
        row = clips.iloc[0].to_dict()

    samples = hook.samples
    first = samples[0]["rss_mib"]
    half = [s for s in samples if s["frames"] > args.frames // 2]
    deviation = max(abs(s["rss_mib"] - first) / first for s in half)
    overall = max(abs(s["rss_mib"] - first) / first for s in samples)
    result = {
        "frames": args.frames, "gt_size": args.size, "every": args.every, "metrics": metrics, "left_out": left_out,
        "overrides": args.set, "exit_code": code, "status": row["status"], "reason": row.get("reason"),
        "wall_seconds": round(wall, 1), "machine": machine(), "load_average": os.getloadavg(),
        "samples": samples, "first_rss_mib": first, "second_half_max_deviation": deviation,
        "max_deviation": overall, "bound": BOUND, "pass": deviation <= BOUND and row["status"] == "ok",
        "process_peak_rss_mib": row.get("process_peak_rss_mib"),
        "clip_values": {m: row.get(m) for m in metrics if m in row},
    }
    print("| frames | RSS (MiB) | vs first | elapsed (s) |\n|---:|---:|---:|---:|")
    for s in samples:
        change = 100 * (s["rss_mib"] - first) / first
        print(f"| {s['frames']:,} | {s['rss_mib']:.1f} | {change:+.2f}% | {s['seconds']:.0f} |")
    print(f"status {row['status']}, exit {code}, wall {wall:.0f} s; second half max deviation {100 * deviation:.2f}% "
          f"(bound {100 * BOUND:.0f}%), over all samples {100 * overall:.2f}%: {'PASS' if result['pass'] else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
