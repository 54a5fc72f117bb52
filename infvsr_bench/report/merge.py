"""Read run folders into one tidy table, keeping apart what must not share a column.

Two runs share a metric column only when the metric's name, version and every setting agree;
otherwise the column gets a variant suffix and the reason is reported. Re-runs of the same
(method, dataset, config) keep the most recent finished one. Random-weight results are refused.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from infvsr_bench.errors import ConfigError


@dataclasses.dataclass
class Run:
    """One run folder: its record and where its tables are."""

    path: Path
    record: dict[str, Any]
    alias: str | None = None  # set when two runs would otherwise share a display name

    @property
    def method(self) -> str:
        """Display name (the method's label, else the run name, else the method); tiny weights are
        labelled so, never with the paper model's name."""
        if self.alias:
            return self.alias
        info = self.record["method"]
        label = info.get("config", {}).get("label") or self.record.get("config", {}).get("run_name") or info["name"]
        return f"{label}-tiny" if info.get("weights") == "tiny" else label

    @property
    def dataset(self) -> str:
        return self.record["dataset"]["name"]

    @property
    def finished(self) -> str:
        return self.record.get("finished") or self.record.get("started") or ""


@dataclasses.dataclass
class Merged:
    """Per-frame and per-clip values of many runs, plus the metric catalogue and what was set apart."""

    frames: pd.DataFrame  # run, method, dataset, clip, frame, <metric columns>
    clips: pd.DataFrame  # run, method, dataset, clip, frames, <metric clip values>, method_fps, ...
    curves: pd.DataFrame  # run, method, dataset, clip, metric, curve, x, value, count
    metrics: dict[str, dict[str, Any]]  # column -> info (higher_is_better, version, settings)
    runs: list[Run]
    notes: list[str]


def find_runs(patterns: list[str]) -> list[Path]:
    """Run folders (holding run.json) matched by paths or globs, searched recursively."""
    found: set[Path] = set()
    for pattern in patterns:
        for hit in glob.glob(str(Path(pattern).expanduser()), recursive=True) or [pattern]:
            p = Path(hit)
            if (p / "run.json").is_file():
                found.add(p.resolve())
            elif p.is_dir():
                found.update(q.parent.resolve() for q in p.rglob("run.json"))
    if not found:
        raise ConfigError(f"no run folders (with run.json) under {patterns}")
    return sorted(found)


def _metric_key(info: dict[str, Any]) -> str:
    return json.dumps({k: info.get(k) for k in ("metric", "version", "settings")}, sort_keys=True)


def _variant_suffix(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:6]


def load_runs(patterns: list[str]) -> Merged:
    """Merge run folders; see the module docstring for the rules."""
    notes: list[str] = []
    latest: dict[tuple, Run] = {}
    for path in find_runs(patterns):
        try:
            record = json.loads((path / "run.json").read_text())
            run = Run(path, record)
            ident = (run.method, run.dataset, record["config_fingerprint"])
        except (OSError, ValueError, KeyError) as exc:
            notes.append(f"{path}: skipped, unreadable run.json ({exc})")
            continue
        if not (path / "clips.parquet").exists():
            notes.append(f"{path}: skipped, no results yet")
            continue
        if record["method"].get("weights") == "random":
            notes.append(f"{path}: refused, method {run.method} ran with random weights")
            continue
        random_metrics = [m["column"] for m in record.get("metrics", []) if m.get("weights") == "random"]
        if random_metrics:
            notes.append(f"{path}: refused, metric(s) {random_metrics} ran with random weights")
            continue
        if ident in latest:
            older, newer = sorted([latest[ident], run], key=lambda r: r.finished)
            notes.append(f"{older.path}: superseded by the re-run {newer.path}")
            run = newer
        latest[ident] = run
    runs = sorted(latest.values(), key=lambda r: (r.dataset, r.method))
    seen: set[tuple[str, str]] = set()
    for run in runs:  # same display name, different configs: keep both, named apart
        if (run.method, run.dataset) in seen:
            notes.append(f"{run.path}: another run of {run.method} on {run.dataset} has a different config; "
                         f"shown as {run.method} ({run.path.name})")
            run.alias = f"{run.method} ({run.path.name})"
        seen.add((run.method, run.dataset))

    # One column per (metric, version, settings); disagreeing variants get their own column.
    catalogue: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    renames: dict[Path, dict[str, str]] = {}
    for run in runs:
        renames[run.path] = {}
        for info in run.record.get("metrics", []):
            col, key = info["column"], _metric_key(info)
            if col not in keys:
                keys[col], catalogue[col] = key, info
            elif keys[col] != key:
                alt = f"{col}@{_variant_suffix(key)}"
                renames[run.path][col] = alt
                catalogue.setdefault(alt, info)
                a, b = json.loads(keys[col]), json.loads(key)
                diff = sorted(k for k in ("metric", "version", "settings") if a.get(k) != b.get(k))
                notes.append(f"{run.method} on {run.dataset}: '{col}' differs in {diff} from earlier runs; "
                             f"shown apart as '{alt}'")

    frames, clips, curves = [], [], []
    for run in runs:
        tag = {"run": str(run.path), "method": run.method, "dataset": run.dataset}
        c = pd.read_parquet(run.path / "clips.parquet")
        clips.append(c.rename(columns=renames[run.path]).assign(**tag))
        if (run.path / "frames.parquet").exists():
            frames.append(pd.read_parquet(run.path / "frames.parquet").rename(columns=renames[run.path]).assign(**tag))
        if (run.path / "curves.parquet").exists():
            cv = pd.read_parquet(run.path / "curves.parquet")
            cv["metric"] = cv["metric"].replace(renames[run.path])
            curves.append(cv.assign(**tag))

    def cat(parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    return Merged(cat(frames), cat(clips), cat(curves), catalogue, runs, notes)
