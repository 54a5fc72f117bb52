"""InfVSR behind the common method contract: LR frames in, SR frames out, streamed chunk by chunk.

The weights folder must hold the four official files in its ``infvsr/`` folder (see
``checkpoints.FILES``); a DiT ``config.json`` with ``model_config`` next to them (the official
layout) selects another DiT size.
Without the files the constructor fails at once, naming each missing file and its source.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infvsr_bench.devices import DTYPES, resolve_dtype
from infvsr_bench.errors import ConfigError
from infvsr_bench.weights import WeightsKind
from methods.base import Method
from methods.infvsr.checkpoints import load_strict, read_state, resolve_files
from methods.infvsr.dit import WanDiT, WanDiTConfig
from methods.infvsr.pipeline import InfVSRPipeline
from methods.infvsr.scenes import Chunk, SceneChunker
from methods.infvsr.vae import TileConfig, WanVAE
from methods.infvsr.visual_encoder import VisualEncoder, merge_dape, select_ram_keys

# Labels a user may give the loaded files (every result carries it).
WEIGHTS_CHOICES = (WeightsKind.PRETRAINED, WeightsKind.RANDOM, WeightsKind.TINY)


@dataclasses.dataclass
class InfVSRConfig:
    weights_dir: str = ""  # the weights folder (default $INFVSR_WEIGHTS, else ~/.cache/infvsr_bench/weights); files in infvsr/
    weights: str = "pretrained"  # "pretrained" | "random" | "tiny": labels every result
    device: str = "auto"
    dtype: str = "auto"  # bfloat16 on CUDA, float32 on CPU
    scale: int = 4
    chunk_size: int = 12  # LR frames per process() call; InfVSR's own 9/12 chunking is internal
    scene_detection: bool = True
    scene_threshold: float = 27.0
    reference_threshold: float = 27.0
    rope_dtype: str = "float64"
    vae_tile_threshold: int = 1024
    upscale_on_device: bool = False
    compile: bool = False  # torch.compile the DiT
    compile_vae_norms: bool = False  # fuse each VAE norm+SiLU pair into one compiled kernel

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS_CHOICES:
            raise ValueError(f"weights must be one of {[str(w) for w in WEIGHTS_CHOICES]}, got {self.weights!r}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be auto or one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.rope_dtype not in ("float64", "float32"):
            raise ValueError(f"rope_dtype must be float64 or float32, got {self.rope_dtype!r}")


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
        self.weights = WeightsKind(config.weights)
        paths, self.checksums = resolve_files(config.weights_dir or None)  # fails at once, before anything heavy
        self.dtype = resolve_dtype(config.dtype, self.device)
        dit_config = self._dit_config(paths["dit"].parent, config)
        with torch.device("meta"):
            dit = WanDiT(dit_config)
            vae = WanVAE(tiling=TileConfig(threshold=config.vae_tile_threshold))
            encoder = VisualEncoder()
        load_strict(dit, read_state(paths["dit"], mmap=True), paths["dit"].name)
        vae_state = read_state(paths["vae"])
        load_strict(vae, vae_state.get("model_state", vae_state), paths["vae"].name)
        ram = read_state(paths["ram"], mmap=True)
        if "model" not in ram:
            raise ConfigError(f"{paths['ram']}: expected the RAM checkpoint's weights under 'model'")
        try:
            encoder_state = merge_dape(select_ram_keys(ram["model"]), read_state(paths["dape"]))
        except ValueError as exc:
            raise ConfigError(f"{paths['dape'].name}: {exc}") from None
        load_strict(encoder, encoder_state, f"{paths['ram'].name} + {paths['dape'].name}")
        encoder.init_buffers()
        modules = [m.to(self.device, self.dtype).eval().requires_grad_(False) for m in (dit, vae, encoder)]
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            vae.to_channels_last()  # measured 11% faster and 1 GiB lower peak at 720p (benchmarks/RESULTS.md)
        if config.compile:
            modules[0] = torch.compile(modules[0])
        if config.compile_vae_norms:
            vae.compile_norms()
        self._params = sum(p.numel() for m in (dit, vae, encoder) for p in m.parameters())
        self.pipeline = InfVSRPipeline(*modules, scale=self.scale, device=self.device, dtype=self.dtype,
                                       upscale_on_device=config.upscale_on_device)
        self.chunker = SceneChunker(config.scene_detection, config.scene_threshold, config.reference_threshold)

    @staticmethod
    def _dit_config(folder: Path, config: InfVSRConfig) -> WanDiTConfig:
        rope = {"rope_dtype": getattr(torch, config.rope_dtype)}
        cfg_file = folder / "config.json"
        if not cfg_file.is_file():
            return WanDiTConfig(**rope)
        try:
            model_config = json.loads(cfg_file.read_text())["model_config"]
            return WanDiTConfig.from_model_config(model_config, **rope)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{cfg_file}: not an InfVSR model config ({exc})") from None

    def num_parameters(self) -> int | None:
        return self._params

    @property
    def weights_sha256(self) -> dict[str, str]:
        return dict(self.checksums)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "sigma": self.pipeline.sigma,
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
