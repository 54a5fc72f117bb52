"""Seeded GT -> LR degradations applied chunk by chunk: BI, BD and a realistic chain ending in H.264.

Each degradation maps (T,H,W,3) uint8 GT chunks to (T',H/s,W/s,3) uint8 LR chunks; ``reset(seed)``
starts a clip and ``flush()`` returns frames still buffered at its end (only the codec buffers).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from infvsr_bench.errors import ConfigError
from infvsr_bench.media.sources import check_recorded, spec_type, split_spec
from infvsr_bench.registry import Registry


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(T,3,h,w) float in [0,255] -> (T,h,w,3) uint8, rounded and clamped."""
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _to_tensor(chunk: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float()


class Degradation(ABC):
    """A GT -> LR mapping at integer ``scale``; ``spec()`` records every parameter and the clip seed."""

    name: str
    RECORDED: tuple[str, ...] = ()  # constant spec keys, re-checked by build_degradation
    CLIP_KEYS: tuple[str, ...] = ("seed",)  # per-clip spec keys, re-derived by reset(seed)

    def __init__(self, scale: int) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ConfigError(f"{self.name}: scale must be an integer >= 1, got {scale!r}")
        self.scale = int(scale)
        self.seed: int | None = None
        self._lr_size = (0, 0)

    def reset(self, seed: int) -> None:
        """Start a new clip."""
        self.seed = int(seed)

    def _check(self, chunk: np.ndarray) -> None:
        """Validate a GT chunk and note its LR size."""
        if chunk.dtype != np.uint8 or chunk.ndim != 4 or chunk.shape[-1] != 3:
            raise ValueError(f"{self.name}: expects uint8 (T,H,W,3) chunks, got {chunk.dtype} {chunk.shape}")
        h, w = chunk.shape[1:3]
        if h % self.scale or w % self.scale:
            raise ConfigError(f"{self.name}: frame size {h}x{w} (HxW) is not divisible by the scale {self.scale}")
        self._lr_size = (h // self.scale, w // self.scale)

    def apply(self, chunk: np.ndarray) -> np.ndarray:
        """Degrade a (T,H,W,3) uint8 GT chunk; H and W must be divisible by the scale."""
        self._check(chunk)
        return self._degrade(chunk) if len(chunk) else self._empty()

    @abstractmethod
    def _degrade(self, chunk: np.ndarray) -> np.ndarray: ...

    def _empty(self) -> np.ndarray:
        return np.zeros((0, *self._lr_size, 3), np.uint8)

    def flush(self) -> np.ndarray:
        """LR frames still buffered at the end of the clip (none here)."""
        return self._empty()

    def spec(self) -> dict[str, Any]:
        return {"type": self.name, "scale": self.scale, "seed": self.seed}


class Bicubic(Degradation):
    """BI: PyTorch antialiased bicubic (Keys a=-0.5, as PIL/MATLAB imresize) on float [0,255], rounded."""

    name = "bicubic"
    RECORDED = ("antialias",)

    def _degrade(self, chunk: np.ndarray) -> np.ndarray:
        x = F.interpolate(_to_tensor(chunk), size=self._lr_size, mode="bicubic", antialias=True, align_corners=False)
        return _to_uint8(x)

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "antialias": True}


class BlurDown(Degradation):
    """BD as BasicSR's ``duf_downsample``: 13x13 Gaussian (sigma 0.4*scale, 1.6 at x4), reflect pad, every s-th pixel.

    BasicSR pads by 6+2s, convolves with stride s and crops 2 outputs per side: output j samples the
    blurred pixel at j*s, i.e. offset 0 (``blur[0::s, 0::s]``). Its 'reflect' pad excludes the edge
    pixel (scipy's mode='mirror'). We pad 6 and stride s, which gives the same values.
    """

    name = "bd"
    OFFSET = 0
    RECORDED = ("offset", "padding")

    def __init__(self, scale: int, sigma: float | None = None, kernel_size: int = 13) -> None:
        super().__init__(scale)
        self.sigma = 0.4 * self.scale if sigma is None else float(sigma)
        if not self.sigma > 0 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"bd: need sigma > 0 and an odd kernel_size, got {self.sigma}, {kernel_size}")
        self.kernel_size = int(kernel_size)
        taps = np.exp(-0.5 * (np.arange(kernel_size) - kernel_size // 2) ** 2 / self.sigma**2)
        taps /= taps.sum()
        self._kernel = torch.from_numpy(np.outer(taps, taps)).float().repeat(3, 1, 1, 1)

    def _degrade(self, chunk: np.ndarray) -> np.ndarray:
        pad = self.kernel_size // 2
        x = F.pad(_to_tensor(chunk), (pad, pad, pad, pad), mode="reflect")
        return _to_uint8(F.conv2d(x, self._kernel, stride=self.scale, groups=3))

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "sigma": self.sigma, "kernel_size": self.kernel_size, "offset": self.OFFSET, "padding": "reflect"}


# --- realistic: RealBasicVSR-style second-order chain + H.264 ----------------------------------


@dataclass(frozen=True)
class StageRanges:
    """Parameter ranges of one blur -> resize -> noise -> JPEG stage (Real-ESRGAN / RealBasicVSR defaults)."""

    blur_prob: float
    sigma: tuple[float, float]
    resize_probs: tuple[float, float, float]  # up, down, keep
    resize_up: tuple[float, float]
    resize_down: tuple[float, float]
    gaussian_prob: float  # else Poisson
    noise_sigma: tuple[float, float]  # Gaussian, in 0..255 levels
    poisson_scale: tuple[float, float]
    gray_noise_prob: float
    jpeg_quality: tuple[int, int]


STAGES = (
    StageRanges(1.0, (0.2, 3.0), (0.2, 0.7, 0.1), (1.0, 1.5), (0.15, 1.0), 0.5, (1.0, 30.0), (0.05, 3.0), 0.4, (30, 95)),
    StageRanges(0.8, (0.2, 1.5), (0.3, 0.4, 0.3), (1.0, 1.2), (0.3, 1.0), 0.5, (1.0, 25.0), (0.05, 2.5), 0.4, (30, 95)),
)
KERNEL_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
ISO_PROB = 0.45 / 0.70  # Real-ESRGAN's iso : aniso kernel odds
POISSON_LEVELS = 256.0  # photon levels for full scale, as Real-ESRGAN for 8-bit content
INTERPOLATIONS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def _sample_stage(rng: np.random.Generator, r: StageRanges) -> dict[str, Any]:
    """Draw one stage's parameters (once per clip, so the chain is temporally consistent)."""
    blur = None
    if rng.random() < r.blur_prob:
        iso = bool(rng.random() < ISO_PROB)
        sx = float(rng.uniform(*r.sigma))
        sy = sx if iso else float(rng.uniform(*r.sigma))
        angle = 0.0 if iso else float(rng.uniform(-math.pi, math.pi))
        blur = {"kernel_size": int(rng.choice(KERNEL_SIZES)), "sigma_x": sx, "sigma_y": sy, "angle": angle}
    mode = int(rng.choice(3, p=r.resize_probs))
    scale = float(rng.uniform(*(r.resize_up if mode == 0 else r.resize_down))) if mode < 2 else 1.0
    resize = {"scale": scale, "interp": str(rng.choice(list(INTERPOLATIONS)))}
    if rng.random() < r.gaussian_prob:
        noise = {"kind": "gaussian", "sigma": float(rng.uniform(*r.noise_sigma))}
    else:
        noise = {"kind": "poisson", "scale": float(rng.uniform(*r.poisson_scale))}
    noise["gray"] = bool(rng.random() < r.gray_noise_prob)
    quality = int(rng.integers(r.jpeg_quality[0], r.jpeg_quality[1] + 1))
    return {"blur": blur, "resize": resize, "noise": noise, "jpeg_quality": quality}


def gaussian_kernel(kernel_size: int, sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """A normalised (an)isotropic 2-D Gaussian kernel rotated by ``angle`` radians."""
    r = kernel_size // 2
    x, y = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip (OpenCV/libjpeg, 4:2:0) of a float RGB image; returns float32."""
    bgr = cv2.cvtColor(np.clip(np.rint(image), 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok, "OpenCV failed to JPEG-encode a frame"
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)


class H264Stream:
    """Streaming in-memory libx264 encode + h264 decode (single-threaded, so bit-exact across runs)."""

    def __init__(self, size: tuple[int, int], crf: int, preset: str) -> None:
        import av

        self.size = size
        self.padded = (size[0] + size[0] % 2, size[1] + size[1] % 2)  # yuv420p needs even sizes
        self.encoder = av.CodecContext.create("libx264", "w")
        self.encoder.height, self.encoder.width = self.padded
        self.encoder.pix_fmt = "yuv420p"
        self.encoder.time_base = Fraction(1, 25)
        self.encoder.framerate = Fraction(25, 1)
        self.encoder.thread_count = 1
        self.encoder.options = {"crf": str(crf), "preset": preset}
        self.decoder = av.CodecContext.create("h264", "r")
        self.decoder.thread_count = 1
        self.pts = 0

    def _decode(self, packets: list) -> list[np.ndarray]:
        h, w = self.size
        return [f.to_ndarray(format="rgb24")[:h, :w] for p in packets for f in self.decoder.decode(p)]

    def push(self, frames: np.ndarray) -> list[np.ndarray]:
        """Encode frames; return whatever decoded frames the codec pipeline has released so far."""
        import av

        if frames.shape[1:3] != self.size:
            raise ValueError(f"H.264 stream is {self.size}, got frames of {frames.shape[1:3]} mid-clip")
        pad = ((0, self.padded[0] - self.size[0]), (0, self.padded[1] - self.size[1]), (0, 0))
        packets = []
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.pad(frame, pad, mode="edge"), format="rgb24").reformat(format="yuv420p")
            vf.pts = self.pts
            self.pts += 1
            packets.extend(self.encoder.encode(vf))
        return self._decode(packets)

    def finish(self) -> list[np.ndarray]:
        """Drain the encoder and the decoder."""
        return self._decode(list(self.encoder.encode(None))) + self._decode([None])


class Realistic(Degradation):
    """Second-order (blur, resize, noise, JPEG) x2 chain sampled once per clip, resize to LR, then H.264.

    Only the noise is drawn per frame (from the clip-seeded generator). The LR stream is encoded with
    libx264 (yuv420p, ``crf``, ``preset``) and decoded as a stream, so frames leave with encoder latency:
    ``apply`` may return fewer frames than it got and ``flush`` returns the rest.
    """

    name = "realistic"
    RECORDED = ("codec", "pix_fmt")
    CLIP_KEYS = ("seed", "params")

    def __init__(self, scale: int, crf: int = 28, preset: str = "medium") -> None:
        super().__init__(scale)
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
            raise ConfigError(f"realistic: crf must be an integer in 0..51, got {crf!r}")
        if preset not in X264_PRESETS:
            raise ConfigError(f"realistic: unknown x264 preset {preset!r}; available: {', '.join(X264_PRESETS)}")
        self.crf, self.preset = int(crf), preset
        self.params: dict[str, Any] | None = None
        self._codec: H264Stream | None = None
        self._open = False

    def reset(self, seed: int) -> None:
        super().reset(seed)
        params_seed, noise_seed = np.random.SeedSequence(self.seed).spawn(2)
        rng = np.random.default_rng(params_seed)
        self.params = {
            "stages": [_sample_stage(rng, r) for r in STAGES],
            "final_interp": str(rng.choice(list(INTERPOLATIONS))),
        }
        self._noise_rng = np.random.default_rng(noise_seed)
        self._codec, self._open = None, True

    def _noise(self, image: np.ndarray, noise: Mapping[str, Any]) -> np.ndarray:
        """Per-frame Gaussian or Poisson noise (colour, or grey shared by the channels)."""
        rng = self._noise_rng
        base = image.mean(axis=2, keepdims=True) if noise["gray"] else image
        if noise["kind"] == "gaussian":
            out = rng.normal(0.0, noise["sigma"], base.shape)
        else:
            levels = np.clip(base, 0, 255) / 255 * POISSON_LEVELS
            out = (rng.poisson(levels) - levels) / POISSON_LEVELS * 255 * noise["scale"]
        return np.broadcast_to(out, image.shape).astype(np.float32)

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        assert self.params is not None
        h, w = self._lr_size
        image = frame.astype(np.float32)
        for i, stage in enumerate(self.params["stages"]):
            if stage["blur"] is not None:
                image = cv2.filter2D(image, -1, gaussian_kernel(**stage["blur"]), borderType=cv2.BORDER_REFLECT_101)
            # Stage 1 resizes relative to GT, stage 2 relative to the LR target (as Real-ESRGAN).
            ref = frame.shape[:2] if i == 0 else (h, w)
            size = (max(2, round(ref[1] * stage["resize"]["scale"])), max(2, round(ref[0] * stage["resize"]["scale"])))
            image = cv2.resize(image, size, interpolation=INTERPOLATIONS[stage["resize"]["interp"]])
            image = np.clip(image + self._noise(image, stage["noise"]), 0, 255)
            image = _jpeg(image, stage["jpeg_quality"])
        image = cv2.resize(image, (w, h), interpolation=INTERPOLATIONS[self.params["final_interp"]])
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def degrade(self, chunk: np.ndarray) -> np.ndarray:
        """The chain up to (not including) H.264: (T,H,W,3) -> (T,H/s,W/s,3) uint8; advances the noise stream."""
        if not self._open:
            raise RuntimeError("realistic: call reset(seed) at the start of each clip before apply")
        self._check(chunk)
        return np.stack([self._frame(f) for f in chunk])

    def _degrade(self, chunk: np.ndarray) -> np.ndarray:
        lr = self.degrade(chunk)
        if self._codec is None:
            self._codec = H264Stream(self._lr_size, self.crf, self.preset)
        out = self._codec.push(lr)
        return np.stack(out) if out else self._empty()

    def flush(self) -> np.ndarray:
        """The frames the codec still holds; ends the clip (reset before the next one)."""
        out = self._codec.finish() if self._codec is not None else []
        self._codec, self._open = None, False
        return np.stack(out) if out else self._empty()

    def spec(self) -> dict[str, Any]:
        return {
            **super().spec(),
            "crf": self.crf,
            "preset": self.preset,
            "codec": "libx264",
            "pix_fmt": "yuv420p",
            "params": self.params,
        }


DEGRADATIONS: Registry[type] = Registry("degradation")
DEGRADATIONS.register("bicubic", Bicubic)
DEGRADATIONS.register("bd", BlurDown)
DEGRADATIONS.register("realistic", Realistic)


def build_degradation(spec: Mapping[str, Any], scale: int) -> Degradation:
    """Build ``spec['type']`` at ``scale`` from the remaining keys; per-clip keys (seed, params) come from reset()."""
    name = spec_type("degradation", spec)
    cls = DEGRADATIONS.get(name)
    options, recorded = split_spec("degradation", cls, spec, ("scale", *cls.RECORDED, *cls.CLIP_KEYS))
    degradation = cls(scale=scale, **options)
    constant = {k: v for k, v in recorded.items() if k not in cls.CLIP_KEYS}
    check_recorded("degradation", name, degradation.spec(), constant)
    return degradation
