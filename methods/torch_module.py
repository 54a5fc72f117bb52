"""Any image or video SR ``torch.nn.Module`` the user points at, behind the streaming contract.

``target`` names the class or factory as ``"package.module:Name"``: importing it runs that
module's code, which is the user's explicit choice in their own config (the folders in
``sys_path`` are searched first). The checkpoint is loaded without unpickling code: safetensors,
or ``torch.load(weights_only=True)``; ``checkpoint_key`` picks a nested state dict (``params_ema``,
``state_dict``, ``a/b`` for deeper ones) and ``strip_prefix`` drops a key prefix (``module.``).

Image models see batches of frames [B,C,H,W]; video models see each LR chunk as one clip
([B,T,C,H,W] or [B,C,T,H,W]), optionally preceded by ``context_frames`` earlier LR frames whose
outputs are dropped. Frames enter as RGB in ``input_range`` and leave clamped, x255 and rounded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from infvsr_bench.checksums import sha256_file
from infvsr_bench.contracts import ClipInfo, Method
from infvsr_bench.devices import resolve_dtype
from infvsr_bench.errors import ClipError, ConfigError
from infvsr_bench.registry import did_you_mean
from infvsr_bench.weights import WeightsKind, load_tensors
from methods.configs import TORCH_MODULE_RANGES, TorchModuleConfig


def import_target(target: str, sys_path: list) -> Any:
    """``"package.module:Name"`` (``Name`` may be dotted) -> the object; ConfigError otherwise."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"method 'torch_module': target must look like 'package.module:ClassName', got {target!r}")
    for folder in reversed([str(Path(p).expanduser().resolve()) for p in sys_path]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"method 'torch_module': cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 -- the module's own code failed while importing
        raise ConfigError(
            f"method 'torch_module': importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            hint = did_you_mean(part, names)
            raise ConfigError(
                f"method 'torch_module': {getattr(obj, '__name__', module_name)!r} has no attribute {part!r}; "
                + (hint if len(hint) < 200 else hint[:200] + "...")
            )
        obj = getattr(obj, part)
    return obj


def load_state_dict(path: str, key: str = "", strip_prefix: str = "") -> dict[str, torch.Tensor]:
    """A flat name -> tensor mapping from safetensors or a weights-only torch checkpoint."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"method 'torch_module': checkpoint {file} not found")
    state: Any = load_tensors(file)  # never runs code in the file; one line naming it otherwise
    for part in [p for p in key.split("/") if p]:
        if not isinstance(state, Mapping) or part not in state:
            keys = sorted(map(str, state))[:8] if isinstance(state, Mapping) else type(state).__name__
            raise ConfigError(f"method 'torch_module': checkpoint {file} has no key {part!r} (top-level: {keys})")
        state = state[part]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = sorted(map(str, state))[:8] if isinstance(state, Mapping) else type(state).__name__
        raise ConfigError(
            f"method 'torch_module': checkpoint {file} is not a flat state dict at key {key or '(root)'!r} "
            f"(found {keys}); set method.checkpoint_key"
        )
    if strip_prefix:
        state = {k.removeprefix(strip_prefix): v for k, v in state.items()}
    return dict(state)


class TorchModule(Method):
    """Wraps a user's SR nn.Module (image: per frame, batched; video: chunk by chunk)."""

    name = "torch_module"
    Config = TorchModuleConfig
    causal = True

    def __init__(self, config: TorchModuleConfig) -> None:
        super().__init__(config)
        if not config.target:
            raise ConfigError("method 'torch_module' needs method.target='package.module:ClassOrFactory'")
        self.dtype = resolve_dtype(config.dtype, self.device)
        factory = import_target(config.target, config.sys_path or [])
        if not callable(factory):
            raise ConfigError(f"method 'torch_module': {config.target} is not a class or factory")
        try:
            model = factory(**dict(config.kwargs or {}))
        except Exception as exc:  # noqa: BLE001 -- the user's constructor
            raise ConfigError(f"method 'torch_module': {config.target}(**kwargs) raised {type(exc).__name__}: {exc}") from None
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"method 'torch_module': {config.target} returned {type(model).__name__}, not an nn.Module")
        self.checkpoint_sha256: str | None = None
        self.missing_keys: list[str] = []
        self.unexpected_keys: list[str] = []
        if config.checkpoint:
            state = load_state_dict(config.checkpoint, config.checkpoint_key, config.strip_prefix)
            try:
                result = model.load_state_dict(state, strict=config.strict)
            except RuntimeError as exc:  # missing / unexpected keys, shape mismatches
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
                raise ConfigError(
                    f"method 'torch_module': checkpoint {config.checkpoint} does not fit {config.target}: "
                    + " ".join(lines[1:3] or lines)[:600]
                ) from None
            self.missing_keys, self.unexpected_keys = list(result.missing_keys), list(result.unexpected_keys)
            self.checkpoint_sha256 = sha256_file(Path(config.checkpoint).expanduser())
        auto = WeightsKind.PRETRAINED if config.checkpoint else WeightsKind.RANDOM
        self.weights = auto if config.weights == "auto" else WeightsKind(config.weights)
        self.model = model.to(self.device, self.dtype).eval().requires_grad_(False)
        self._params = sum(p.numel() for p in self.model.parameters())
        self._context: np.ndarray | None = None

    def num_parameters(self) -> int | None:
        return self._params

    @property
    def feed_chunks(self) -> bool:  # type: ignore[override]
        """A video model sees each LR chunk as one clip: its chunks are the runner's feed chunks."""
        return self.config.kind == "video"

    def chunk_layout(self) -> list[int]:
        """An image model works frame by frame: no chunks (video models: see ``feed_chunks``)."""
        return []

    @property
    def weights_sha256(self) -> dict[str, str]:
        return {Path(self.config.checkpoint).name: self.checkpoint_sha256} if self.checkpoint_sha256 else {}

    def info(self) -> dict[str, Any]:
        info = super().info()
        info.update(
            {
                "target": self.config.target,
                "checkpoint": self.config.checkpoint or None,
                "checkpoint_sha256": self.checkpoint_sha256,
                "missing_keys": len(self.missing_keys),
                "unexpected_keys": len(self.unexpected_keys),
                "kind": self.config.kind,
            }
        )
        return info

    def reset(self, clip: ClipInfo) -> None:
        super().reset(clip)
        self._context = None

    # -- tensors --------------------------------------------------------------------------------

    def _to_input(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (T,H,W,3) -> (T,3,H',W') in input_range, padded to pad_multiple (reflect)."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        lo, hi = TORCH_MODULE_RANGES[self.config.input_range]
        x = x * (hi - lo) + lo
        m = self.config.pad_multiple
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        return x.to(self.dtype)

    def _to_uint8(self, y: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
        lo, hi = TORCH_MODULE_RANGES[self.config.output_range]
        y = ((y[..., : hw[0] * self.scale, : hw[1] * self.scale].float() - lo) / (hi - lo)).clamp_(0.0, 1.0)
        return y.mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        if isinstance(y, (tuple, list)):
            y = y[0]
        if not isinstance(y, torch.Tensor):
            raise ClipError(f"{self.config.target} returned {type(y).__name__}, expected a tensor")
        return y

    def _check(self, y: torch.Tensor, want: tuple[int, ...]) -> None:
        if tuple(y.shape) != want:
            raise ClipError(
                f"{self.config.target} output has shape {tuple(y.shape)}, expected {want} "
                f"(x{self.scale} of the {self.config.kind} input)"
            )

    @torch.inference_mode()
    def process(self, lr: np.ndarray) -> np.ndarray:
        hw = lr.shape[1:3]
        if self.config.kind == "image":
            out = []
            for i in range(0, len(lr), self.config.batch_size):
                x = self._to_input(lr[i: i + self.config.batch_size])
                y = self._forward(x)
                self._check(y, (x.shape[0], 3, x.shape[2] * self.scale, x.shape[3] * self.scale))
                out.append(self._to_uint8(y, hw))
            return np.concatenate(out)
        ctx = self._context if self._context is not None and self.config.context_frames else lr[:0]
        frames = np.concatenate([ctx, lr])
        x = self._to_input(frames)  # (T,3,H,W)
        t, _, h, w = x.shape
        x = x.permute(1, 0, 2, 3)[None] if self.config.layout == "BCTHW" else x[None]
        y = self._forward(x)
        want = (1, 3, t, h * self.scale, w * self.scale) if self.config.layout == "BCTHW" else (
            1, t, 3, h * self.scale, w * self.scale)
        self._check(y, want)
        y = y[0].permute(1, 0, 2, 3) if self.config.layout == "BCTHW" else y[0]
        if self.config.context_frames:
            self._context = frames[-self.config.context_frames:].copy()
        return self._to_uint8(y[len(ctx):], hw)
