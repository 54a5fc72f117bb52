"""PSNR and SSIM under named protocols: the reference computations whose published numbers they reproduce.

- ``basicsr`` (BasicSR / mmagic tables, the default): [0,255] float64, BT.601 Y unrounded or RGB
  (``channel``), ``crop_border`` from the dataset's convention, MATLAB SSIM (11x11 Gaussian,
  sigma 1.5, valid region); a frame equal to its GT has PSNR inf.
- ``dove`` (DOVE's ``eval_metrics.py``, the InfVSR group's script): pyiqa's defaults, ``psnr`` on
  RGB in [0,1] with MSE + 1e-8, ``ssim`` on YIQ luma x255 *rounded* with the contrast term clamped
  at 0 (pyiqa); crop 0 unless set (the script's ``--crop``); ``channel`` does not apply.
- ``dove_y`` (the same script with ``--test_y_channel``): Y = 0.257R + 0.504G + 0.098B + 0.0625 in
  [0,1] fed as one channel to the same two pyiqa metrics (SSIM rounds Y x255).
The dove colour conversions run in float32 as pyiqa's and DOVE's tensors do, so rounding ties fall
the same way; values equal direct pyiqa calls (tests). Two computations of the same formulas: per
frame with OpenCV on the CPU, batched with torch on a GPU (``device``), equal to ~1e-12 (tests).
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from infvsr_bench.devices import resolve_device
from infvsr_bench.metrics.base import MetricKind, MetricResult, PerFrameMetric
from infvsr_bench.metrics.settings import PixelSettings, PSNRSettings

SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
GAUSS_1D = cv2.getGaussianKernel(11, 1.5)  # MATLAB's window is its outer product: filter rows, then columns
PYIQA_EPS = 1e-8  # pyiqa's psnr: 10 log10(1 / (MSE + eps)) on [0,1], so at most 80 dB
PSNR_CAP = -10.0 * np.log10(PYIQA_EPS)  # 80 dB: pyiqa's PSNR of a frame equal to its GT


def _luma(x: Any) -> Any:
    """BT.601 Y in [16, 235] of float64 RGB in [0, 1] (channels last; numpy array or torch tensor)."""
    return 16.0 + x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966


def _unit32(img: Any) -> Any:
    """uint8 RGB -> float32 in [0,1] (u / 255 in float32, as torchvision's ToTensor and pyiqa's inputs)."""
    return img.to(torch.float32) / 255 if isinstance(img, torch.Tensor) else img.astype(np.float32) / 255


def _float64(x: Any) -> Any:
    return x.to(torch.float64) if isinstance(x, torch.Tensor) else x.astype(np.float64)


def _yiq_y(x: Any) -> Any:
    """pyiqa's default Y (YIQ luma 0.299/0.587/0.114) of float32 RGB in [0,1], in float32."""
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _dove_y(x: Any) -> Any:
    """DOVE's ``--test_y_channel`` Y = 0.257R + 0.504G + 0.098B + 0.0625 of float32 RGB in [0,1], in float32."""
    return 0.257 * x[..., 0] + 0.504 * x[..., 1] + 0.098 * x[..., 2] + 0.0625


# Colour spaces: uint8 RGB (...,H,W,3), numpy or torch -> float64 planes (...,H,W,C) on the [0,255] scale.
SPACES: dict[str, Callable[[Any], Any]] = {
    "rgb": _float64,
    "bt601_y": lambda img: _luma(_float64(img) / 255.0)[..., None],
    "yiq_y_rounded": lambda img: _float64((_yiq_y(_unit32(img)) * 255).round())[..., None],
    "dove_y": lambda img: _float64(_dove_y(_unit32(img)))[..., None] * 255.0,
    "dove_y_rounded": lambda img: _float64((_dove_y(_unit32(img)) * 255).round())[..., None],
}
CHANNELS = {"y": "bt601_y", "rgb": "rgb"}  # basicsr's ``channel`` setting


@dataclasses.dataclass(frozen=True)
class PixelProtocol:
    """How one family of published tables computes PSNR and SSIM from uint8 RGB frames."""

    psnr_space: str | None  # a key of SPACES; None: the ``channel`` setting's
    ssim_space: str | None
    eps: float  # added to the MSE on [0,1] (pyiqa: 1e-8); 0: a frame equal to its GT has PSNR inf
    clamp_cs: bool  # pyiqa clamps SSIM's contrast-structure term at 0 (relu); MATLAB does not


PROTOCOLS: dict[str, PixelProtocol] = {
    "basicsr": PixelProtocol(None, None, 0.0, False),
    "dove": PixelProtocol("rgb", "yiq_y_rounded", PYIQA_EPS, True),
    "dove_y": PixelProtocol("dove_y", "dove_y_rounded", PYIQA_EPS, True),
}


def _crop(img: Any, crop_border: int) -> Any:
    return img[..., crop_border:-crop_border, crop_border:-crop_border, :] if crop_border else img


def _space(protocol: str, metric: str, channel: str | None) -> str:
    p = PROTOCOLS[protocol]
    space = p.psnr_space if metric == "psnr" else p.ssim_space
    return space or CHANNELS[channel or "y"]


