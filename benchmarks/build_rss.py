"""Peak RSS of building one animated-photograph clip of 1,000 vs 10,000 frames (streamed build).

Usage: python benchmarks/build_rss.py [--lengths 1000 10000] [--size 240 320]
Each build runs in its own process; the bound for constant memory is 10%.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(n: int, size: list[int], root: Path) -> None:
    from vsr_datasets.builder import build_benchmark

    recipe = {
        "name": "rss", "root": str(root), "kind": "generated", "version": 1, "scale": 4, "seed": 0,
        "storage": "ffv1", "degradation": {"type": "bicubic"}, "convention": {},
        "clips": [{"name": "long", "source": {"type": "animated_photos", "photos": ["astronaut", "coffee", "chelsea"],
                                              "frames": n, "size": size, "shot_frames": [300, 900]}}],
    }
    build_benchmark(recipe, root)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320])
    parser.add_argument("--child", type=int)
    parser.add_argument("--root")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size, Path(args.root))
        return
    results = {}
    for n in args.lengths:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--root", f"{tmp}/ds",
                                  "--size", *map(str, args.size)], check=True, capture_output=True, text=True)
            results[n] = float(out.stdout.strip().splitlines()[-1])
            print(f"{n:6d} frames: peak RSS {results[n]:.1f} MiB, {time.perf_counter() - t0:.0f} s", flush=True)
    base = results[args.lengths[0]]
    for n in args.lengths[1:]:
        print(f"ratio {n}/{args.lengths[0]}: {results[n] / base:.3f} (bound 1.10)")


if __name__ == "__main__":
    main()
