"""The device and dtype every method and metric runs in, from config names ('auto' picks CUDA when present).

torch is imported only when a name is resolved, so modules that resolve weights first stay fast to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infvsr_bench.errors import ConfigError

if TYPE_CHECKING:
    import torch

# Config names of the floating-point dtypes a model may run in (attribute names of torch).
DTYPES = ("float32", "bfloat16", "float16")


def resolve_device(name: Any = "auto") -> torch.device:
    """'auto' = the first CUDA device when there is one, else the CPU; an invalid or unavailable device is one-line ConfigError."""
    import torch

    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {str(name)!r}: {str(exc).splitlines()[0]}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(name)!r} requested but CUDA is not available here (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(name)!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


def check_dtype(name: str, owner: str = "") -> str:
    """A dtype config name, auto or one of DTYPES (checked when a config is read, before torch loads); else a
    one-line ConfigError, prefixed with ``owner`` when given."""
    if name != "auto" and name not in DTYPES:
        raise ConfigError(f"{owner + ': ' if owner else ''}invalid dtype {name!r}: use auto or one of {list(DTYPES)}")
    return name


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' = bfloat16 on CUDA, float32 elsewhere; else one of DTYPES."""
    import torch

    if check_dtype(name) == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)
