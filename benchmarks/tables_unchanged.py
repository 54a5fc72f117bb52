"""Do the tables stay byte for byte the same across a refactor? (issue #22's behaviour check)

Runs bicubic on ``longform_mini`` with every metric that needs no downloaded weights, through the
CLI as a user would, then ``report``; hashes the leaderboard files (.md, .csv, .tex) and the run's
clip, frame and curve tables with the columns that measure time or memory left out (they differ
from run to run). ``--record FILE`` writes the hashes; ``--check FILE`` compares with a recorded
file and exits 1 naming each table that differs (and printing the leaderboard.md diff, whose text
the record keeps). The run fingerprint is shown apart: it changes when a recorded setting's
spelling changes, which the values do not show.
Usage: python benchmarks/tables_unchanged.py [--frames 60] [--work DIR] (--record F | --check F)
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

METRICS = ("psnr", "ssim", "psnr_rgb", "ssim_rgb", "psnr_dove", "ssim_dove", "psnr_dove_y", "ssim_dove_y", "niqe",
           "niqe_basicsr", "ewarp_dis", "tof", "semantic_offline")
TIMING = ("seconds", "fps", "peak", "rss", "cuda")  # column name parts of run-to-run measurements
LEADERBOARD = ("leaderboard.md", "leaderboard.csv", "leaderboard.tex")


def run(work: Path, frames: int) -> Path:
    """The bicubic run and its report under ``work`` (relative paths, so no table names the folder)."""
    cli = [sys.executable, "-m", "infvsr_bench"]
    metrics = f"metrics=[{','.join(METRICS)}]"
    subprocess.run([*cli, "run", "method=bicubic", "dataset=longform_mini", metrics, f"max_frames={frames}",
                    "output_root=runs", "progress=false"], cwd=work, check=True)
    subprocess.run([*cli, "report", "runs/longform_mini", "out=report", "plots=false"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    return work


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashes(work: Path) -> dict[str, str]:
    """sha256 of each leaderboard file and of each run table's CSV without its timing columns."""
    out = {name: digest((work / "report" / name).read_bytes()) for name in LEADERBOARD}
    run_dir = work / "runs" / "longform_mini" / "bicubic"
    for table in ("clips", "frames", "curves"):
        frame = pd.read_parquet(run_dir / f"{table}.parquet")
        keep = [c for c in frame.columns if not any(t in c for t in TIMING) and c != "fingerprint"]
        buffer = io.StringIO()
        frame[keep].to_csv(buffer, index=False)
        out[f"{table} (values)"] = digest(buffer.getvalue().encode())
    clips = pd.read_parquet(run_dir / "clips.parquet")
    out["fingerprint"] = str(clips["fingerprint"].iloc[0]) if "fingerprint" in clips else "not recorded"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames per clip (max_frames); 0 = whole clips")
    parser.add_argument("--work", type=Path, default=None, help="an empty or new folder (default: a temporary one)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", type=Path)
    what.add_argument("--check", type=Path)
    args = parser.parse_args()
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work} is not empty")
    with tempfile.TemporaryDirectory(prefix="tables-unchanged-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        got = hashes(run(work, args.frames))
        board = (work / "report" / "leaderboard.md").read_text()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"frames": args.frames, "metrics": list(METRICS), "commit": commit, "sha256": got,
              "leaderboard.md": board}
    if args.record:
        args.record.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded {len(got)} hashes at {commit} in {args.record}")
        return 0
    expected = json.loads(args.check.read_text())
    if (expected["frames"], expected["metrics"]) != (args.frames, list(METRICS)):
        print(f"error: {args.check} was recorded with frames={expected['frames']} metrics={expected['metrics']}")
        return 2
    differ = [k for k, v in got.items() if k != "fingerprint" and expected["sha256"].get(k) != v]
    fingerprint = "same" if expected["sha256"].get("fingerprint") == got["fingerprint"] else "changed"
    print(f"{commit} vs {expected['commit']}: {len(got) - 1 - len(differ)} of {len(got) - 1} tables identical; "
          f"run fingerprint {fingerprint}")
    for name in differ:
        print(f"  differs: {name}")
    if "leaderboard.md" in differ and "leaderboard.md" in expected:
        sys.stdout.writelines(difflib.unified_diff(expected["leaderboard.md"].splitlines(True), board.splitlines(True),
                                                   expected["commit"], commit))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
