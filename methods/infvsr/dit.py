"""The Wan2.1 DiT as InfVSR runs it: one-step velocity prediction on a latent chunk.

Streaming extras over plain Wan2.1: the RoPE time axis starts at ``start_frame`` (latent frames
already processed in the scene), and every self-attention layer also attends to the previous
chunk's keys/values. The cache is replaced (never grown) each chunk, so memory stays constant.
Parameter names and shapes match ``InfVSR.ckpt`` for a strict ``load_state_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from methods.infvsr.rope import apply_rope, rope_split, rope_tables

__all__ = ["KVCache", "WanDiT", "WanDiTConfig", "sinusoidal_embedding"]

# Per layer: (k after RMSNorm + RoPE, v), each [B, tokens, dim], for one chunk.
KVCache = list[tuple[torch.Tensor, torch.Tensor]]

CONTEXT_DIM = 512  # the official text_embedding is hard-wired to 512 inputs (config text_dim is ignored)


@dataclasses.dataclass(frozen=True)
class WanDiTConfig:
    """DiT hyper-parameters; the defaults are InfVSR's released (Wan2.1 1.3B-sized) model."""

    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    freq_dim: int = 256
    eps: float = 1e-6
    patch_size: tuple[int, int, int] = (1, 2, 2)
    in_dim: int = 16
    out_dim: int = 16
    # Precision of the RoPE rotation: float64 as in the official code (parity), float32 for speed.
    rope_dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        rope_split(self.dim // self.num_heads)

    @classmethod
    def from_model_config(cls, model_config: Mapping[str, Any], **overrides: Any) -> WanDiTConfig:
        """Build from the official ``config.json["model_config"]`` (``text_dim`` ignored like upstream)."""
        if model_config.get("has_image_input", False):
            raise ValueError("has_image_input=True (image-embedding branch) is not part of InfVSR")
        keys = ("dim", "ffn_dim", "num_heads", "num_layers", "freq_dim", "eps", "in_dim", "out_dim")
        kwargs: dict[str, Any] = {k: model_config[k] for k in keys if k in model_config}
        if "patch_size" in model_config:
            kwargs["patch_size"] = tuple(int(p) for p in model_config["patch_size"])
        return cls(**{**kwargs, **overrides})


def sinusoidal_embedding(timestep: torch.Tensor, freq_dim: int) -> torch.Tensor:
    """float64 [N, freq_dim] embedding of the timesteps, cosine half first, freqs 10000^(-k/(freq_dim/2))."""
    half = freq_dim // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=timestep.device).div(half))
    angles = torch.outer(timestep.reshape(-1).to(torch.float64), freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class RMSNorm(nn.Module):
    """RMS norm over the last dim, computed in float32, cast back, then scaled (the upstream order)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Unmasked multi-head SDPA on [B, N, dim] tensors (scale 1/sqrt(head_dim))."""
    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (num_heads, -1)).transpose(1, 2)

    return F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).flatten(2)


class _Projections(nn.Module):
    """The q/k/v/o linears and whole-dim q/k RMSNorms both attention kinds carry (checkpoint names)."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)


class SelfAttention(_Projections):
    """Self-attention with whole-dim q/k RMSNorm, 3-D RoPE and the previous chunk's (k, v) prepended."""

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns the output and this chunk's own (k, v) for the next chunk."""
        per_head = (self.num_heads, -1)
        q = apply_rope(self.norm_q(self.q(x)).unflatten(-1, per_head), *rope).flatten(2)
        k = apply_rope(self.norm_k(self.k(x)).unflatten(-1, per_head), *rope).flatten(2)
        v = self.v(x)
        keys, values = (k, v) if cache is None else (torch.cat([cache[0], k], 1), torch.cat([cache[1], v], 1))
        return self.o(_attention(q, keys, values, self.num_heads)), (k, v)


class CrossAttention(_Projections):
    """Attention from the video tokens to the context tokens (q/k RMSNorm, no RoPE)."""

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = self.norm_q(self.q(x)), self.norm_k(self.k(context)), self.v(context)
        return self.o(_attention(q, k, v, self.num_heads))


