"""The Wan2.1 causal video VAE as InfVSR streams it: explicit per-conv caches carried across chunks.

Encoding runs frame 0 of a sequence alone, then groups of 4 frames (one latent frame each);
decoding runs one latent frame at a time (1 frame first, then 4). Each causal conv keeps at most
its last 2 input frames, so cache memory stays constant however long the video. Frames taller
than a threshold are processed in blended spatial tiles with one cache per tile.
Parameter names and shapes match ``Wan2.1_VAE.pth`` for a strict ``load_state_dict``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CONV_FORMS", "WAN_LATENT_MEAN", "WAN_LATENT_STD", "StreamCache", "TileConfig", "WanVAE", "blend_mask", "tile_boxes"]

# Per-channel statistics of the Wan2.1 posterior mean: z = (mu - mean) / std.
WAN_LATENT_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)
WAN_LATENT_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916,
)

CACHE_T = 2  # frames of history a 3-tap causal conv needs
_REP = "Rep"  # decoder temporal-upsample marker after its first call (official quirk, see notes §4)

Box = tuple[int, int, int, int]  # (h0, h1, w0, w1) in latent pixels


class StreamCache:
    """Bounded temporal history of one streamed encoder or decoder (one per sequence/scene).

    Slot i belongs to the i-th cached causal conv in call order and holds at most 2 frames (or
    the 'Rep' marker); a tiled run keeps one sub-cache per tile box in ``tiles`` instead.
    """

    def __init__(self) -> None:
        self.slots: list[Tensor | str | None] = []
        self.tiles: dict[Box, StreamCache] = {}
        self._cursor = 0

    @property
    def empty(self) -> bool:
        """True before the first chunk of a sequence (nothing cached yet)."""
        return not self.slots and not self.tiles

    def nbytes(self) -> int:
        """Bytes held by cached tensors, tiles included (the streaming-memory footprint)."""
        own = sum(s.numel() * s.element_size() for s in self.slots if isinstance(s, Tensor))
        return own + sum(t.nbytes() for t in self.tiles.values())

    def to(self, device: torch.device | str) -> StreamCache:
        """Move every cached tensor (tiles included) to ``device``, in place; returns self."""
        self.slots = [s.to(device) if isinstance(s, Tensor) else s for s in self.slots]
        for tile in self.tiles.values():
            tile.to(device)
        return self

    def _rewind(self) -> None:
        self._cursor = 0

    def _claim(self) -> int:
        if self._cursor == len(self.slots):
            self.slots.append(None)
        self._cursor += 1
        return self._cursor - 1


@dataclasses.dataclass(frozen=True)
class TileConfig:
    """Spatial tiling (latent px): used when the padded HR height exceeds ``threshold`` px.

    Tiles overlap by ``size - stride``; ``ramp`` is the linear blend width. Tile caches live on
    ``cache_device`` between calls (CPU as upstream; None keeps them on the compute device).
    """

    size: int = 128
    stride: int = 110
    ramp: int = 18
    threshold: int = 1024
    cache_device: str | None = "cpu"

    def __post_init__(self) -> None:
        if not 0 < self.stride < self.size or not 0 < self.ramp <= self.size - self.stride:
            raise ValueError(f"need 0 < stride < size and 0 < ramp <= size - stride, got {self}")


def tile_boxes(height: int, width: int, size: int, stride: int) -> list[Box]:
    """Tile boxes covering a ``height`` x ``width`` grid: starts every ``stride`` until one reaches the edge."""
    return [(h0, h1, w0, w1) for h0, h1 in _spans(height, size, stride) for w0, w1 in _spans(width, size, stride)]


def _spans(length: int, size: int, stride: int) -> list[tuple[int, int]]:
    spans, start = [], 0
    while True:
        spans.append((start, min(start + size, length)))
        if start + size >= length:
            return spans
        start += stride


def blend_mask(height: int, width: int, edges: tuple[bool, bool, bool, bool], ramp: int) -> Tensor:
    """[height, width] blend weight of one tile: linear ramps (1/ramp .. 1) on inner sides, min of H and W.

    ``edges`` = (top, bottom, left, right) flags telling which sides lie on the frame border (no ramp).
    """
    rows = _ramp_1d(height, edges[0], edges[1], ramp)
    cols = _ramp_1d(width, edges[2], edges[3], ramp)
    return torch.minimum(rows[:, None].expand(height, width), cols[None, :].expand(height, width))


def _ramp_1d(length: int, at_start: bool, at_end: bool, ramp: int) -> Tensor:
    mask = torch.ones(length)
    up = (torch.arange(ramp) + 1) / ramp
    if not at_start:
        mask[:ramp] = up
    if not at_end:
        mask[-ramp:] = up.flip(0)
    return mask


def conv_taps_summed(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """A stride-1 3-D conv (no time padding) as one 2-D conv per time tap over the frames, summed.

    x [B,C,T,H,W], weight [O,C,kt,kh,kw] -> [B,O,T-kt+1,H',W']; for channels-last inputs with B = 1
    every frame view is itself channels-last, so nothing is copied but the per-tap outputs.
    """
    b, c, _, h, w = x.shape
    taps = weight.shape[2]
    t = x.shape[2] - taps + 1
    frames = x.transpose(1, 2)  # [B,T,C,H,W]
    out: Tensor | None = None
    for k in range(taps):
        y = F.conv2d(frames[:, k:k + t].reshape(b * t, c, h, w), weight[:, :, k], bias if k == 0 else None,
                     padding=padding)
        out = y if out is None else out.add_(y)
    return out.reshape(b, t, *out.shape[1:]).transpose(1, 2)


def conv_taps_stacked(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """The same conv as ``conv_taps_summed``: one 2-D conv over the time taps stacked on channels.

    The stack is built channels-last ([B,t,H,W,kt*C], tap-major), matching the reshaped weight.
    """
    b, c, _, h, w = x.shape
    taps = weight.shape[2]
    t = x.shape[2] - taps + 1
    last = x.permute(0, 2, 3, 4, 1)  # [B,T,H,W,C]
    stacked = torch.cat([last[:, k:k + t] for k in range(taps)], dim=-1).reshape(b * t, h, w, taps * c)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(weight.shape[0], taps * c, *weight.shape[3:])
    out = F.conv2d(stacked.permute(0, 3, 1, 2), w2, bias, padding=padding)
    return out.reshape(b, t, *out.shape[1:]).transpose(1, 2)


CONV_FORMS = {"taps_summed": conv_taps_summed, "taps_stacked": conv_taps_stacked}


class CausalConv3d(nn.Conv3d):
    """3-D conv zero-padded spatially and causally in time (2*pad frames in front), cached frames first.

    The spatial zero padding is the convolution's own (no padded copy of the input); only the
    time axis is extended, by the cached frames or, at a sequence start, by zeros. ``form`` picks
    the kernel for stride-1 convs: cuDNN's 3-D conv, or one of ``CONV_FORMS`` (same values, 2-D kernels).
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple[int, int, int] = 0) -> None:
        pt, ph, pw = (padding,) * 3 if isinstance(padding, int) else padding
        super().__init__(in_dim, out_dim, kernel, stride=stride, padding=(0, ph, pw))
        self._time_pad = 2 * pt
        self.form = "conv3d"

    def forward(self, x: Tensor, history: Tensor | None = None) -> Tensor:
        missing = self._time_pad
        if history is not None and missing > 0:
            x = torch.cat([history, x], dim=2)
            missing -= history.shape[2]
        if missing > 0:
            x = F.pad(x, (0, 0, 0, 0, missing, 0))
        if self.form == "conv3d" or self.stride != (1, 1, 1) or self.kernel_size[0] == 1:
            return super().forward(x)
        return CONV_FORMS[self.form](x, self.weight, self.bias, self.padding[1:])


