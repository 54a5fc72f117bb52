"""InfVSR's four weight files: where they are published, how they load (strictly, never pickle).

``InfVSR.ckpt`` (DiT) and ``ram_swin_large_14m.pth`` load memory-mapped; ``Wan2.1_VAE.pth`` may nest
its weights under ``model_state``; the RAM checkpoint keeps its weights under ``model``. Key sets
and shapes are checked before loading, so a wrong file fails with one line naming the first keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infvsr_bench.weights import WeightsFileError, load_tensors, reading, resolve_weights
from methods.infvsr.architecture import Modules
from methods.infvsr.visual_encoder import merge_dape, select_ram_keys
from methods.infvsr.weight_files import FILES


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors and its string metadata."""
    from safetensors import safe_open

    with reading(path, "a loadable safetensors file"), safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118


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
        raise WeightsFileError(f"{name} does not fit the model: " + "; ".join(problems))


def load_strict(module_on_meta: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> nn.Module:
    """Check, then load ``state`` into a module built on the meta device (no second copy)."""
    expected = {k: v.shape for k, v in module_on_meta.state_dict().items()}
    check_keys(expected, state, name)
    module_on_meta.load_state_dict(state, strict=True, assign=True)
    return module_on_meta


def resolve_files(weights_dir: str | None) -> tuple[dict[str, Path], dict[str, str]]:
    """The four files by role, and their sha256 by name (cached next to them) for the run record.

    One instant error names each missing file, its folder (``<weights folder>/infvsr``) and its source.
    """
    chosen = resolve_weights("pretrained", FILES.values(), weights_dir)
    return {role: chosen.path(f) for role, f in FILES.items()}, chosen.sha256


def load_official(modules: Modules, paths: dict[str, Path]) -> Modules:
    """Strictly load the four released files (by role, as ``resolve_files`` gives them) into modules built
    on the meta device: the DiT, the VAE (``model_state`` when nested), RAM's Swin-L with DAPE merged."""
    load_strict(modules.dit, load_tensors(paths["dit"], mmap=True), paths["dit"].name)
    vae_state = load_tensors(paths["vae"])
    load_strict(modules.vae, vae_state.get("model_state", vae_state), paths["vae"].name)
    ram = load_tensors(paths["ram"], mmap=True)
    if "model" not in ram:
        raise WeightsFileError(f"{paths['ram']}: expected the RAM checkpoint's weights under 'model'")
    try:
        encoder_state = merge_dape(select_ram_keys(ram["model"]), load_tensors(paths["dape"]))
    except ValueError as exc:
        raise WeightsFileError(f"{paths['dape'].name}: {exc}") from None
    load_strict(modules.encoder, encoder_state, f"{paths['ram'].name} + {paths['dape'].name}")
    modules.encoder.init_buffers()
    return modules