class DiTBlock(nn.Module):
    """adaLN block: gated self-attention, ungated cross-attention (affine norm3), gated GELU-tanh FFN."""

    def __init__(self, cfg: WanDiTConfig) -> None:
        super().__init__()
        dim = cfg.dim
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)
        self.self_attn = SelfAttention(dim, cfg.num_heads, cfg.eps)
        self.cross_attn = CrossAttention(dim, cfg.num_heads, cfg.eps)
        self.norm1 = nn.LayerNorm(dim, eps=cfg.eps, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.eps, elementwise_affine=False)
        self.norm3 = nn.LayerNorm(dim, eps=cfg.eps, elementwise_affine=True)
        self.ffn = nn.Sequential(nn.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, dim))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        t_mod: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation + t_mod).chunk(6, dim=1)
        attn, kv = self.self_attn(self.norm1(x) * (1 + scale1) + shift1, rope, cache)
        x = x + gate1 * attn
        x = x + self.cross_attn(self.norm3(x), context)
        x = x + gate2 * self.ffn(self.norm2(x) * (1 + scale2) + shift2)
        return x, kv


class Head(nn.Module):
    """Output head, modulated by the time embedding itself (not the 6*dim projection)."""

    def __init__(self, cfg: WanDiTConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_dim * math.prod(cfg.patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation + t.unsqueeze(1)).chunk(2, dim=1)
        return self.head(self.norm(x) * (1 + scale) + shift)


class WanDiT(nn.Module):
    """Wan2.1 DiT with InfVSR's streaming forward; builds on the meta device (no data-dependent init)."""

    def __init__(self, config: WanDiTConfig = WanDiTConfig()) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = nn.Conv3d(config.in_dim, dim, kernel_size=config.patch_size, stride=config.patch_size)
        self.text_embedding = nn.Sequential(
            nn.Linear(CONTEXT_DIM, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(config.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.num_layers))
        self.head = Head(config)
        # Training only: recompute each block's activations in the backward pass instead of storing them.
        self.gradient_checkpointing = False

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        start_frame: int = 0,
        kv_cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """Predict the velocity for latents [B, in_dim, f, h, w] given context [B, 145, 512].

        ``start_frame`` is the RoPE time offset (latent frames already seen in the scene) and
        ``kv_cache`` the previous chunk's cache (None at a scene start). Returns the prediction
        [B, out_dim, f, h, w] and this chunk's cache, which replaces the old one.
        """
        cfg = self.config
        if kv_cache is not None and len(kv_cache) != len(self.blocks):
            raise ValueError(f"kv_cache has {len(kv_cache)} layers, the model {len(self.blocks)}")
        dtype = self.patch_embedding.weight.dtype
        t = self.time_embedding(sinusoidal_embedding(timestep, cfg.freq_dim).to(dtype))
        t_mod = self.time_projection(t).unflatten(1, (6, cfg.dim))
        context = self.text_embedding(context)

        x = self.patch_embedding(latents)
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)
        rope = rope_tables(cfg.dim // cfg.num_heads, grid, start_frame, dtype=cfg.rope_dtype, device=x.device)

        new_cache: KVCache = []
        checkpointed = self.gradient_checkpointing and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            args = (x, context, t_mod, rope, None if kv_cache is None else kv_cache[i])
            x, kv = checkpoint(block, *args, use_reentrant=False) if checkpointed else block(*args)
            new_cache.append(kv)
        return self._unpatchify(self.head(x, t), grid), new_cache

    def _unpatchify(self, x: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """[B, f*h*w, pt*ph*pw*c] (c fastest) -> [B, c, f*pt, h*ph, w*pw]."""
        f, h, w = grid
        pt, ph, pw = self.config.patch_size
        x = x.reshape(x.shape[0], f, h, w, pt, ph, pw, self.config.out_dim)
        return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(x.shape[0], self.config.out_dim, f * pt, h * ph, w * pw)
