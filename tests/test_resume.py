"""kill -9 in the middle of a run leaves no torn file; re-running finishes with identical results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import REPO, downscale, real_frames, write_clip

METRIC_COLUMNS = ["clip", "frame", "psnr", "ssim"]


def _start(root, out):
    return subprocess.Popen(
        [sys.executable, "-m", "infvsr_bench", "run", "dataset=folder", f"dataset.root={root}",
         f"output_root={out}", "progress=false", "method.chunk_size=4"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_kill_9_mid_clip_then_resume(tmp_path):
    root = tmp_path / "data"
    for i, n in enumerate((8, 400, 8)):  # the long middle clip is where the kill lands
        gt = real_frames(n, (96, 128), seed=i)
        write_clip(root / "GT" / f"clip{i}.mkv", gt)
        write_clip(root / "LR" / f"clip{i}.mkv", downscale(gt))

    run_dir = tmp_path / "killed" / "folder" / "bicubic"
    proc = _start(root, tmp_path / "killed")
    first_done = run_dir / "clips" / "clip0" / "clip.json"
    deadline = time.time() + 120
    while not first_done.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)  # into the middle clip
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first_done.exists()
    assert not (run_dir / "clips" / "clip1" / "clip.json").exists(), "kill landed after clip1 finished"
    # Whatever is on disk is complete: every table parses, no temp file is mistaken for a result.
    partial = pd.read_parquet(run_dir / "frames.parquet")
    assert set(partial["clip"]) == {"clip0"}
    first_mtime = first_done.stat().st_mtime_ns

    resumed = _start(root, tmp_path / "killed")
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert "clip clip0: already finished, skipped" in (run_dir / "run.log").read_text()
    assert first_done.stat().st_mtime_ns == first_mtime

    clean = _start(root, tmp_path / "clean")
    log, _ = clean.communicate(timeout=300)
    assert clean.returncode == 0, log
    resumed_frames = pd.read_parquet(run_dir / "frames.parquet")[METRIC_COLUMNS]
    clean_frames = pd.read_parquet(tmp_path / "clean" / "folder" / "bicubic" / "frames.parquet")[METRIC_COLUMNS]
    pd.testing.assert_frame_equal(resumed_frames, clean_frames)
    assert len(clean_frames) == 416
