"""Run folders: atomic per-clip results, consolidated tables (parquet + CSV) and the run record.

Layout of a run folder::

    run.json                 config, git hash, versions, metric infos, method info, hardware, timings
    .run.lock                while a worker reads, checks and writes run.json: its lock (``RunStore.begin``)
    clips/<folder>/frames.parquet per-frame values of one finished clip (folder: ``clip_folder_name``)
    clips/<folder>/clip.json      the clip's row, naming the clip and the run key (format version, fingerprint)
                                  it was computed under; written last, so it marks the clip as finished
    clips/<folder>/lease.json     while a worker does the clip: its claim (infvsr_bench/run/leases.py)
    frames.parquet / .csv    all clips' per-frame values
    clips.parquet / .csv     one row per clip (status ok / failed with the reason)

The files' formats (run.json, clip.json, the parquet tables, each versioned) are ``results.record``'s; every
file is written atomically (``io.atomic``), so ``kill -9`` never leaves a torn file. Any number
of workers may share a folder: the first to begin makes it its run's (``begin``: identity checked and
written under a lock, so a worker of another run is refused), clips are claimed with leases, and the
tables are built from the clip files (``build_tables``) by each worker's ``merge`` at its end, so the last
to end leaves them whole (the same files give the same tables), from the rows of the record's run key only.
A killed run leaves no tables, or tables older than its clips (``tables_behind``): ``report`` then builds
them in memory from the clip folders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import logging
import os
import platform
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from infvsr_bench.errors import ConfigError
from infvsr_bench.io.atomic import HOST
from infvsr_bench.results.record import (CLIP_FILE, FORMAT_VERSION, RunKey, RunRecord, RunStatus, identity_differences,
                                         read_clip_row, read_run_record, read_table, stored_run_record, write_clip_row,
                                         write_run_record, write_table)
from infvsr_bench.run.leases import Lease, describe, is_stale, read_holder

__all__ = ["MergeSummary", "RunStore", "RunTables", "build_tables", "check_writable", "clip_folder_name",
           "environment", "git_state", "tables_behind",
           "write_table",  # record's table writer, named here too
           "write_tables"]

log = logging.getLogger("infvsr_bench")
RECORDED_PACKAGES = (
    "infvsr-bench", "torch", "torchvision", "numpy", "pandas", "pyarrow", "av", "decord2",
    "opencv-python-headless", "scikit-image", "pyiqa", "open_clip_torch", "timm", "hydra-core",
)


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


# The write probe's size: a real block, since a full disk still lets an empty file be created.
PROBE_BYTES = 64 * 1024


def check_writable(folder: Path) -> None:
    """Make ``folder`` and write a real block of data into it, so a read-only or full disk is found
    before any work; one-line ConfigError naming the folder otherwise."""
    probe = folder / f".write-probe-{HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            try:
                f.write(bytes(PROBE_BYTES))
                f.flush()
                os.fsync(f.fileno())
            finally:
                probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output folder {folder} is not writable: {exc.strerror or exc}") from None


def _stored_row(clips_dir: Path, clip: str) -> tuple[RunKey, dict[str, Any]] | None:
    """The row stored for ``clip`` and the run key it was written under; None when absent, unreadable or
    naming another clip."""
    found = read_clip_row(clips_dir / clip_folder_name(clip))
    return found if found is not None and found[1].get("clip") == clip else None


@dataclass
class RunTables:
    """A run folder's tables as built from its clip files: the rows written under one run key, in dataset order."""

    frames: pd.DataFrame
    clips: pd.DataFrame
    curves: pd.DataFrame | None  # None: no clip has curves
    foreign: dict[str, str]  # clip whose row was written under another run key -> why it does not belong


def build_tables(run_dir: Path, clip_order: list[str], key: RunKey) -> RunTables:
    """The tables of the rows in ``run_dir``'s clip folders written under ``key``, in ``clip_order``; reads
    only (``merge`` writes them, ``report`` builds them in memory for a run that did not finish)."""
    clips_dir = Path(run_dir) / "clips"
    rows, frames, curves, foreign = [], [], [], {}
    for clip in clip_order:
        found = _stored_row(clips_dir, clip)
        if found is None:
            continue
        written_under, row = found
        if written_under.fingerprint != key.fingerprint:
            foreign[clip] = (f"computed under run fingerprint {str(written_under.fingerprint)[:10]}, "
                             f"not this run's {str(key.fingerprint)[:10]} (another run wrote it)")
            continue
        if written_under != key:
            foreign[clip] = f"written by run format {written_under.format_version!r}, not {key.format_version}"
            continue
        rows.append(row)
        folder = clips_dir / clip_folder_name(clip)
        if row.get("status") == "ok":
            if (folder / "frames.parquet").exists():
                frames.append(read_table(folder / "frames.parquet"))
            if (folder / "curves.parquet").exists():
                curves.append(read_table(folder / "curves.parquet"))
    return RunTables(
        frames=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["clip", "frame"]),
        clips=pd.DataFrame(rows),
        curves=pd.concat(curves, ignore_index=True) if curves else None,
        foreign=foreign,
    )


