"""Time `report` over many runs of per-frame data (default 50 runs x 10 clips x 10,000 frames).

Usage: python benchmarks/report_scale.py [--runs 50] [--clips 10] [--frames 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from infvsr_bench.report.build import ReportOptions, build_report
from infvsr_bench.results.record import DatasetRecord, RunRecord, RunStatus, write_run_record, write_table

METRICS = [
    {"metric": "psnr", "column": "psnr", "version": "1.0", "kind": "FR", "higher_is_better": True,
     "settings": {"channel": "y", "crop_border": 0}, "weights": "none"},
    {"metric": "ssim", "column": "ssim", "version": "1.0", "kind": "FR", "higher_is_better": True,
     "settings": {"channel": "y", "crop_border": 0}, "weights": "none"},
]


def make_runs(root: Path, runs: int, clips: int, frames: int) -> None:
    rng = np.random.default_rng(0)
    for r in range(runs):
        path = root / f"dataset{r % 5}" / f"method{r}"
        path.mkdir(parents=True)
        n = clips * frames
        table = pd.DataFrame({"clip": np.repeat([f"c{i}" for i in range(clips)], frames),
                              "frame": np.tile(np.arange(frames), clips),
                              "psnr": rng.normal(28, 2, n), "ssim": rng.uniform(0.6, 0.9, n)})
        write_table(table, path / "frames.parquet", csv=False)
        per_clip = table.groupby("clip", sort=False)[["psnr", "ssim"]].mean().reset_index()
        per_clip = per_clip.assign(status="ok", frames=frames, method_fps=rng.uniform(1, 100),
                                   chunk_starts=[list(range(0, frames, 12))] * clips)
        write_table(per_clip, path / "clips.parquet", csv=False)
        method = {"name": f"method{r}", "version": "1", "weights": "none",
                  "parameters": int(rng.integers(1e6, 1e9)), "config": {}}
        dataset = DatasetRecord(f"dataset{r % 5}", 4, [f"c{i}" for i in range(clips)])
        record = RunRecord(config={}, identity={"run": r}, fingerprint=str(r), method=method, metrics=METRICS,
                           dataset=dataset, environment={}, started="2026-11-26", status=RunStatus.COMPLETE,
                           finished="2026-11-26", clips_ok=clips, clips_failed=0)
        write_run_record(path, record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--frames", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_runs(Path(tmp) / "runs", args.runs, args.clips, args.frames)
        t1 = time.perf_counter()
        build_report([str(Path(tmp) / "runs")], ReportOptions(out=str(Path(tmp) / "report")))
        t2 = time.perf_counter()
    rows = args.runs * args.clips * args.frames
    print(f"made {args.runs} runs ({rows:,} per-frame rows) in {t1 - t0:.1f} s; report (tables + plots) in {t2 - t1:.1f} s")


if __name__ == "__main__":
    main()
