"""PSNR and SSIM in the BasicSR / mmagic convention (BT.601 Y or RGB, crop border, MATLAB SSIM)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import cv2
import numpy as np

from infvsr_bench.metrics.base import MetricKind, PerFrameMetric


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of a uint8 RGB image, in [16, 235] float64, unrounded (MATLAB rgb2ycbcr)."""
    x = img.astype(np.float64) / 255.0
    return 16.0 + x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966


def prepare(img: np.ndarray, channel: str, crop_border: int) -> np.ndarray:
    """Crop ``crop_border`` pixels from each edge, then take Y (H,W) or RGB (H,W,3) as float64."""
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(img) if channel == "y" else img.astype(np.float64)


def psnr(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """10 log10(255^2 / MSE) on [0,255] float64; inf when the images are equal."""
    mse = np.mean((prepare(sr, channel, crop_border) - prepare(gt, channel, crop_border)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    window = k @ k.T

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]  # valid region only

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(sr: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """MATLAB-compatible SSIM (11x11 Gaussian, sigma 1.5, valid region), mean over channels."""
    a, b = prepare(sr, channel, crop_border), prepare(gt, channel, crop_border)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 after cropping, got {a.shape[:2]}")
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[2])]))


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


class PSNR(PerFrameMetric):
    name = "psnr"
    version = "1.0"
    kind = MetricKind.FULL_REFERENCE
    higher_is_better = True
    Settings = PixelSettings

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return psnr(sr, gt, self.settings.channel, self.settings.crop_border)


class SSIM(PerFrameMetric):
    name = "ssim"
    version = "1.0"
    kind = MetricKind.FULL_REFERENCE
    higher_is_better = True
    Settings = PixelSettings

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return ssim(sr, gt, self.settings.channel, self.settings.crop_border)