def write_tables(run_dir: Path, tables: RunTables) -> None:
    """The run-level tables (parquet and CSV) of ``tables`` into ``run_dir``; curves only when a clip has them."""
    write_table(tables.clips, run_dir / "clips.parquet")
    write_table(tables.frames, run_dir / "frames.parquet")
    if tables.curves is not None:
        write_table(tables.curves, run_dir / "curves.parquet")


def tables_behind(run_dir: Path, clip_order: list[str]) -> bool:
    """Whether ``run_dir`` has clip rows that its tables do not hold yet: the tables are missing, or older than
    one of its rows (no merge since its last clip finished: the run was killed, or a worker is still running).
    A folder without clip rows has nothing to rebuild from: its tables, if any, are all there is."""
    rows = []
    for clip in clip_order:
        try:
            rows.append((run_dir / "clips" / clip_folder_name(clip) / CLIP_FILE).stat().st_mtime_ns)
        except OSError:
            continue
    if not rows:
        return False
    try:
        written = (run_dir / "clips.parquet").stat().st_mtime_ns
    except OSError:
        return True
    return max(rows) > written


class RunStore:
    """One run folder: knows which clips are finished and writes results atomically."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.clips_dir = self.dir / "clips"
        self.fingerprint: str | None = None  # the run this worker writes clips of (``begin``)
        check_writable(self.clips_dir)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the folder's lock (``fcntl.flock`` on ``.run.lock``) while run.json is read, checked and
        written, so two workers never both take the folder for different runs.

        flock holds across processes, and across hosts on Linux NFS clients (v4, or v3 with lockd);
        a mount without locking (NFS ``nolock``, Lustre ``localflock``) locks this host's processes only,
        one that refuses locks (ENOLCK; Lustre without ``flock``) none: then we go on unlocked, and the
        fingerprint every clip row carries still keeps another run's values out of this run's tables."""
        path = self.dir / ".run.lock"
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError as exc:
                log.warning("%s: the file system refuses locks (%s); going on unlocked", path, exc.strerror or exc)
            yield

    def begin(self, record: RunRecord, overwrite: bool) -> RunRecord:
        """Make this folder ``record``'s run, atomically across workers: refuse a folder that holds another
        run (config, method or metric code, weights, data), naming what differs, unless told to start over
        (``overwrite``: its results are removed); keep the start time of the folder's record of the same
        run; write the record. Returns the record written; clips written afterwards carry its fingerprint."""
        with self._locked():
            try:
                previous = stored_run_record(self.dir)  # None: a new folder
                taken = previous is not None and previous.key != record.key
                differs = identity_differences(previous.identity, record.identity) if taken else []
            except ConfigError:  # a record of another format (or not a valid one)
                previous, taken, differs = None, True, ["run record format"]
            if previous is not None and not taken:
                record = dataclasses.replace(record, started=previous.started or record.started)
            elif taken and not overwrite:
                shown = ", ".join(differs[:4]) + (f" and {len(differs) - 4} more" if len(differs) > 4 else "")
                raise ConfigError(
                    f"{self.dir} holds results of a different run (differs in {shown}); pass run_name=<new name> "
                    "to keep both, or overwrite=true to replace them"
                )
            elif taken:
                shutil.rmtree(self.clips_dir)
                self.clips_dir.mkdir()
                for name in ("frames", "clips", "curves"):
                    for suffix in (".parquet", ".csv"):
                        (self.dir / f"{name}{suffix}").unlink(missing_ok=True)
            self.write_record(record)
        self.fingerprint = record.fingerprint
        return record

    @property
    def key(self) -> RunKey:
        """The run this worker writes clips of."""
        return RunKey(FORMAT_VERSION, self.fingerprint)

    def clip_row(self, clip: str) -> dict[str, Any] | None:
        """The stored row of ``clip`` computed under this worker's run; None when absent, unreadable,
        naming another clip or written under another run key (to be done again)."""
        found = _stored_row(self.clips_dir, clip)
        return found[1] if found is not None and found[0] == self.key else None

    def is_finished(self, clip: str) -> bool:
        row = self.clip_row(clip)
        return row is not None and row.get("status") == "ok"

    def write_clip(self, clip: str, frames: pd.DataFrame | None, row: dict[str, Any],
                   curves: pd.DataFrame | None = None) -> None:
        """Per-frame values and curves first, the clip row last (with the run fingerprint it was computed
        under): its presence means the clip is done."""
        folder = self.clips_dir / clip_folder_name(clip)
        folder.mkdir(exist_ok=True)
        for name, table in (("frames", frames), ("curves", curves)):
            path = folder / f"{name}.parquet"
            if table is not None:
                write_table(table, path, csv=False)
            else:
                path.unlink(missing_ok=True)
        write_clip_row(folder, row, self.key)

    def lease_path(self, clip: str) -> Path:
        return self.clips_dir / clip_folder_name(clip) / "lease.json"

    def claim(self, clip: str, timeout_s: float) -> Lease | None:
        """This worker's lease on ``clip``; None while another worker holds it."""
        path = self.lease_path(clip)
        path.parent.mkdir(exist_ok=True)
        return Lease.acquire(path, timeout_s)

    def row_time(self, clip: str) -> float:
        """When the clip's row was written (seconds since the epoch)."""
        return (self.clips_dir / clip_folder_name(clip) / CLIP_FILE).stat().st_mtime

    def _snapshot(self, clip_order: list[str]) -> list[tuple[int, int, int] | None]:
        """Identity of every clip row file: it changes whenever a worker writes a row."""
        out: list[tuple[int, int, int] | None] = []
        for clip in clip_order:
            try:
                st = (self.clips_dir / clip_folder_name(clip) / CLIP_FILE).stat()
            except OSError:
                out.append(None)
            else:
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return out

    def merge(self, lease_timeout_s: float = 120.0, interrupted: bool = False) -> "MergeSummary":
        """Rebuild the tables of the run in this folder (its clips from its record) and set the
        record's status, counts, timings and end time from the clip files alone, so merging twice,
        or after workers finished in any order, gives the same tables and record. Only rows computed
        under the record's fingerprint count; the others are listed as not this run's. ``interrupted``:
        this worker was just stopped by a signal, so a run not complete and not running elsewhere
        is recorded as interrupted."""
        while True:
            with self._locked():  # the record read here is the one written back
                record = read_run_record(self.dir)
                order = record.dataset.clips
                before = self._snapshot(order)
                tables = build_tables(self.dir, order, record.key)
                write_tables(self.dir, tables)
                frames, clips = tables.frames, tables.clips
                summary = MergeSummary.of(frames, clips, order, self, lease_timeout_s, tables.foreign)
                if interrupted and summary.status not in (RunStatus.COMPLETE, RunStatus.RUNNING):
                    summary.status = RunStatus.INTERRUPTED
                ok = clips[clips["status"] == "ok"] if len(clips) else clips
                record.status = summary.status
                record.clips_ok, record.clips_failed = len(summary.ok), len(summary.failed)
                record.finished = None
                if summary.status in (RunStatus.COMPLETE, RunStatus.COMPLETE_WITH_FAILURES):
                    last = max(self.row_time(c) for c in order) if order else 0.0
                    record.finished = dt.datetime.fromtimestamp(last, dt.timezone.utc).isoformat()
                record.timings = {
                    "method_seconds": float(ok["method_seconds"].sum()) if "method_seconds" in ok else 0.0,
                    "frames": int(ok["frames"].sum()) if "frames" in ok else 0,
                    "method_peak_rss_mib": float(ok["method_peak_rss_mib"].max()) if len(ok) else None,
                    "process_peak_rss_mib": float(ok["process_peak_rss_mib"].max()) if len(ok) else None,
                }
                self.write_record(record)
            if self._snapshot(order) == before:
                return summary

    def write_record(self, record: RunRecord) -> None:
        write_run_record(self.dir, record)


