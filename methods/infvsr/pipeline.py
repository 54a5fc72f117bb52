"""InfVSR's one-step streaming pipeline over chunks (notes §3-§6).

Per chunk: antialiased bicubic x4 -> replicate padding (H, W to multiples of 16; time to 1 mod 4
for a scene's first chunk, 0 mod 4 after) -> causal VAE encode (carried caches) -> DiT at the
production-effective timestep with the previous chunk's keys/values -> ``latents - sigma * pred``
-> causal VAE decode -> crop. State between chunks is bounded: two VAE caches, one chunk of KV
cache, the RoPE position and the reference context.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from infvsr_bench.errors import ClipError
from methods.infvsr.dit import KVCache, WanDiT
from methods.infvsr.schedule import effective_sigma, effective_timestep, restore_latents, sigma_for_timestep
from methods.infvsr.vae import StreamCache, WanVAE
from methods.infvsr.visual_encoder import VisualEncoder, prepare_reference

SPATIAL_MULTIPLE = 16


def upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """[B,3,T,H,W] -> [B,3,T,sH,sW]: per-frame bicubic, antialias on, align_corners off, no clamp."""
    b, c, t, h, w = lr.shape
    frames = lr.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    up = F.interpolate(frames, scale_factor=scale, mode="bicubic", align_corners=False, antialias=True)
    return up.reshape(b, t, c, h * scale, w * scale).permute(0, 2, 1, 3, 4)


def pad_chunk(x: torch.Tensor, first_chunk: bool, temporal: int = 4) -> torch.Tensor:
    """Replicate-pad H, W (bottom/right) to multiples of 16 and T (at the end) to 1 or 0 mod 4."""
    t, h, w = x.shape[2:]
    ph, pw = -h % SPATIAL_MULTIPLE, -w % SPATIAL_MULTIPLE
    pt = (-(t - 1) % temporal) if first_chunk else (-t % temporal)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph, 0, 0), mode="replicate")
    if pt:
        x = torch.cat([x, x[:, :, -1:].expand(-1, -1, pt, -1, -1)], dim=2)
    return x


@dataclasses.dataclass
class SceneState:
    """What the pipeline carries from chunk to chunk within one scene."""

    encoder_cache: StreamCache = dataclasses.field(default_factory=StreamCache)
    decoder_cache: StreamCache = dataclasses.field(default_factory=StreamCache)
    kv_cache: KVCache | None = None
    start_frame: int = 0  # latent frames already processed in this scene (RoPE time offset)


class InfVSRPipeline:
    """Streams LR chunks ([B,3,T,H,W] in [-1,1]) to SR chunks, one DiT step each."""

    def __init__(self, dit: WanDiT, vae: WanVAE, encoder: VisualEncoder, scale: int = 4,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 upscale_on_device: bool = False) -> None:
        self.dit, self.vae, self.encoder = dit, vae, encoder
        # Upstream resizes in float32 on the CPU; on a GPU doing it there is faster (fp32 either way).
        self.upscale_on_device = upscale_on_device
        self.scale = scale
        self.device = torch.device(device)
        self.dtype = dtype
        self.timestep = effective_timestep()
        self.sigma = sigma_for_timestep(self.timestep)
        self.effective_sigma = effective_sigma(self.sigma, dtype)  # bf16 runs: 0.400390625, as upstream
        self.state = SceneState()
        self.context: torch.Tensor | None = None
        self.lr_size: tuple[int, int] | None = None
        # Seconds per stage (upscale, encode, dit, decode), only when profiling: it syncs the device.
        self.stage_seconds: dict[str, float] | None = None

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        if self.stage_seconds is None:
            yield
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - start

    def reset(self) -> None:
        """A new video: forget the scene state, the reference and the resolution."""
        self.state = SceneState()
        self.context = None
        self.lr_size = None

    def cache_nbytes(self) -> int:
        """Bytes held between chunks (VAE caches + KV cache): constant in the number of chunks."""
        kv = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.state.kv_cache or [])
        return self.state.encoder_cache.nbytes() + self.state.decoder_cache.nbytes() + kv

    @torch.no_grad()
    def set_reference(self, lr_frame: torch.Tensor) -> None:
        """Visual guidance from one LR frame [B,3,H,W] in [-1,1]: Swin-L tokens -> context [B,145,512]."""
        image = prepare_reference(lr_frame.to(self.device), self.encoder.config.img_size, dtype=self.dtype)
        self.context = self.encoder(image)

    @torch.no_grad()
    def process(self, lr: torch.Tensor, new_scene: bool, update_reference: bool = False) -> torch.Tensor:
        """One chunk [B,3,T,H,W] in [-1,1] (float32, any device) -> [B,3,T,sH,sW] in [-1,1]."""
        t, h, w = lr.shape[2:]
        restored = self.step(self.encode(lr, new_scene, update_reference))
        with self._stage("decode"):
            frames = self.vae.decode_chunk(restored, self.state.decoder_cache)
        return frames[:, :, :t, : h * self.scale, : w * self.scale]

    @torch.no_grad()
    def encode(self, lr: torch.Tensor, new_scene: bool, update_reference: bool = False) -> torch.Tensor:
        """A chunk's x_t: scene bookkeeping and reference, then x4 upscale, padding and the causal VAE encode."""
        h, w = lr.shape[3:]
        if self.lr_size is None:
            self.lr_size = (h, w)
        elif self.lr_size != (h, w):
            raise ClipError(f"frame size changed from {self.lr_size} to {(h, w)} inside a video")
        if new_scene or self.context is None:
            self.state = SceneState()
            self.set_reference(lr[:, :, 0])
        elif update_reference:
            self.set_reference(lr[:, :, 0])
        first = self.state.encoder_cache.empty
        with self._stage("upscale"):
            if self.upscale_on_device:
                lr = lr.to(self.device)
            hr = pad_chunk(upscale(lr.float(), self.scale), first).to(self.device, self.dtype)
        with self._stage("encode"):
            return self.vae.encode_chunk(hr, self.state.encoder_cache, first_chunk=first)

    def step(self, latents: torch.Tensor, keep_cache_graph: bool = False) -> torch.Tensor:
        """The one step, shared by inference and training: DiT velocity at the fixed timestep with the
        previous chunk's keys/values, ``x_t - sigma * v``; rolls the KV cache and the RoPE offset.

        Runs in the caller's grad mode; the cache kept for the next chunk is detached unless
        ``keep_cache_graph`` (training: gradients from a later chunk then reach this one through it).
        """
        with self._stage("dit"):
            timestep = torch.full((latents.shape[0],), self.timestep, device=self.device, dtype=self.dtype)
            pred, cache = self.dit(latents, timestep, self.context, self.state.start_frame, self.state.kv_cache)
            restored = restore_latents(latents, pred, self.sigma)
        self.state.kv_cache = cache if keep_cache_graph else [(k.detach(), v.detach()) for k, v in cache]
        self.state.start_frame += latents.shape[2]
        return restored
