"""sha256 of files, read in blocks (weights, benchmark files, sources), its per-folder cache for large weights,
and the cheap stat digest that identifies user data folders."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from infvsr_bench.io.readers import is_hidden

CHECKSUMS = "checksums.json"


def sha256_file(path: Path) -> str:
    """The file's sha256, computed afresh."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def json_digest(data: Any) -> str:
    """sha256 of ``data`` as canonical JSON (sorted keys, ``str`` for what JSON lacks): the one identity hash of
    config-like data (a run's fingerprint, a training stage's digest, a benchmark recipe's)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _recorded(folder: Path) -> dict[str, str]:
    """The folder's checksums.json: ``name:size:mtime`` -> sha256 (empty when absent or unreadable)."""
    try:
        return json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError):
        return {}


def checksum(path: Path) -> str:
    """sha256 of a file, cached in its folder's checksums.json by (name, size, mtime): multi-GB weights hash once."""
    record = _recorded(path.parent)
    stat = path.stat()
    key = f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"
    if key not in record:
        record[key] = sha256_file(path)
        try:
            (path.parent / CHECKSUMS).write_text(json.dumps(record, indent=1, sort_keys=True))
        except OSError:
            pass  # a read-only weights folder still works; the sum is just recomputed next time
    return record[key]


def content_digest(paths: Iterable[Path], base: Path) -> str:
    """A cheap digest of the data under ``paths`` (files, or folders' files recursively, macOS metadata left out):
    each file's path relative to ``base``, size and mtime_ns. Renamed, added, removed, resized or rewritten
    files change it; content changed in place with the same size and mtime is not seen (hashing every frame
    of long clips on each run would cost minutes)."""
    h = hashlib.sha256()
    for path in paths:
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and not is_hidden(p))
        for file in files:
            stat = file.stat()
            h.update(f"{os.path.relpath(file, base)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()
