"""sha256 of files, read in blocks (weights, benchmark files, sources), and its per-folder cache for large weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHECKSUMS = "checksums.json"


def sha256_file(path: Path) -> str:
    """The file's sha256, computed afresh."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


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
