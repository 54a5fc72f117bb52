"""Pipelined vs sequential runner, and 2 shard workers vs 1, on `run method=bicubic` with every offline
metric over longform_mini: wall times measured in one script run, reported as ratios.

Each configuration runs as the CLI in fresh processes and a fresh output folder. ``wall`` is the
command's wall time (interpreter start, imports and model loading included); ``clips`` is from the
run's first ``run ...`` log line (everything built) to the last table write, the part sharding and
pipelining can change. ``max_frames`` bounds every clip, to keep the script near ten minutes on 2 cores.
Usage: python benchmarks/pipeline_shards.py [--max-frames 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = "metrics=[psnr,ssim,niqe,ewarp_dis,tof,semantic_offline]"
REPO = Path(__file__).resolve().parents[1]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run(out: Path, max_frames: int, *extra: str, multirun: bool = False) -> dict[str, float]:
    cmd = [sys.executable, "-m", "infvsr_bench", "run", *(["-m"] if multirun else []), "method=bicubic", METRICS,
           f"max_frames={max_frames}", f"output_root={out}", "progress=false", *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    run_dir = out / "longform_mini" / "bicubic"
    stamps = re.findall(r"^(\S+ \S+) INFO \S+ run ", (run_dir / "run.log").read_text(), re.MULTILINE)
    first = min(dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp() for s in stamps)
    result = {"wall": wall, "clips": (run_dir / "clips.parquet").stat().st_mtime - first}
    print(f"{out.name}: wall {result['wall']:.1f} s, clips {result['clips']:.1f} s  ({uptime()})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-frames", type=int, default=40)
    parser.add_argument("--keep", type=Path, default=None, help="write the run folders here (default: a temp folder)")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "infvsr_bench", "build", "dataset=longform_mini"], cwd=REPO, check=True,
                   capture_output=True)  # built before anything is timed
    print(f"before: {uptime()}  (cpus: {os.cpu_count()})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        n = args.max_frames
        results = {
            "startup (1 frame, 1 clip)": run(root / "startup", 1, "max_clips=1"),
            "sequential, 1 worker": run(root / "sequential", n, "pipeline=false"),
            "pipelined, 1 worker": run(root / "pipelined", n),
            "pipelined, 2 workers (joblib)": run(root / "two", n, "shard.count=2", "shard.index=range(2)",
                                                 "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", multirun=True),
        }
    print(f"after:  {uptime()}")
    print(f"\nmax_frames={n}: 3 clips x {n} frames\n")
    print("| configuration | wall s | clips s |")
    print("|---|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['wall']:.1f} | {r['clips']:.1f} |")
    seq, pipe, two = (results[k] for k in list(results)[1:])
    print(f"\npipelined / sequential: wall {pipe['wall'] / seq['wall']:.2f}x, clips {pipe['clips'] / seq['clips']:.2f}x")
    print(f"2 workers / 1 worker:   wall {two['wall'] / pipe['wall']:.2f}x, clips {two['clips'] / pipe['clips']:.2f}x")


if __name__ == "__main__":
    main()
