"""Shards: which clips of a run a worker does, and which GPU a launcher's worker gets.

Clips are split by frame count, not clip count: greedy longest-first bin packing (each clip, longest
first, ties in dataset order, goes to the shard with the fewest frames so far, ties to the lowest
index). Every worker computes the same split from the same clip list and frame counts, so any number
of workers, on one machine or many, agree on it without talking to each other.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Mapping, Sequence, TypeVar

from infvsr_bench.config import ShardConfig
from infvsr_bench.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger("infvsr_bench")


def check(shard: ShardConfig) -> None:
    """One line for a shard that cannot exist (count < 1, index outside 0..count-1, timeout <= 0)."""
    if shard.count < 1 or not 0 <= shard.index < shard.count:
        raise ConfigError(f"shard.index={shard.index} shard.count={shard.count}: need count >= 1 and "
                          "0 <= index < count")
    if shard.lease_timeout_s <= 0:
        raise ConfigError(f"shard.lease_timeout_s={shard.lease_timeout_s}: must be > 0 seconds")


def assign(frames: Sequence[int], count: int) -> list[int]:
    """The shard of each clip (greedy longest-first bin packing on ``frames``; see the module docstring)."""
    load = [0] * count
    owner = [0] * len(frames)
    for i in sorted(range(len(frames)), key=lambda i: (-frames[i], i)):
        target = min(range(count), key=lambda k: (load[k], k))
        owner[i] = target
        load[target] += frames[i]
    return owner


def select(items: Sequence[T], frames: Sequence[int], shard: ShardConfig) -> list[T]:
    """The items (in their order) that shard ``shard.index`` of ``shard.count`` does."""
    check(shard)
    if len(frames) != len(items):
        raise ValueError(f"{len(items)} items but {len(frames)} frame counts")
    if shard.count == 1:
        return list(items)
    return [item for item, owner in zip(items, assign(frames, shard.count)) if owner == shard.index]


def visible_gpus(environ: Mapping[str, str]) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries (from it when set, else
    ``nvidia-smi``); asks nothing of CUDA, so the variable can still be set afterwards."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def gpu_for(index: int, environ: Mapping[str, str]) -> str | None:
    """Shard ``index``'s GPU: visible GPU number ``index`` modulo their count; None for fewer than two."""
    gpus = visible_gpus(environ)
    return gpus[index % len(gpus)] if len(gpus) > 1 else None


def pin_gpu(index: int) -> str | None:
    """Give this worker process shard ``index``'s GPU through ``CUDA_VISIBLE_DEVICES`` (before CUDA
    starts); returns the GPU, or None when there is nothing to choose or CUDA already started here."""
    gpu = gpu_for(index, os.environ)
    if gpu is None:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        log.warning("shard %d: CUDA already started in this worker (a reused launcher process); "
                    "it stays on the GPU it has", index)
        return None
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu
