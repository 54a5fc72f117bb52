"""InfVSR's joint visual guidance encoder: RAM's Swin-L + ``image_proj`` with SeeSR's DAPE LoRA merged.

Written from the facts in the parity reference (notes_checkpoints.md §1.3, §1.4, §6). Parameter
names equal the official ones, so the kept RAM keys load with ``load_state_dict(strict=True)``.
The two recomputed buffer kinds (``relative_position_index``, ``attn_mask``) are non-persistent and
built from plain tensor ops, so the whole module can be constructed on the meta device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SwinConfig",
    "VisualEncoder",
    "load_visual_encoder",
    "merge_dape",
    "prepare_reference",
    "select_ram_keys",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RAM_PREFIXES = ("visual_encoder.", "image_proj.")
_RECOMPUTED_BUFFERS = ("relative_position_index", "attn_mask")
_SHIFT_MASK_VALUE = -100.0


@dataclasses.dataclass(frozen=True)
class SwinConfig:
    """Swin + projection sizes; the defaults are RAM's Swin-L at 384 px with a 512-d projection."""

    img_size: int = 384
    patch_size: int = 4
    in_chans: int = 3
    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 12
    mlp_ratio: float = 4.0
    proj_dim: int = 512

    @property
    def num_features(self) -> int:
        """Channel width of the last stage (1536 for Swin-L)."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)


def _relative_position_index(window: int, device: torch.device | None = None) -> Tensor:
    """[N, N] index into the (2w-1)^2-row bias table for every (query, key) pair of a window."""
    idx = torch.arange(window, device=device)
    coords = torch.stack(torch.meshgrid(idx, idx, indexing="ij")).flatten(1)  # [2, N]
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # [2, N, N]
    return rel[0] * (2 * window - 1) + rel[1]


def _shift_mask(grid: int, window: int, shift: int, device: torch.device | None = None) -> Tensor:
    """[nW, N, N] additive mask (0 / -100) that keeps shifted windows from mixing wrapped regions."""
    idx = torch.arange(grid, device=device)
    region = (idx >= grid - window).long() + (idx >= grid - shift).long()  # 0, 1, 2 per row/col
    labels = region[:, None] * 3 + region[None, :]
    labels = _window_partition(labels[None, :, :, None], window)[..., 0]  # [nW, N]
    differs = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(differs.shape, device=device).masked_fill(differs, _SHIFT_MASK_VALUE)


def _window_partition(x: Tensor, window: int) -> Tensor:
    """[B, H, W, C] -> [B * nW, window*window, C], windows in row-major order within each image."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def _window_reverse(windows: Tensor, window: int, grid: int) -> Tensor:
    """Inverse of ``_window_partition`` for a square ``grid``: [B * nW, N, C] -> [B, grid, grid, C]."""
    c = windows.shape[-1]
    n = grid // window
    x = windows.view(-1, n, n, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, grid, grid, c)


class _WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative-position bias."""

    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("relative_position_index", _relative_position_index(window), persistent=False)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """x: [B * nW, N, C]; mask: [nW, N, N] or None."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.num_heads).permute(2, 0, 1).unsqueeze(0)  # [1, nH, N, N]
        if mask is not None:
            num_windows = mask.shape[0]
            bias = (bias + mask.unsqueeze(1)).unsqueeze(0).expand(b // num_windows, -1, -1, -1, -1)
            bias = bias.reshape(b, self.num_heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype).contiguous())
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    """Linear -> exact (erf) GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _SwinBlock(nn.Module):
    """Pre-norm (shifted) window attention + MLP; window shrinks and shift turns off when grid <= window."""

    def __init__(self, dim: int, grid: int, num_heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        if grid <= window:
            window, shift = grid, 0
        self.grid, self.window, self.shift = grid, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _WindowAttention(dim, window, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        self.register_buffer("attn_mask", _shift_mask(grid, window, shift) if shift else None, persistent=False)

    def init_buffers(self, device: torch.device) -> None:
        """Recompute the non-persistent buffers on ``device``."""
        self.attn.relative_position_index = _relative_position_index(self.window, device)
        if self.shift:
            self.attn_mask = _shift_mask(self.grid, self.window, self.shift, device)

    def forward(self, x: Tensor) -> Tensor:
        b, length, c = x.shape
        h = self.norm1(x).view(b, self.grid, self.grid, c)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
        h = _window_reverse(self.attn(_window_partition(h, self.window), self.attn_mask), self.window, self.grid)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, length, c)
        return x + self.mlp(self.norm2(x))


class _PatchMerging(nn.Module):
    """2x2 neighbour concat ((even,even), (odd,even), (even,odd), (odd,odd)) -> LayerNorm(4C) -> Linear(4C->2C)."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        b, _, c = x.shape
        x = x.view(b, self.grid, self.grid, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class _SwinStage(nn.Module):
    """``depth`` blocks (shift on odd blocks), then an optional patch merging."""

    def __init__(self, dim: int, grid: int, depth: int, num_heads: int, cfg: SwinConfig, downsample: bool) -> None:
        super().__init__()
        shift = cfg.window_size // 2
        self.blocks = nn.ModuleList(
            _SwinBlock(dim, grid, num_heads, cfg.window_size, shift if i % 2 else 0, cfg.mlp_ratio)
            for i in range(depth)
        )
        self.downsample = _PatchMerging(dim, grid) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class _PatchEmbed(nn.Module):
    """Non-overlapping patch conv followed by LayerNorm over channels."""

    def __init__(self, cfg: SwinConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class _SwinTransformer(nn.Module):
    """RAM's Swin backbone: returns [average-pooled token, grid tokens] after the final LayerNorm."""

    def __init__(self, cfg: SwinConfig) -> None:
        super().__init__()
        self.patch_embed = _PatchEmbed(cfg)
        grid = cfg.img_size // cfg.patch_size
        last = len(cfg.depths) - 1
        self.layers = nn.ModuleList(
            _SwinStage(cfg.embed_dim * 2**i, grid // 2**i, depth, heads, cfg, downsample=i < last)
            for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads, strict=True))
        )
        self.norm = nn.LayerNorm(cfg.num_features)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)


