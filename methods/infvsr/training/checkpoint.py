"""Training checkpoints: one safetensors file per step, tensors plus a JSON state in its metadata.

A checkpoint holds every model, every optimiser's moments and hyper-parameters, the RNG states and
the data position, so a resumed run takes exactly the next step a straight run would. Files are
written to a temporary name, flushed and renamed (no pickle anywhere); only the newest ``keep``
checkpoints this program wrote are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from infvsr_bench.io.atomic import atomic_write
from methods.infvsr.checkpoints import read_safetensors

__all__ = ["latest_checkpoint", "load_checkpoint", "load_optimizer", "optimizer_tensors", "save_checkpoint",
           "write_safetensors"]

_NAME = re.compile(r"step_(\d{7})\.safetensors")


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write atomically (``io.atomic``: a temporary file, fsync, rename; a killed writer's temporary file is
    removed, a full disk is one line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=dict(metadata)))


def save_checkpoint(folder: Path, step: int, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any],
                    keep: int = 2) -> Path:
    """``folder/step_<step>.safetensors`` with ``state`` as JSON; older checkpoints beyond ``keep`` removed."""
    path = folder / f"step_{step:07d}.safetensors"
    write_safetensors(path, tensors, {"state": json.dumps(state)})
    for old in _checkpoints(folder)[:-max(1, keep)]:
        old.unlink()
    return path


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("step_*.safetensors") if _NAME.fullmatch(p.name)) if folder.is_dir() else []


def latest_checkpoint(folder: Path) -> Path | None:
    found = _checkpoints(folder)
    return found[-1] if found else None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, metadata = read_safetensors(path)
    return tensors, json.loads(metadata["state"])


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """An optimiser's per-parameter state as flat tensors ``<prefix>/<index>/<name>`` and its param groups."""
    state = optimizer.state_dict()
    tensors = {f"{prefix}/{i}/{k}": v for i, entry in state["state"].items() for k, v in entry.items()}
    return tensors, state["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], prefix: str,
                   groups: list[dict]) -> None:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "/"):
            index, name = key[len(prefix) + 1:].split("/", 1)
            per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
