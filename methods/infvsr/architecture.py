"""InfVSR model sizes as data: one architecture = the DiT, VAE and visual-encoder configs, by name.

``infvsr`` is the released model (Wan2.1 1.3B DiT, Wan2.1 VAE, RAM Swin-L at 384 px). ``infvsr-tiny``
is the same three modules (same classes, same code path) at small widths and depths, trained here
from scratch. An architecture round-trips through JSON, so a weights file carries the sizes (and the
VAE's measured latent statistics) it was trained with.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from infvsr_bench.registry import Registry
from methods.infvsr.dit import WanDiT, WanDiTConfig
from methods.infvsr.vae import WAN_LATENT_MEAN, WAN_LATENT_STD, TileConfig, WanVAE
from methods.infvsr.visual_encoder import SwinConfig, VisualEncoder

__all__ = ["ARCHITECTURES", "Architecture", "Modules", "VAEConfig", "count_parameters"]


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """``WanVAE`` sizes and latent normalisation; the defaults are the released Wan2.1 VAE."""

    base_dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temporal_downsample: tuple[bool, ...] = (False, True, True)
    latent_mean: tuple[float, ...] = WAN_LATENT_MEAN
    latent_std: tuple[float, ...] = WAN_LATENT_STD

    def build(self, tiling: TileConfig = TileConfig()) -> WanVAE:
        return WanVAE(**dataclasses.asdict(self), tiling=tiling)


@dataclasses.dataclass
class Modules:
    """The three networks of one InfVSR model; a flat state dict prefixes them ``dit.``/``vae.``/``encoder.``."""

    dit: WanDiT
    vae: WanVAE
    encoder: VisualEncoder

    def items(self) -> list[tuple[str, nn.Module]]:
        return [("dit", self.dit), ("vae", self.vae), ("encoder", self.encoder)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{k}": v for name, module in self.items() for k, v in module.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Strict load of a flat state dict (``assign`` so modules built on the meta device take the tensors)."""
        for name, module in self.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)},
                                   strict=True, assign=True)
        unknown = [k for k in state if k.split(".", 1)[0] not in ("dit", "vae", "encoder")]
        if unknown:
            raise KeyError(f"unexpected keys {unknown[:3]}")
        self.encoder.init_buffers()


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Sizes of the three modules; ``build`` makes them (seeded, or on the meta device for shapes only)."""

    name: str
    dit: WanDiTConfig
    vae: VAEConfig
    encoder: SwinConfig

    def build(self, device: torch.device | str = "cpu", seed: int | None = 0,
              tiling: TileConfig = TileConfig()) -> Modules:
        """The modules with PyTorch's default initialisation under ``seed`` (none on the meta device)."""
        return Modules(self.new_dit(device, seed), self.new_vae(device, seed, tiling), self.new_encoder(device, seed))

    def new_dit(self, device: torch.device | str = "cpu", seed: int | None = 0) -> WanDiT:
        return _seeded(lambda: WanDiT(self.dit), device, seed)

    def new_vae(self, device: torch.device | str = "cpu", seed: int | None = 0,
                tiling: TileConfig = TileConfig()) -> WanVAE:
        return _seeded(lambda: self.vae.build(tiling), device, seed)

    def new_encoder(self, device: torch.device | str = "cpu", seed: int | None = 0) -> VisualEncoder:
        encoder = _seeded(lambda: VisualEncoder(self.encoder), device, seed)
        if torch.device(device).type != "meta":
            encoder.init_buffers()
        return encoder

    def with_latent_stats(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Architecture:
        """The same architecture with the VAE latent normalisation measured on its training data."""
        vae = dataclasses.replace(self.vae, latent_mean=tuple(mean), latent_std=tuple(std))
        return dataclasses.replace(self, vae=vae)

    def to_json(self) -> str:
        dit = dataclasses.asdict(self.dit)
        dit["rope_dtype"] = str(self.dit.rope_dtype).removeprefix("torch.")
        return json.dumps({"name": self.name, "dit": dit, "vae": dataclasses.asdict(self.vae),
                           "encoder": dataclasses.asdict(self.encoder)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        data = json.loads(text)
        dit = dict(data["dit"])
        dit["rope_dtype"] = getattr(torch, dit["rope_dtype"])
        return cls(data["name"], WanDiTConfig(**_tuples(dit)), VAEConfig(**_tuples(data["vae"])),
                   SwinConfig(**_tuples(data["encoder"])))


def _seeded(make: Callable[[], nn.Module], device: torch.device | str, seed: int | None) -> nn.Module:
    """Built on the CPU with the global RNG seeded (then restored) and moved to ``device``, so a seed names
    the same initial weights on every device; without a seed, or on the meta device, built in place."""
    if seed is None or torch.device(device).type == "meta":
        with torch.device(device):
            return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make().to(device)


def _tuples(options: Mapping[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the frozen configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# The tiny VAE's latent statistics are measured after it is trained (Architecture.with_latent_stats).
_UNIT = (0.0,) * 16, (1.0,) * 16
ARCHITECTURES: Registry[Architecture] = Registry("architecture")
ARCHITECTURES.register("infvsr", Architecture("infvsr", WanDiTConfig(), VAEConfig(), SwinConfig()))
ARCHITECTURES.register("infvsr-tiny", Architecture(
    "infvsr-tiny",
    # head_dim 64: RoPE 12 + 10 + 10 pairs; one chunk at 240x320 is 900 tokens.
    WanDiTConfig(dim=128, ffn_dim=384, num_heads=2, num_layers=4, freq_dim=64),
    # Channels 4 / 8 / 16 / 32 per level (full, 1/2, 1/4, 1/8 resolution), one residual block each:
    # same 8x spatial, 4x temporal compression and 16 latent channels as Wan2.1's VAE.
    VAEConfig(base_dim=4, dim_mult=(1, 2, 4, 8), num_res_blocks=1, latent_mean=_UNIT[0], latent_std=_UNIT[1]),
    # RAM's Swin at 64 px: 3 stages (grids 16, 8, 4), 1 + 16 context tokens of 512 as the DiT expects.
    SwinConfig(img_size=64, embed_dim=16, depths=(1, 1, 1), num_heads=(1, 2, 4), window_size=4),
))
