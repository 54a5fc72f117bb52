"""Classical upscalers: antialiased bicubic (PyTorch, the upscaler InfVSR uses) and Lanczos (PIL)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from infvsr_bench.contracts import Method
from methods.configs import ClassicalConfig


class PerFrame(Method):
    """A method that upscales every frame on its own: it has no chunks, so no seams."""

    def chunk_layout(self) -> list[int] | None:
        return []


def bicubic_upscale(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """(T,3,H,W) float in [0,1] -> (T,3,sH,sW), PyTorch bicubic with antialias, align_corners=False."""
    return F.interpolate(frames, scale_factor=scale, mode="bicubic", antialias=True, align_corners=False)


class Bicubic(PerFrame):
    name = "bicubic"
    Config = ClassicalConfig

    @torch.inference_mode()
    def process(self, lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(lr).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        y = bicubic_upscale(x, self.scale).clamp_(0.0, 1.0).mul_(255.0).round_()
        return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


class Lanczos(PerFrame):
    name = "lanczos"
    Config = ClassicalConfig

    def process(self, lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[1:3]
        size = (w * self.scale, h * self.scale)
        return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in lr])
