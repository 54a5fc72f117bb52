"""Wan2.1 flow-matching conventions for training: shifted sigmas, noising, velocity target, clean estimate.

x_t = (1 - sigma) x0 + sigma * eps, target v = eps - x0, x0 = x_t - sigma * v, timestep = 1000 sigma
(Self-Forcing utils/scheduler.py, wan_wrapper.py; the same restore as inference's ``restore_latents``).
"""

from __future__ import annotations

import torch

from methods.infvsr.schedule import NUM_TRAIN_TIMESTEPS, SHIFT, shift_sigma

__all__ = ["add_noise", "clean_estimate", "sample_sigmas", "shift_sigma", "timesteps"]  # shift_sigma: schedule.py's


def sample_sigmas(n: int, generator: torch.Generator, shift: float = SHIFT,
                  clamp: tuple[float, float] | None = None) -> torch.Tensor:
    """``n`` sigmas: u ~ U(0, 1), shifted, optionally clamped (DMD: [0.02, 0.98], as t in [20, 980])."""
    sigma = shift_sigma(torch.rand(n, generator=generator), shift)
    return sigma.clamp(*clamp) if clamp else sigma


def _view(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sigma.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = _view(sigma, x0)
    return (1 - s) * x0 + s * noise


def clean_estimate(x_t: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return x_t - _view(sigma, x_t) * velocity


def timesteps(sigma: torch.Tensor) -> torch.Tensor:
    """The DiT's timestep input for ``sigma`` (1000 sigma)."""
    return sigma * NUM_TRAIN_TIMESTEPS
