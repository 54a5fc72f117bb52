"""Run folders: atomic per-clip results, consolidated tables (parquet + CSV) and the run record.

Layout of a run folder::

    run.json                 config, git hash, versions, metric infos, method info, hardware, timings
    clips/<folder>/frames.parquet per-frame values of one finished clip (folder: ``clip_folder_name``)
    clips/<folder>/clip.json      the clip's row, naming the clip; written last, so it marks the clip as finished
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
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from infvsr_bench.errors import ConfigError
from infvsr_bench.run_record import RunRecord, identity_differences

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


_KEEP = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")
_MAX_FOLDER = 200


def clip_folder_name(clip: str) -> str:
    """A unique, reversible folder name for a clip: ``[a-z0-9_-.]`` kept, an upper-case letter
    prefixed by ``^`` (unique on case-insensitive disks too), every other byte ``%XX`` (a leading
    dot too). ``unquote(name.replace("^", ""))`` gives the clip back; names that would be over
    200 bytes are cut and end in ``~`` + 16 hex digits of the clip name's sha256."""
    out = []
    for i, ch in enumerate(clip):
        if ch in _KEEP and not (i == 0 and ch == "."):
            out.append(ch)
        elif "A" <= ch <= "Z":
            out.append("^" + ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    name = "".join(out) or "%"
    if len(name) > _MAX_FOLDER:
        name = name[:_MAX_FOLDER - 17] + "~" + hashlib.sha256(clip.encode("utf-8")).hexdigest()[:16]
    return name


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

    def check_resumable(self, identity: dict[str, Any], fingerprint: str, overwrite: bool) -> None:
        """Refuse to mix results of another run (config, method or metric code, weights, data) in one
        folder, naming what differs, unless told to start over."""
        try:
            previous = json.loads((self.dir / "run.json").read_text())
        except (OSError, ValueError):
            previous = None
        if previous is None or previous.get("fingerprint") == fingerprint:
            return
        if not overwrite:
            old = previous.get("identity")
            differs = identity_differences(old, identity) if isinstance(old, dict) else ["run record format"]
            shown = ", ".join(differs[:4]) + (f" and {len(differs) - 4} more" if len(differs) > 4 else "")
            raise ConfigError(
                f"{self.dir} holds results of a different run (differs in {shown}); pass run_name=<new name> "
                "to keep both, or overwrite=true to replace them"
            )
        shutil.rmtree(self.clips_dir)
        self.clips_dir.mkdir()
        for name in ("frames", "clips", "curves"):
            for suffix in (".parquet", ".csv"):
                (self.dir / f"{name}{suffix}").unlink(missing_ok=True)

    def clip_row(self, clip: str) -> dict[str, Any] | None:
        """The stored row of ``clip``; None when absent, unreadable or belonging to another clip."""
        try:
            row = json.loads((self.clips_dir / clip_folder_name(clip) / "clip.json").read_text())
        except (OSError, ValueError):
            return None
        return row if isinstance(row, dict) and row.get("clip") == clip else None

    def is_finished(self, clip: str) -> bool:
        row = self.clip_row(clip)
        return row is not None and row.get("status") == "ok"

    def write_clip(self, clip: str, frames: pd.DataFrame | None, row: dict[str, Any],
                   curves: pd.DataFrame | None = None) -> None:
        """Per-frame values and curves first, the clip row last: its presence means the clip is done."""
        folder = self.clips_dir / clip_folder_name(clip)
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
            folder = self.clips_dir / clip_folder_name(clip)
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

    def write_record(self, record: RunRecord) -> None:
        write_json(self.dir / "run.json", record.to_dict())
