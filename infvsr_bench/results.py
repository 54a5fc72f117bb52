"""Run folders: atomic per-clip results, consolidated tables (parquet + CSV) and the run record.

Layout of a run folder::

    run.json                 config, git hash, versions, metric infos, method info, hardware, timings
    clips/<clip>/frames.parquet   per-frame values of one finished clip
    clips/<clip>/clip.json        the clip's row; written last, so it marks the clip as finished
    frames.parquet / .csv    all clips' per-frame values
    clips.parquet / .csv     one row per clip (status ok / failed with the reason)

Every file is written to a temp name and renamed, so ``kill -9`` never leaves a torn file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from infvsr_bench.errors import ConfigError

RECORDED_PACKAGES = (
    "infvsr-bench", "torch", "torchvision", "numpy", "pandas", "pyarrow", "av", "decord2",
    "opencv-python-headless", "scikit-image", "pyiqa", "open_clip_torch", "timm", "hydra-core",
)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, data: Any, sort_keys: bool = True) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(data, indent=1, sort_keys=sort_keys, default=str)))


def write_table(df: pd.DataFrame, path: Path, csv: bool = True) -> None:
    """``path`` as parquet and, next to it, the same table as CSV."""
    _atomic(path, lambda p: df.to_parquet(p, index=False))
    if csv:
        _atomic(path.with_suffix(".csv"), lambda p: df.to_csv(p, index=False))


def safe_name(clip: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", clip) or "_"


def config_fingerprint(config: dict[str, Any]) -> str:
    """Hash of everything that changes results (method, dataset, metrics, frame limits)."""
    keys = ("method", "dataset", "metrics", "max_frames", "seed")
    content = {k: config.get(k) for k in keys}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def git_state() -> dict[str, Any]:
    """Commit and dirtiness of the checkout the package runs from (None outside a git checkout)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def environment() -> dict[str, Any]:
    """Package versions, Python, OS, CPU and GPU: what a reader needs to reproduce a number."""
    import torch

    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "cuda": torch.version.cuda,
        "packages": versions,
        "git": git_state(),
    }


class RunStore:
    """One run folder: knows which clips are finished and writes results atomically."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.clips_dir = self.dir / "clips"
        try:
            self.clips_dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".write-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"output folder {self.dir} is not writable: {exc.strerror or exc}") from None

    def previous_record(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / "run.json").read_text())
        except (OSError, ValueError):
            return None

    def check_resumable(self, fingerprint: str, overwrite: bool) -> None:
        """Refuse to mix results of different configs in one folder, unless told to start over."""
        previous = self.previous_record()
        if previous is None or previous.get("config_fingerprint") == fingerprint:
            return
        if not overwrite:
            raise ConfigError(
                f"{self.dir} holds results of a different config; pass run_name=<new name> to keep both, "
                "or overwrite=true to replace them"
            )
        shutil.rmtree(self.clips_dir)
        self.clips_dir.mkdir()
        for name in ("frames", "clips", "curves"):
            for suffix in (".parquet", ".csv"):
                (self.dir / f"{name}{suffix}").unlink(missing_ok=True)

    def clip_row(self, clip: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.clips_dir / safe_name(clip) / "clip.json").read_text())
        except (OSError, ValueError):
            return None

    def is_finished(self, clip: str) -> bool:
        row = self.clip_row(clip)
        return row is not None and row.get("status") == "ok"

    def write_clip(self, clip: str, frames: pd.DataFrame | None, row: dict[str, Any],
                   curves: pd.DataFrame | None = None) -> None:
        """Per-frame values and curves first, the clip row last: its presence means the clip is done."""
        folder = self.clips_dir / safe_name(clip)
        folder.mkdir(exist_ok=True)
        for name, table in (("frames", frames), ("curves", curves)):
            path = folder / f"{name}.parquet"
            if table is not None:
                write_table(table, path, csv=False)
            else:
                path.unlink(missing_ok=True)
        write_json(folder / "clip.json", row, sort_keys=False)

    def consolidate(self, clip_order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rebuild the run-level tables from the finished clips, in dataset order."""
        rows, frames, curves = [], [], []
        for clip in clip_order:
            row = self.clip_row(clip)
            if row is None:
                continue
            rows.append(row)
            folder = self.clips_dir / safe_name(clip)
            if row.get("status") == "ok":
                if (folder / "frames.parquet").exists():
                    frames.append(pd.read_parquet(folder / "frames.parquet"))
                if (folder / "curves.parquet").exists():
                    curves.append(pd.read_parquet(folder / "curves.parquet"))
        clips_df = pd.DataFrame(rows)
        frames_df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["clip", "frame"])
        write_table(clips_df, self.dir / "clips.parquet")
        write_table(frames_df, self.dir / "frames.parquet")
        if curves:
            write_table(pd.concat(curves, ignore_index=True), self.dir / "curves.parquet")
        return frames_df, clips_df

    def write_record(self, record: dict[str, Any]) -> None:
        write_json(self.dir / "run.json", record)