def _cached_conv(conv: CausalConv3d, x: Tensor, cache: StreamCache) -> Tensor:
    """Run ``conv`` with its slot's history, then store the last 2 input frames (official update rule)."""
    i = cache._claim()
    prev = cache.slots[i]
    keep = x[:, :, -CACHE_T:].clone()
    if keep.shape[2] < CACHE_T and prev is not None:
        keep = torch.cat([prev[:, :, -1:], keep], dim=2)
    out = conv(x, prev)
    cache.slots[i] = keep
    return out


def norm_silu(x: Tensor, gamma: Tensor, scale: float) -> Tensor:
    """SiLU(RMSNorm(x)) over [B,C,T,H,W] in upstream's op order."""
    y = F.normalize(x, dim=1) * scale * gamma
    return F.silu(y, inplace=not torch.is_grad_enabled())  # in place only when no graph needs y


def _gain_norm_silu(x: Tensor, gain: Tensor) -> Tensor:
    """SiLU(normalize(x) * gain) with ``gain`` = scale * gamma flattened: the form ``compile_norms`` fuses.

    A plain [C] tensor input (not the parameter, not a float) keeps the compiled graph shape-generic.
    """
    return F.silu(F.normalize(x, dim=1) * gain.view(-1, 1, 1, 1))


