"""InfVSR behind the common method contract: LR frames in, SR frames out, streamed chunk by chunk.

Weights (``weights``): ``pretrained`` needs the four official files in the weights folder's
``infvsr/`` (see ``weight_files.FILES``; a DiT ``config.json`` with ``model_config`` next to them, the
official layout, selects another DiT size) and fails at once naming each missing file; ``auto`` (the
default) uses them when present and otherwise the ``infvsr-tiny`` model (the same modules at small
sizes, trained here; shipped in ``tiny/``), with one notice line and the ``tiny`` label on every
result; ``tiny`` always uses it; ``random`` labels official-layout files holding random weights (tests).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infvsr_bench.contracts import Method
from infvsr_bench.devices import resolve_dtype
from infvsr_bench.errors import ConfigError
from infvsr_bench.weights import WeightsKind, group_dir, resolve_weights
from methods.configs import InfVSRConfig
from methods.infvsr.architecture import ARCHITECTURES, Architecture, Modules
from methods.infvsr.checkpoints import load_official, read_safetensors
from methods.infvsr.dit import WanDiTConfig
from methods.infvsr.pipeline import InfVSRPipeline
from methods.infvsr.scenes import Chunk, SceneChunker
from methods.infvsr.vae import TileConfig
from methods.infvsr.weight_files import FILES, TINY_FILE, files_choice

log = logging.getLogger("infvsr_bench")


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T,H,W,3) -> float32 [1,3,T,H,W] in [-1,1] (u8 / 255 * 2 - 1)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None].float()
    return x / 255.0 * 2.0 - 1.0


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[1,3,T,H,W] in [-1,1] -> uint8 (T,H,W,3): (x + 1) * 127.5, clamped, truncated as upstream."""
    x = ((frames[0].float() + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous().cpu().numpy()


class InfVSR(Method):
    """Streaming one-step diffusion VSR (Wan2.1 DiT + causal VAE + Swin-L/DAPE guidance)."""

    name = "infvsr"
    Config = InfVSRConfig
    causal = True

    def __init__(self, config: InfVSRConfig) -> None:
        super().__init__(config)
        folder = config.weights_dir or None
        tiling = TileConfig(threshold=config.vae_tile_threshold)
        rope = getattr(torch, config.rope_dtype)
        # Files are found (or reported missing) at once, before anything heavy is built.
        chosen = resolve_weights(files_choice(config.weights), FILES.values(), folder, fallback=[TINY_FILE])
        self.checksums = chosen.sha256
        if chosen.kind == WeightsKind.TINY:
            modules, self.architecture, self.card = self._tiny(chosen.path(TINY_FILE), folder, tiling, rope)
            self.weights = WeightsKind.TINY
        else:
            paths = {role: chosen.path(f) for role, f in FILES.items()}
            self.weights = WeightsKind.RANDOM if config.weights == WeightsKind.RANDOM else WeightsKind.PRETRAINED
            self.architecture = dataclasses.replace(ARCHITECTURES.get("infvsr"),
                                                    dit=self._dit_config(paths["dit"].parent, rope))
            modules = load_official(self.architecture.build("meta", seed=None, tiling=tiling), paths)
            self.card = {}
        self.dtype = resolve_dtype(config.dtype, self.device)
        dit, vae, encoder = (m.to(self.device, self.dtype).eval().requires_grad_(False) for _, m in modules.items())
        tiny = self.weights == WeightsKind.TINY
        vae.set_conv_form(config.vae_conv_form if config.vae_conv_form != "auto" else "taps_summed" if tiny else "conv3d")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self.device.type == "cuda" or tiny:
            # CUDA: 11% faster, 1 GiB lower peak at 720p (benchmarks/RESULTS.md); the tiny VAE on CPUs: 1.9x faster.
            vae.to_channels_last()
        self._params = sum(p.numel() for m in (dit, vae, encoder) for p in m.parameters())
        if config.compile:
            dit = torch.compile(dit)
        if config.compile_vae_norms:
            vae.compile_norms()
        self.pipeline = InfVSRPipeline(dit, vae, encoder, scale=self.scale, device=self.device, dtype=self.dtype,
                                       upscale_on_device=config.upscale_on_device)
        self.chunker = SceneChunker(config.scene_detection, config.scene_threshold, config.reference_threshold)

    def _tiny(self, path: Path, folder: str | None, tiling: TileConfig, rope: torch.dtype) -> tuple[Modules, Architecture, dict]:
        """The infvsr-tiny model at ``path``: sizes and model card from the file's metadata, weights loaded strictly."""
        tensors, metadata = read_safetensors(path)
        try:
            arch = Architecture.from_json(metadata["architecture"])
            card = json.loads(metadata.get("card", "{}"))
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not an infvsr-tiny file ({exc})") from None
        arch = dataclasses.replace(arch, dit=dataclasses.replace(arch.dit, rope_dtype=rope))
        modules = arch.build("meta", seed=None, tiling=tiling)
        modules.load_state_dict(tensors)
        if self.config.weights == "auto":
            log.warning("notice: the official InfVSR files are not in %s; running %s instead (%s), labelled %s-tiny "
                        "in every record", group_dir("infvsr", folder), arch.name, card.get("summary", "no model card"),
                        self.name)
        return modules, arch, card

    @staticmethod
    def _dit_config(folder: Path, rope: torch.dtype) -> WanDiTConfig:
        cfg_file = folder / "config.json"
        if not cfg_file.is_file():
            return WanDiTConfig(rope_dtype=rope)
        try:
            model_config = json.loads(cfg_file.read_text())["model_config"]
            return WanDiTConfig.from_model_config(model_config, rope_dtype=rope)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{cfg_file}: not an InfVSR model config ({exc})") from None

    def num_parameters(self) -> int | None:
        return self._params

    @property
    def weights_sha256(self) -> dict[str, str]:
        return dict(self.checksums)

    def info(self) -> dict[str, Any]:
        tiny = {"model_card": {k: v for k, v in self.card.items() if k != "config"}} if self.card else {}
        return {**super().info(), "architecture": self.architecture.name, **tiny, "sigma": self.pipeline.sigma,
                "effective_sigma": self.pipeline.effective_sigma, "timestep": self.pipeline.timestep}

    def reset(self, clip) -> None:
        super().reset(clip)
        self.pipeline.reset()
        self.chunker.reset()
        self._chunk_starts: list[int] = []

    def chunk_layout(self) -> list[int] | None:
        return list(self._chunk_starts)

    def _run(self, chunks: list[Chunk], width: int, height: int) -> np.ndarray:
        self._chunk_starts.extend(c.start for c in chunks)
        out = [to_uint8(self.pipeline.process(to_model_range(c.frames), c.new_scene, c.update_reference))
               for c in chunks]
        if not out:
            return np.zeros((0, height * self.scale, width * self.scale, 3), np.uint8)
        return np.concatenate(out)

    def process(self, lr: np.ndarray) -> np.ndarray:
        return self._run(self.chunker.push(lr), lr.shape[2], lr.shape[1])

    def flush(self) -> np.ndarray | None:
        return self._run(self.chunker.flush(), self.clip.lr_width, self.clip.lr_height)