def _psnr_from_mse(mse: Any, eps: float) -> Any:
    """10 log10(255^2 / (MSE + eps 255^2)) for MSEs on the [0,255] scale (numpy); inf where both are 0."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / (np.asarray(mse, dtype=np.float64) + eps * 255.0**2))


def psnr(sr: np.ndarray, gt: np.ndarray, channel: str | None = "y", crop_border: int = 0,
         protocol: str = "basicsr") -> float:
    """PSNR of one uint8 RGB frame pair under ``protocol`` (basicsr: inf when the frames are equal)."""
    space = SPACES[_space(protocol, "psnr", channel)]
    mse = np.mean((space(_crop(sr, crop_border)) - space(_crop(gt, crop_border))) ** 2)
    return float(_psnr_from_mse(mse, PROTOCOLS[protocol].eps))


def _ssim_map(mu_a: Any, mu_b: Any, sq_a: Any, sq_b: Any, prod: Any, clamp_cs: bool = False) -> Any:
    """The SSIM map from the five Gaussian-filtered planes (numpy arrays or torch tensors alike)."""
    var_a, var_b, cov = sq_a - mu_a**2, sq_b - mu_b**2, prod - mu_a * mu_b
    cs = (2 * cov + SSIM_C2) / (var_a + var_b + SSIM_C2)
    if clamp_cs:
        cs = cs.clip(min=0) if isinstance(cs, torch.Tensor) else np.maximum(cs, 0)
    return (2 * mu_a * mu_b + SSIM_C1) / (mu_a**2 + mu_b**2 + SSIM_C1) * cs


def _ssim_plane(a: np.ndarray, b: np.ndarray, clamp_cs: bool) -> float:
    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(x, -1, GAUSS_1D, GAUSS_1D)[5:-5, 5:-5]  # valid region only

    return float(_ssim_map(filt(a), filt(b), filt(a * a), filt(b * b), filt(a * b), clamp_cs).mean())


def ssim(sr: np.ndarray, gt: np.ndarray, channel: str | None = "y", crop_border: int = 0,
         protocol: str = "basicsr") -> float:
    """SSIM of one uint8 RGB frame pair under ``protocol`` (11x11 Gaussian, sigma 1.5, valid region), mean over channels."""
    space = SPACES[_space(protocol, "ssim", channel)]
    a, b = space(_crop(sr, crop_border)), space(_crop(gt, crop_border))
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 after cropping, got {a.shape[:2]}")
    clamp = PROTOCOLS[protocol].clamp_cs
    return float(np.mean([_ssim_plane(np.ascontiguousarray(a[..., c]), np.ascontiguousarray(b[..., c]), clamp)
                          for c in range(a.shape[2])]))


def prepare_batch(frames: torch.Tensor, space: str, crop_border: int) -> torch.Tensor:
    """uint8 [N,H,W,3] (any device) -> float64 [N,C,H',W'] in the colour space ``space`` (a key of SPACES)."""
    return SPACES[space](_crop(frames, crop_border)).permute(0, 3, 1, 2)


def psnr_batch(sr: torch.Tensor, gt: torch.Tensor, channel: str | None = "y", crop_border: int = 0,
               protocol: str = "basicsr") -> np.ndarray:
    """``psnr`` of every frame pair of two uint8 [N,H,W,3] tensors, computed where they are."""
    space = _space(protocol, "psnr", channel)
    diff = prepare_batch(sr, space, crop_border) - prepare_batch(gt, space, crop_border)
    return _psnr_from_mse(diff.square().mean((1, 2, 3)).cpu().numpy(), PROTOCOLS[protocol].eps)


def ssim_batch(sr: torch.Tensor, gt: torch.Tensor, channel: str | None = "y", crop_border: int = 0,
               protocol: str = "basicsr") -> np.ndarray:
    """``ssim`` of every frame pair of two uint8 [N,H,W,3] tensors: separable float64 Gaussian, valid region."""
    space = _space(protocol, "ssim", channel)
    a, b = prepare_batch(sr, space, crop_border), prepare_batch(gt, space, crop_border)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 after cropping, got {tuple(a.shape[-2:])}")
    n, c, h, w = a.shape
    k = torch.from_numpy(GAUSS_1D[:, 0]).to(a.device)
    planes = torch.stack([a, b, a * a, b * b, a * b], 2).reshape(n * c * 5, 1, h, w)
    planes = F.conv2d(F.conv2d(planes, k.view(1, 1, 11, 1)), k.view(1, 1, 1, 11)).reshape(n, c, 5, h - 10, w - 10)
    ssim_map = _ssim_map(*planes.unbind(2), clamp_cs=PROTOCOLS[protocol].clamp_cs)
    return ssim_map.mean((2, 3)).mean(1).cpu().numpy()


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

    def protocol(self) -> str:
        return str(self.settings.protocol)

    def _options(self) -> tuple[str | None, int, str]:
        s = self.settings
        return s.channel, s.crop_border, s.protocol

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
    version = "1.1"  # 1.1: protocols; a frame equal to its GT counts 80 dB in the clip value, not inf
    Settings = PSNRSettings

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return psnr(sr, gt, *self._options())

    def batch_score(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        return psnr_batch(sr, gt, *self._options())

    def compute(self) -> MetricResult:
        result = super().compute()
        values = np.asarray(self._values, dtype=np.float64)
        if self.settings.identical_frames == "cap_80db" and values.size:
            result.scalars[self.column] = float(np.minimum(values, PSNR_CAP).mean())
        if self.settings.protocol == "basicsr":  # the frames whose per-frame value is inf, for the report to say why
            result.scalars[f"{self.column}_identical_frames"] = float(np.isposinf(values).sum())
        return result


class SSIM(_PixelMetric):
    name = "ssim"
    version = "1.0"  # basicsr values unchanged by the protocols

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        return ssim(sr, gt, *self._options())

    def batch_score(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        return ssim_batch(sr, gt, *self._options())
