"""PSNR and SSIM in the BasicSR / mmagic convention (BT.601 Y or RGB, crop border, MATLAB SSIM).

Two computations of the same float64 formulas: per frame with OpenCV on the CPU, and batched with
torch on a GPU (``device``), equal to ~1e-12 (tests); a 720p SSIM costs ~90 ms on the CPU.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from infvsr_bench.devices import resolve_device
from infvsr_bench.metrics.base import MetricKind, PerFrameMetric

SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
GAUSS_1D = cv2.getGaussianKernel(11, 1.5)  # MATLAB's window is its outer product: filter rows, then columns


def _luma(x: Any) -> Any:
    """BT.601 Y in [16, 235] of float64 RGB in [0, 1] (channels last; numpy array or torch tensor)."""
    return 16.0 + x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of a uint8 RGB image, in [16, 235] float64, unrounded (MATLAB rgb2ycbcr)."""
    return _luma(img.astype(np.float64) / 255.0)


def prepare(img: np.ndarray, channel: str, crop_border: int) -> np.ndarray:
    """Crop ``crop_border`` pixels from each edge, then take Y (H,W) or RGB (H,W,3) as float64."""
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(img) if channel == "y" else img.astype(np.float64)


def psnr(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """10 log10(255^2 / MSE) on [0,255] float64; inf when the images are equal."""
    mse = np.mean((prepare(sr, channel, crop_border) - prepare(gt, channel, crop_border)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _ssim_map(mu_a: Any, mu_b: Any, sq_a: Any, sq_b: Any, prod: Any) -> Any:
    """The SSIM map from the five Gaussian-filtered planes (numpy arrays or torch tensors alike)."""
    var_a, var_b, cov = sq_a - mu_a**2, sq_b - mu_b**2, prod - mu_a * mu_b
    return ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2))


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(x, -1, GAUSS_1D, GAUSS_1D)[5:-5, 5:-5]  # valid region only

    return float(_ssim_map(filt(a), filt(b), filt(a * a), filt(b * b), filt(a * b)).mean())


def ssim(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """MATLAB-compatible SSIM (11x11 Gaussian, sigma 1.5, valid region), mean over channels."""
    a, b = prepare(sr, channel, crop_border), prepare(gt, channel, crop_border)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 after cropping, got {a.shape[:2]}")
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def prepare_batch(frames: torch.Tensor, channel: str, crop_border: int) -> torch.Tensor:
    """uint8 [N,H,W,3] (any device) -> float64 [N,C,H',W']: ``prepare`` for a batch, C = 1 (Y) or 3."""
    if crop_border:
        frames = frames[:, crop_border:-crop_border, crop_border:-crop_border]
    x = frames.to(torch.float64)
    return _luma(x / 255.0)[:, None] if channel == "y" else x.permute(0, 3, 1, 2)


def psnr_batch(sr: torch.Tensor, gt: torch.Tensor, channel: str = "y", crop_border: int = 0) -> np.ndarray:
    """``psnr`` of every frame pair of two uint8 [N,H,W,3] tensors, computed where they are."""
    diff = prepare_batch(sr, channel, crop_border) - prepare_batch(gt, channel, crop_border)
    mse = diff.square().mean((1, 2, 3)).cpu().numpy()
    with np.errstate(divide="ignore"):
        return np.where(mse == 0, np.inf, 10.0 * np.log10(255.0**2 / mse))


def ssim_batch(sr: torch.Tensor, gt: torch.Tensor, channel: str = "y", crop_border: int = 0) -> np.ndarray:
    """``ssim`` of every frame pair of two uint8 [N,H,W,3] tensors: separable float64 Gaussian, valid region."""
    a, b = prepare_batch(sr, channel, crop_border), prepare_batch(gt, channel, crop_border)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 after cropping, got {tuple(a.shape[-2:])}")
    n, c, h, w = a.shape
    k = torch.from_numpy(GAUSS_1D[:, 0]).to(a.device)
    planes = torch.stack([a, b, a * a, b * b, a * b], 2).reshape(n * c * 5, 1, h, w)
    planes = F.conv2d(F.conv2d(planes, k.view(1, 1, 11, 1)), k.view(1, 1, 1, 11)).reshape(n, c, 5, h - 10, w - 10)
    return _ssim_map(*planes.unbind(2)).mean((2, 3)).mean(1).cpu().numpy()


@dataclasses.dataclass
class PixelSettings:
    """Options that change a PSNR/SSIM value."""

    channel: Literal["y", "rgb"] = "y"
    crop_border: int = 0

    def __post_init__(self) -> None:
        if self.channel not in ("y", "rgb"):
            raise ValueError(f"channel must be 'y' or 'rgb', got {self.channel!r}")
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")


class _PixelMetric(PerFrameMetric):
    """PSNR/SSIM: per frame with OpenCV on the CPU, per chunk with torch on a GPU (``device``)."""

    kind = MetricKind.FULL_REFERENCE
    higher_is_better = True
    Settings = PixelSettings
    runtime_options = ("device",)

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        self.device = resolve_device(runtime.get("device", "auto"))
        self.batched = self.device.type != "cpu"  # OpenCV per frame on CPUs, torch per chunk elsewhere

    @abstractmethod
    def batch_score(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        """Scores of a chunk of uint8 [N,H,W,3] frame pairs on ``self.device``."""

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        if not self.batched or gt is None:
            super().update(sr, gt, frame_index)
            return
        values = self.batch_score(*(torch.from_numpy(np.ascontiguousarray(x)).to(self.device) for x in (sr, gt)))
        self._frames.extend(range(frame_index, frame_index + len(sr)))
        self._values.extend(float(v) for v in values)


class PSNR(_PixelMetric):
    name = "psnr"
    version = "1.0"

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return psnr(sr, gt, self.settings.channel, self.settings.crop_border)

    def batch_score(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        return psnr_batch(sr, gt, self.settings.channel, self.settings.crop_border)


class SSIM(_PixelMetric):
    name = "ssim"
    version = "1.0"

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return ssim(sr, gt, self.settings.channel, self.settings.crop_border)

    def batch_score(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        return ssim_batch(sr, gt, self.settings.channel, self.settings.crop_border)
