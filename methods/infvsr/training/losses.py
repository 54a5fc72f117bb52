"""The loss terms: pixel and temporal-difference supervision, flow matching, and the DMD estimator.

Videos are [B, C, T, H, W]. The DMD term is DMD2's stop-gradient form (main/sd_guidance.py): with
g = (mu_fake - mu_real) / mean|x - mu_real| (per sample), L = 1/2 mean((x - sg(x - g))^2), so
dL/dx = g / N: a descent step moves x towards the real score's estimate and away from the fake one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dmd_gradient", "dmd_loss", "flow_matching_loss", "pixel_loss", "temporal_loss"]


def pixel_loss(x: torch.Tensor, y: torch.Tensor, norm: str = "l1") -> torch.Tensor:
    """Mean absolute (l1) or squared (l2) difference."""
    return F.l1_loss(x, y) if norm == "l1" else F.mse_loss(x, y)


def temporal_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between the adjacent-frame differences of x and of y (time is dim 2; no flow alignment)."""
    return F.l1_loss(x[:, :, 1:] - x[:, :, :-1], y[:, :, 1:] - y[:, :, :-1])


def flow_matching_loss(velocity: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """MSE between the predicted velocity and the flow target ``noise - x0``."""
    return F.mse_loss(velocity, noise - x0)


def dmd_gradient(x: torch.Tensor, real_x0: torch.Tensor, fake_x0: torch.Tensor) -> torch.Tensor:
    """DMD's normalised direction g = (fake - real) / mean|x - real| per sample (NaNs to 0), no graph."""
    with torch.no_grad():
        dims = tuple(range(1, x.ndim))
        g = (fake_x0 - real_x0) / (x - real_x0).abs().mean(dim=dims, keepdim=True)
        return torch.nan_to_num(g)


def dmd_loss(x: torch.Tensor, real_x0: torch.Tensor, fake_x0: torch.Tensor) -> torch.Tensor:
    """1/2 mean((x - sg(x - g))^2): its gradient w.r.t. x is g / x.numel() (the published estimator)."""
    target = (x - dmd_gradient(x, real_x0, fake_x0)).detach()
    dtype = torch.promote_types(x.dtype, torch.float32)  # at least float32, as DMD2 computes it
    return 0.5 * F.mse_loss(x.to(dtype), target.to(dtype))