class RMSNorm(nn.Module):
    """Channel RMS norm (L2-normalise over C, times sqrt(C) and ``gamma``); no bias, as in Wan2.1.

    ``with_silu`` is the norm followed by SiLU (every use but the attention's); after
    ``WanVAE.compile_norms`` it runs as one compiled kernel instead.
    """

    def __init__(self, dim: int, images: bool) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim, *((1, 1) if images else (1, 1, 1))))
        self.fused: Callable[[Tensor, Tensor], Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma

    def with_silu(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            return self.fused(x, (self.gamma * self.scale).flatten())
        return norm_silu(x, self.gamma, self.scale)


def _per_frame(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply a 2-D op to every frame of [B, C, T, H, W]."""
    b, c, t, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class ResidualBlock(nn.Module):
    """Norm-SiLU-conv twice plus a (1x1x1 conv when widths differ) shortcut."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, images=False), nn.SiLU(),
            nn.Identity(),  # upstream Dropout slot: keeps the `residual.6` key numbering
            CausalConv3d(out_dim, out_dim, 3, padding=1),
        )
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: Tensor, cache: StreamCache) -> Tensor:
        h = self.shortcut(x)
        r = self.residual
        x = _cached_conv(r[2], r[0].with_silu(x), cache)
        x = _cached_conv(r[6], r[3].with_silu(x), cache)
        return x.add_(h)


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame separately."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def _frame(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.to_qkv(self.norm(x)).reshape(n, 1, c * 3, h * w).permute(0, 1, 3, 2).contiguous()
        q, k, v = qkv.chunk(3, dim=-1)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.squeeze(1).permute(0, 2, 1).reshape(n, c, h, w))

    def forward(self, x: Tensor) -> Tensor:
        return _per_frame(self._frame, x) + x


