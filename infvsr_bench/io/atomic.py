"""Atomic files: the one way this project writes a file that a reader or a ``kill -9`` may catch half done.

Work in progress goes to a sibling temp name ``.<name>.<tag>-<host>-<pid>-<8 hex>`` (unique across workers
sharing a folder), is made durable and renamed into place, so a reader sees the old file or the new one,
never a torn one. A killed writer's temp is removed by the next writer of the same target
(``remove_dead_temps``); a failure (a full disk) is one line naming the target.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any, Callable

import psutil

from infvsr_bench.errors import ConfigError

HOST = socket.gethostname()


def remove_dead_temps(target: Path, tag: str) -> None:
    """Remove work in progress toward ``target`` that a killed process of this host left: siblings named
    ``.<target name>.<tag>-<this host>-<pid>[-<8 hex>]`` (exactly the names our writers give) whose pid no
    longer runs, or now names a process started after the leftover was last written (a reused pid). Ours by
    name, host and pid: a live process's, another host's, any other name and anything behind a link are
    never touched."""
    target = Path(target)
    prefix = f".{target.name}.{tag}-{HOST}-"
    ours = re.compile(re.escape(prefix) + r"(\d+)(?:-[0-9a-f]{8})?")
    for path in target.parent.glob(glob.escape(prefix) + "*"):
        m = ours.fullmatch(path.name)
        if m is None or path.is_symlink():
            continue
        try:
            alive = psutil.Process(int(m.group(1))).create_time() <= path.stat().st_mtime + 1.0  # boot time: whole s
        except (psutil.Error, OSError):
            alive = False
        if not alive:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def temp_path(target: Path, tag: str = "tmp") -> Path:
    """A fresh temp name for work toward ``target`` (a killed writer's leftovers of ``tag`` removed first)."""
    target = Path(target)
    remove_dead_temps(target, tag)
    return target.with_name(f".{target.name}.{tag}-{HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def publish(tmp: Path, target: Path, durable: bool = True) -> None:
    """Move finished work ``tmp`` (a file, made durable first unless not ``durable``, or a folder) into
    place at ``target``."""
    if tmp.is_dir():
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # a folder cannot be renamed over a non-empty one
    elif durable:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, target)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` the file at the temp name it is given, then make it durable and rename it to ``path``;
    the temp never outlives a failure, and an OSError (a full disk) is a one-line ConfigError naming ``path``."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        publish(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: Any, sort_keys: bool = True) -> None:
    """``path`` holds ``data`` as indented JSON, written atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=1, sort_keys=sort_keys, default=str)))


def write_bytes(path: Path, data: bytes) -> None:
    """``path`` holds ``data``, written atomically (report files, a training log cut back on resume)."""
    atomic_write(path, lambda p: p.write_bytes(data))
