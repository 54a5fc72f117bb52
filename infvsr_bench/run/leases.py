"""Leases: a worker's claim on one unit of work (a clip), so workers sharing a run folder, on one
machine or many on a shared file system, do not do the same clip, without any lock server.

A lease is a small JSON file (host, pid, the pid's start time, start time, heartbeat, a random token),
created with ``O_EXCL`` so exactly one worker creates it. While held, a background thread refreshes
the heartbeat every quarter of the timeout. A lease is stale, and taken over by replacing the file,
when its heartbeat is older than the timeout, or at once when it names a process of this host that no
longer exists. Two workers taking over the same stale lease at once both write; each heartbeat first
checks that the file still names its writer, so the one that finds another's token stops (``lost``)
within one heartbeat, and the last writer keeps the lease: two workers never both hold it for long.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from infvsr_bench.errors import ConfigError, InfvsrError
from infvsr_bench.io.atomic import HOST, atomic_write, remove_dead_temps

__all__ = ["HOST", "Lease", "LeaseLost", "describe", "is_stale", "read_holder", "remove_dead_temps"]


class LeaseLost(InfvsrError):
    """Another worker took this worker's lease over (it was thought stale): leave the unit to it."""


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def read_holder(path: Path) -> dict[str, Any] | None:
    """The lease's content; None when absent or not (yet) readable JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    return f"{holder.get('host')}:{holder.get('pid')}" if holder else "an unknown worker"


def is_stale(path: Path, timeout_s: float, now: float | None = None) -> bool:
    """Whether the lease at ``path`` may be taken over (see the module docstring), by the timeout its
    holder declared (else ``timeout_s``); a file not readable yet (being written) counts by its mtime."""
    now = time.time() if now is None else now
    holder = read_holder(path)
    if holder is None:
        try:
            return now - Path(path).stat().st_mtime > timeout_s
        except FileNotFoundError:
            return True
    if holder.get("host") == HOST:
        pid = int(holder.get("pid", -1))
        if pid == os.getpid():
            return True  # this process holds no lease it does not know about: a leftover
        started = _process_start(pid)
        if started is None or abs(started - float(holder.get("pid_started") or started)) > 1.0:
            return True  # that process is gone (or its pid now names another process)
    return now - float(holder.get("heartbeat", 0.0)) > float(holder.get("timeout_s") or timeout_s)


class Lease:
    """A held lease on one unit; ``release()`` (or leaving ``with``) gives it back."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        now = time.time()
        self.content = {"host": HOST, "pid": os.getpid(), "pid_started": _process_start(os.getpid()),
                        "started": now, "heartbeat": now, "timeout_s": timeout_s, "token": secrets.token_hex(8)}
        self.lost_to: dict[str, Any] | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(cls, path: Path, timeout_s: float) -> "Lease | None":
        """The lease on ``path`` if it is free or stale; None while another worker holds it."""
        lease = cls(path, timeout_s)
        try:
            fd = os.open(lease.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if not is_stale(lease.path, timeout_s):
                return None
            lease._write()  # take over: replace the stale file, then make sure ours is the one there
            if not lease._ours():
                return None
        else:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(lease.content))
                f.flush()
                os.fsync(f.fileno())
        lease._thread = threading.Thread(target=lease._beat, name=f"lease {lease.path.parent.name}", daemon=True)
        lease._thread.start()
        return lease

    def _ours(self) -> bool:
        holder = read_holder(self.path)
        return holder is not None and holder.get("token") == self.content["token"]

    def _write(self) -> None:
        atomic_write(self.path, lambda p: p.write_text(json.dumps(self.content)))

    def _beat(self) -> None:
        while not self._stop.wait(self.timeout_s / 4):
            if not self._ours():
                self.lost_to = read_holder(self.path)
                self._lost.set()
                return
            self.content["heartbeat"] = time.time()
            try:
                self._write()
            except ConfigError:
                continue  # a file-system hiccup: try again at the next beat

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LeaseLost when another worker has taken this lease over."""
        if self.lost:
            raise LeaseLost(f"{self.path.parent.name}: taken over by {describe(self.lost_to)}")

    def release(self) -> None:
        """Stop the heartbeat and remove the file if it is still this worker's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._ours():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