class _NearestUp2x(nn.Module):
    """Nearest-exact x2 spatial upsampling. Upstream casts to float32 and back; copying values

    needs no arithmetic, so the run dtype gives the same bits without two full-size casts.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest-exact")


class Resample(nn.Module):
    """Per-frame x2 spatial down/upsampling, optionally with the cached temporal x2 conv."""

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            self.resample = nn.Sequential(_NearestUp2x(), nn.Conv2d(dim, dim // 2, 3, padding=1))
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        else:
            raise ValueError(f"unknown resample mode {mode!r}")
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x: Tensor, cache: StreamCache) -> Tensor:
        if self.mode == "upsample3d":
            x = self._time_up(x, cache)
        x = _per_frame(self.resample, x)
        if self.mode == "downsample3d":
            x = self._time_down(x, cache)
        return x

    def _time_up(self, x: Tensor, cache: StreamCache) -> Tensor:
        """First call: mark 'Rep' and keep 1 frame; second: conv with zero history; then normal history."""
        i = cache._claim()
        prev = cache.slots[i]
        if prev is None:
            cache.slots[i] = _REP
            return x
        keep = x[:, :, -CACHE_T:].clone()
        if keep.shape[2] < CACHE_T:
            head = torch.zeros_like(keep) if isinstance(prev, str) else prev[:, :, -1:]
            keep = torch.cat([head, keep], dim=2)
        y = self.time_conv(x, None if isinstance(prev, str) else prev)
        cache.slots[i] = keep
        b, c2, t, h, w = y.shape
        # Channel halves are the earlier/later frame of each pair: interleave them in time.
        y = y.reshape(b, 2, c2 // 2, t, h, w)
        return torch.stack((y[:, 0], y[:, 1]), 3).reshape(b, c2 // 2, t * 2, h, w)

    def _time_down(self, x: Tensor, cache: StreamCache) -> Tensor:
        """First call: pass through; later: stride-2 3-tap conv over [previous call's last frame, x].

        Upstream stores the whole first-call map, but only its last frame is ever read, so only that is kept.
        """
        i = cache._claim()
        prev = cache.slots[i]
        cache.slots[i] = x[:, :, -1:].clone()
        if prev is None:
            return x
        return self.time_conv(torch.cat([prev[:, :, -1:], x], dim=2))


def _run_blocks(blocks: nn.Sequential, x: Tensor, cache: StreamCache) -> Tensor:
    for block in blocks:
        x = block(x) if isinstance(block, AttentionBlock) else block(x, cache)
    return x


def _middle(dim: int) -> nn.Sequential:
    return nn.Sequential(ResidualBlock(dim, dim), AttentionBlock(dim), ResidualBlock(dim, dim))


def _head(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(RMSNorm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1))


def _run_head(head: nn.Sequential, x: Tensor, cache: StreamCache) -> Tensor:
    return _cached_conv(head[2], head[0].with_silu(x), cache)


class Encoder3d(nn.Module):
    """Causal encoder: 3 -> 2*z_dim channels, spatial /2 per level, temporal /2 where flagged."""

    def __init__(self, dim: int, z_dim: int, dim_mult: tuple[int, ...], num_res_blocks: int,
                 temporal_downsample: tuple[bool, ...]) -> None:
        super().__init__()
        dims = [dim * u for u in (1, *dim_mult)]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
            for _ in range(num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                blocks.append(Resample(out_dim, "downsample3d" if temporal_downsample[i] else "downsample2d"))
        self.downsamples = nn.Sequential(*blocks)
        out_dim = dims[-1]
        self.middle = _middle(out_dim)
        self.head = _head(out_dim, z_dim)

    def forward(self, x: Tensor, cache: StreamCache) -> Tensor:
        x = _cached_conv(self.conv1, x, cache)
        x = _run_blocks(self.middle, _run_blocks(self.downsamples, x, cache), cache)
        return _run_head(self.head, x, cache)


class Decoder3d(nn.Module):
    """Causal decoder: z_dim -> 3 channels; each upsample halves the width the next level starts from."""

    def __init__(self, dim: int, z_dim: int, dim_mult: tuple[int, ...], num_res_blocks: int,
                 temporal_upsample: tuple[bool, ...]) -> None:
        super().__init__()
        dims = [dim * u for u in (dim_mult[-1], *dim_mult[::-1])]
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = _middle(dims[0])
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
            if i > 0:
                in_dim //= 2  # the previous Resample's 2-D conv halved the channels
            for _ in range(num_res_blocks + 1):
                blocks.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                blocks.append(Resample(out_dim, "upsample3d" if temporal_upsample[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*blocks)
        self.head = _head(dims[-1], 3)

    def forward(self, x: Tensor, cache: StreamCache) -> Tensor:
        x = _cached_conv(self.conv1, x, cache)
        x = _run_blocks(self.upsamples, _run_blocks(self.middle, x, cache), cache)
        return _run_head(self.head, x, cache)


class WanVAE(nn.Module):
    """Wan2.1 video VAE (the checkpoint's inner module) with streaming encode/decode and spatial tiling.

    Defaults are the released Wan2.1 VAE; a smaller ``base_dim`` gives a cheap model for tests.
    """

    def __init__(self, base_dim: int = 96, z_dim: int = 16, dim_mult: tuple[int, ...] = (1, 2, 4, 4),
                 num_res_blocks: int = 2, temporal_downsample: tuple[bool, ...] = (False, True, True),
                 latent_mean: tuple[float, ...] = WAN_LATENT_MEAN, latent_std: tuple[float, ...] = WAN_LATENT_STD,
                 tiling: TileConfig = TileConfig()) -> None:
        super().__init__()
        if len(temporal_downsample) != len(dim_mult) - 1:
            raise ValueError("temporal_downsample needs one flag per downsampling level (len(dim_mult) - 1)")
        if not len(latent_mean) == len(latent_std) == z_dim:
            raise ValueError(f"latent_mean/latent_std need {z_dim} entries")
        self.z_dim = z_dim
        self.spatial_factor = 2 ** (len(dim_mult) - 1)
        self.temporal_factor = 2 ** sum(temporal_downsample)
        self.latent_mean = tuple(latent_mean)
        self.latent_std = tuple(latent_std)
        self.tiling = tiling
        self.encoder = Encoder3d(base_dim, z_dim * 2, dim_mult, num_res_blocks, temporal_downsample)
        self.conv1 = CausalConv3d(z_dim * 2, z_dim * 2, 1)
        self.conv2 = CausalConv3d(z_dim, z_dim, 1)
        self.decoder = Decoder3d(base_dim, z_dim, dim_mult, num_res_blocks, temporal_downsample[::-1])

    def to_channels_last(self) -> WanVAE:
        """Store conv weights channels-last (NDHWC / NHWC): cuDNN then runs faster kernels on GPUs."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                module.weight.data = module.weight.data.to(memory_format=torch.channels_last_3d)
            elif isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.to(memory_format=torch.channels_last)
        return self

    def set_conv_form(self, form: str) -> WanVAE:
        """Run every stride-1 temporal conv as ``form``: "conv3d" (default) or one of ``CONV_FORMS``."""
        if form != "conv3d" and form not in CONV_FORMS:
            raise ValueError(f"conv form must be conv3d or one of {sorted(CONV_FORMS)}, got {form!r}")
        for module in self.modules():
            if isinstance(module, CausalConv3d):
                module.form = form
        return self

    def compile_norms(self) -> WanVAE:
        """Run every norm+SiLU pair through one ``torch.compile``d function (shape-dynamic, shared).

        At 720p these element-wise passes are memory-bound; fused, each reads and writes its map once.
        """
        compiled = torch.compile(_gain_norm_silu, dynamic=True)
        for module in self.modules():
            if isinstance(module, RMSNorm):
                module.fused = compiled
        return self

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, 1/std) as [1, C, 1, 1, 1]; 1/std is taken in float32, then both cast to the run dtype."""
        mean = torch.tensor(self.latent_mean, dtype=torch.float32)
        inv_std = 1.0 / torch.tensor(self.latent_std, dtype=torch.float32)
        return tuple(s.to(dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1) for s in (mean, inv_std))

    def _tiled(self, x: Tensor, cache: StreamCache, run: Callable[[Tensor, StreamCache], Tensor],
               in_scale: int, out_scale: int) -> Tensor:
        """Run ``run`` per tile (own cache each) and blend: sum(out * mask) / sum(mask), as upstream."""
        cfg = self.tiling
        lat_h, lat_w = x.shape[-2] // in_scale, x.shape[-1] // in_scale
        weight = x.new_zeros(lat_h * out_scale, lat_w * out_scale)
        out: Tensor | None = None
        for box in tile_boxes(lat_h, lat_w, cfg.size, cfg.stride):
            h0, h1, w0, w1 = box
            tile_cache = cache.tiles.setdefault(box, StreamCache()).to(x.device)
            y = run(x[..., h0 * in_scale:h1 * in_scale, w0 * in_scale:w1 * in_scale], tile_cache)
            if cfg.cache_device is not None:
                tile_cache.to(cfg.cache_device)
            edges = (h0 == 0, h1 == lat_h, w0 == 0, w1 == lat_w)
            mask = blend_mask(y.shape[-2], y.shape[-1], edges, cfg.ramp * out_scale).to(y)
            if out is None:
                out = y.new_zeros(*y.shape[:3], *weight.shape)
            rows, cols = slice(h0 * out_scale, h1 * out_scale), slice(w0 * out_scale, w1 * out_scale)
            out[..., rows, cols] += y * mask
            weight[rows, cols] += mask
        return out / weight

    @torch.no_grad()
    def encode_chunk(self, x: Tensor, cache: StreamCache, first_chunk: bool) -> Tensor:
        """[B,3,T,H,W] in [-1,1] -> normalised posterior mean [B,z,f,H/8,W/8], carrying ``cache``.

        A sequence's first chunk has T = 1 mod 4 (frame 0 is encoded alone), later ones T = 0 mod 4.
        """
        return self.encode(x, cache, first_chunk)

    def encode(self, x: Tensor, cache: StreamCache, first_chunk: bool) -> Tensor:
        """``encode_chunk`` in the caller's grad mode (training the VAE differentiates through it)."""
        _, c, t, h, w = x.shape
        step = self.temporal_factor
        if c != 3 or h % self.spatial_factor or w % self.spatial_factor:
            raise ValueError(f"expected [B,3,T,H,W], H and W multiples of {self.spatial_factor}: {tuple(x.shape)}")
        if t % step != (1 if first_chunk else 0) or t < 1:
            kind = "first" if first_chunk else "later"
            raise ValueError(f"a {kind} chunk needs T = {int(first_chunk)} mod {step} frames, got {t}")
        if first_chunk != cache.empty:
            raise ValueError("first_chunk must be given exactly when the cache is fresh (new sequence)")
        if h > self.tiling.threshold:
            return self._tiled(x, cache, lambda xt, ct: self._encode(xt, ct, first_chunk), self.spatial_factor, 1)
        return self._encode(x, cache, first_chunk)

    def _encode(self, x: Tensor, cache: StreamCache, first_chunk: bool) -> Tensor:
        step = self.temporal_factor
        starts = [0, *range(1, x.shape[2], step)] if first_chunk else list(range(0, x.shape[2], step))
        outs = []
        for s in starts:
            cache._rewind()
            outs.append(self.encoder(x[:, :, s:s + (1 if s == 0 and first_chunk else step)], cache))
        mu = self.conv1(torch.cat(outs, dim=2))[:, :self.z_dim]
        mean, inv_std = self._stats(mu)
        return (mu - mean) * inv_std

    @torch.no_grad()
    def decode_latent(self, z: Tensor, cache: StreamCache) -> Tensor:
        """One normalised latent frame [B,z,1,h,w] -> frames [B,3,n,8h,8w] in [-1,1] (n = 1 first, then 4)."""
        return self._decode_frame(z, cache)

    def _decode_frame(self, z: Tensor, cache: StreamCache) -> Tensor:
        if z.shape[1] != self.z_dim or z.shape[2] != 1:
            raise ValueError(f"expected one latent frame [B,{self.z_dim},1,h,w], got {tuple(z.shape)}")
        if z.shape[-2] * self.spatial_factor > self.tiling.threshold:
            frames = self._tiled(z, cache, self._decode, 1, self.spatial_factor)
        else:
            frames = self._decode(z, cache)
        return frames.clamp(-1, 1)

    def _decode(self, z: Tensor, cache: StreamCache) -> Tensor:
        mean, inv_std = self._stats(z)
        cache._rewind()
        return self.decoder(self.conv2(z / inv_std + mean), cache)

    def decode_chunk(self, z: Tensor, cache: StreamCache) -> Tensor:
        """Decode a chunk [B,z,f,h,w] latent frame by latent frame and concatenate the frames in time."""
        return torch.cat([self.decode_latent(z[:, :, i:i + 1], cache) for i in range(z.shape[2])], dim=2)

    def decode(self, z: Tensor, cache: StreamCache) -> Tensor:
        """``decode_chunk`` in the caller's grad mode (pixel losses differentiate through the frozen decoder)."""
        return torch.cat([self._decode_frame(z[:, :, i:i + 1], cache) for i in range(z.shape[2])], dim=2)
