"""InfVSR's four weight files: where they are published, how they load (strictly, never pickle).

``InfVSR.ckpt`` (DiT) and ``ram_swin_large_14m.pth`` load memory-mapped; ``Wan2.1_VAE.pth`` may nest
its weights under ``model_state``; the RAM checkpoint keeps its weights under ``model``. Key sets
and shapes are checked before loading, so a wrong file fails with one line naming the first keys.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infvsr_bench.errors import InfvsrError
from infvsr_bench.weights import GROUPS, WeightFile, checksum, locate

FILES: dict[str, WeightFile] = dict(zip(("dit", "vae", "ram", "dape"), GROUPS["infvsr"]))


class CheckpointError(InfvsrError):
    """A weight file that cannot be read or does not fit the model."""


def read_state(path: Path, mmap: bool = False) -> dict[str, Any]:
    """A checkpoint's top-level dict, via safetensors or ``torch.load(weights_only=True)``."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a loadable checkpoint ({str(exc).splitlines()[0][:200]})") from None


def check_keys(expected: Mapping[str, torch.Size], state: Mapping[str, Any], name: str) -> None:
    """Raise one line naming the first missing, unexpected or wrongly shaped keys."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(state[k].shape)} (expected {list(expected[k])})"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), first {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), first {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} wrong shape(s), first {wrong[:2]}")
    if problems:
        raise CheckpointError(f"{name} does not fit the model: " + "; ".join(problems))


def load_strict(module_on_meta: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> nn.Module:
    """Check, then load ``state`` into a module built on the meta device (no second copy)."""
    expected = {k: v.shape for k, v in module_on_meta.state_dict().items()}
    check_keys(expected, state, name)
    module_on_meta.load_state_dict(state, strict=True, assign=True)
    return module_on_meta


def locate_files(folder: Path) -> dict[str, Path]:
    """The four files in ``folder`` by role; one instant error naming each missing one and its source."""
    paths = locate(FILES.values(), folder)
    return {role: paths[f.filename] for role, f in FILES.items()}


def file_checksums(paths: Mapping[str, Path]) -> dict[str, str]:
    """sha256 per file (cached next to the weights), for the run record."""
    return {paths[role].name: checksum(paths[role]) for role in paths}