@dataclass
class MergeSummary:
    """What a merge found: the tables, the run's clips by state, and the status that follows."""

    frames: pd.DataFrame
    clips: pd.DataFrame
    status: RunStatus
    ok: list[str]
    failed: dict[str, str]  # clip -> reason
    missing: list[str]  # no row of this run yet
    running: dict[str, str]  # clip (missing or failed) -> the worker holding its lease
    foreign: dict[str, str]  # missing clip whose row another run computed -> why it does not belong

    @classmethod
    def of(cls, frames: pd.DataFrame, clips: pd.DataFrame, order: list[str], store: RunStore,
           lease_timeout_s: float, foreign: dict[str, str]) -> "MergeSummary":
        rows = {r["clip"]: r for r in clips.to_dict("records")} if len(clips) else {}
        ok = [c for c in order if rows.get(c, {}).get("status") == "ok"]
        failed = {c: str(rows[c].get("reason")) for c in order if c in rows and rows[c].get("status") != "ok"}
        missing = [c for c in order if c not in rows]
        running = {c: describe(read_holder(store.lease_path(c))) for c in [*failed, *missing]
                   if store.lease_path(c).exists() and not is_stale(store.lease_path(c), lease_timeout_s)}
        if not failed and not missing:
            status = RunStatus.COMPLETE
        elif running:
            status = RunStatus.RUNNING
        elif not missing:
            status = RunStatus.COMPLETE_WITH_FAILURES
        else:
            status = RunStatus.INCOMPLETE
        return cls(frames, clips, status, ok, failed, missing, running, foreign)

    def describe(self) -> str:
        """A few lines: counts and status, then every clip not finished and why."""
        n = len(self.ok) + len(self.failed) + len(self.missing)
        lines = [f"{len(self.ok)}/{n} clips ok, {len(self.failed)} failed, {len(self.missing)} missing; "
                 f"status {self.status.value}"]
        lines += [f"  failed: {c}: {reason}" for c, reason in self.failed.items()]
        lines += [(f"  not this run's: {c}: {self.foreign[c]}" if c in self.foreign else f"  missing: {c}")
                  + (f" (in progress by {self.running[c]})" if c in self.running else "") for c in self.missing]
        lines += [f"  retrying: {c} (by {self.running[c]})" for c in self.failed if c in self.running]
        return "\n".join(lines)