class VisualEncoder(nn.Module):
    """Swin-L + ``image_proj``: prepared reference [B,3,384,384] -> DiT visual context [B,145,512]."""

    def __init__(self, config: SwinConfig = SwinConfig()) -> None:
        super().__init__()
        self.config = config
        self.visual_encoder = _SwinTransformer(config)
        self.image_proj = nn.Linear(config.num_features, config.proj_dim)

    def init_buffers(self) -> None:
        """Recompute ``relative_position_index``/``attn_mask`` on the parameters' device (after a meta build)."""
        device = self.image_proj.weight.device
        for module in self.modules():
            if isinstance(module, _SwinBlock):
                module.init_buffers(device)

    def forward(self, image: Tensor) -> Tensor:
        size = self.config.img_size
        if image.ndim != 4 or tuple(image.shape[1:]) != (self.config.in_chans, size, size):
            raise ValueError(f"expected [B, {self.config.in_chans}, {size}, {size}], got {list(image.shape)}")
        return self.image_proj(self.visual_encoder(image.to(self.image_proj.weight.dtype)))


def select_ram_keys(ram_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keep the ``visual_encoder.``/``image_proj.`` tensors of RAM's ``model`` state dict, minus recomputed buffers."""
    return {
        key: value
        for key, value in ram_state.items()
        if key.startswith(_RAM_PREFIXES) and not key.endswith(_RECOMPUTED_BUFFERS)
    }


def _lora_tensor(dape_state: Mapping[str, Tensor], key: str, shape: tuple[int, int]) -> Tensor:
    if key not in dape_state:
        raise ValueError(f"DAPE state is missing {key}")
    value = dape_state[key]
    if tuple(value.shape) != shape:
        raise ValueError(f"DAPE tensor {key} has shape {list(value.shape)}, expected {list(shape)}")
    return value.to(torch.float32)


def merge_dape(
    swin_state: Mapping[str, Tensor], dape_state: Mapping[str, Tensor], rank: int = 8, scale: float = 1 / 8
) -> dict[str, Tensor]:
    """Fold DAPE's Q/V LoRA into every Swin ``attn.qkv.weight`` (float32): Q += B_q A_q * s, V += B_v A_v * s.

    K rows and biases are untouched, other tensors are passed through, extra DAPE keys are ignored.
    """
    merged = dict(swin_state)
    found = False
    for key, weight in swin_state.items():
        if not (key.startswith("visual_encoder.layers.") and key.endswith(".attn.qkv.weight")):
            continue
        found = True
        name = key[: -len(".weight")]
        if weight.ndim != 2 or weight.shape[0] != 3 * weight.shape[1]:
            raise ValueError(f"{key} has shape {list(weight.shape)}, expected [3C, C]")
        c = weight.shape[1]
        lora_a = _lora_tensor(dape_state, f"{name}.lora_A", (2 * rank, c))
        lora_b = _lora_tensor(dape_state, f"{name}.lora_B", (2 * c, rank))
        w = weight.to(torch.float32, copy=True)
        w[:c] += (lora_b[:c] @ lora_a[:rank]) * scale
        w[2 * c :] += (lora_b[c:] @ lora_a[rank:]) * scale
        merged[key] = w
    if not found:
        raise ValueError("no visual_encoder.layers.*.attn.qkv.weight tensor to merge DAPE into")
    return merged


def load_visual_encoder(
    ram_state: Mapping[str, Tensor],
    dape_state: Mapping[str, Tensor],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    config: SwinConfig = SwinConfig(),
) -> VisualEncoder:
    """Official loading path: filter RAM keys, merge DAPE, strict-load (meta build, no double copy), cast."""
    state = merge_dape(select_ram_keys(ram_state), dape_state)
    with torch.device("meta"):
        encoder = VisualEncoder(config)
    encoder.load_state_dict(state, strict=True, assign=True)
    encoder.init_buffers()
    return encoder.to(device=device, dtype=dtype).eval().requires_grad_(False)


def prepare_reference(lr_frame: Tensor, size: int = 384, dtype: torch.dtype | None = None) -> Tensor:
    """LR frame [B,3,H,W] in [-1,1] -> [0,1] -> antialiased bilinear size x size -> ImageNet-normalised.

    Computed in float32 like the official CPU preprocessing, then cast to ``dtype`` (default: the input's).
    """
    if lr_frame.ndim != 4 or lr_frame.shape[1] != 3:
        raise ValueError(f"expected an RGB frame batch [B, 3, H, W], got {list(lr_frame.shape)}")
    x = lr_frame.to(torch.float32) / 2 + 0.5
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype or lr_frame.dtype)
