"""InfVSR's one-step flow-matching schedule: the effective timestep, its shifted sigma, the restore.

The official code declares t = 399 but stores it in a bfloat16 tensor, where it rounds to 400.0;
the released model runs with that value, so the time embedding and the sigma lookup use 400.
"""

from __future__ import annotations

import torch

__all__ = [
    "DECLARED_TIMESTEP",
    "NUM_TRAIN_TIMESTEPS",
    "SHIFT",
    "effective_sigma",
    "effective_timestep",
    "restore_latents",
    "shifted_sigmas",
    "sigma_for_timestep",
    "shift_sigma",
    "sigma_index",
]

DECLARED_TIMESTEP = 399
NUM_TRAIN_TIMESTEPS = 1000
SHIFT = 5.0


def effective_timestep(timestep: int = DECLARED_TIMESTEP, storage_dtype: torch.dtype = torch.bfloat16) -> float:
    """The timestep after a round trip through a ``storage_dtype`` tensor (399 -> 400.0 in bf16).

    Use the default for every run dtype: it is the value the production (bf16) pipeline sees.
    """
    return float(torch.tensor(timestep, dtype=storage_dtype).to(torch.float32))


def shift_sigma(u: torch.Tensor, shift: float = SHIFT) -> torch.Tensor:
    """Wan2.1's shifted schedule ``shift u / (1 + (shift - 1) u)`` (u = 0..1 -> sigma = 0..1)."""
    return shift * u / (1 + (shift - 1) * u)


def shifted_sigmas(num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, shift: float = SHIFT) -> torch.Tensor:
    """float32 ``shift_sigma(s)`` for s = 1 - i/N, i = 0..N-1 (linspace 1 -> 0, last dropped)."""
    return shift_sigma(torch.linspace(1.0, 0.0, num_train_timesteps + 1, dtype=torch.float32)[:-1], shift)


def sigma_index(timestep: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, shift: float = SHIFT) -> int:
    """Index of the schedule entry whose timestep ``N * sigma`` is closest to ``timestep`` (first on ties)."""
    timesteps = shifted_sigmas(num_train_timesteps, shift) * num_train_timesteps
    return int((timesteps - torch.tensor(timestep, dtype=torch.float32)).abs().argmin())


def sigma_for_timestep(timestep: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, shift: float = SHIFT) -> float:
    """The float32 sigma the official lookup picks for ``timestep`` (400 -> 0.4008152..., 399 -> 0.3985013...)."""
    return float(shifted_sigmas(num_train_timesteps, shift)[sigma_index(timestep, num_train_timesteps, shift)])


def effective_sigma(sigma: float, run_dtype: torch.dtype) -> float:
    """The sigma the authors' arithmetic applies in a run of ``run_dtype``.

    Their sigma is a 0-dim float32 tensor on the CUDA device, multiplied with the prediction: the CUDA
    kernel casts it to the common dtype, so a bf16 run uses bf16(0.4008152...) = 0.400390625; float32
    runs keep the exact value (the CPU fixture's).
    """
    return float(torch.tensor(sigma, dtype=torch.float32).to(run_dtype).to(torch.float32))


def restore_latents(latents: torch.Tensor, prediction: torch.Tensor, sigma: float) -> torch.Tensor:
    """One flow step from x_t = LR latents to the clean estimate, ``latents - sigma * prediction``, with
    sigma in the prediction's dtype as the authors' CUDA arithmetic has it (see ``effective_sigma``)."""
    s = torch.tensor(effective_sigma(sigma, prediction.dtype), dtype=prediction.dtype, device=prediction.device)
    return latents - prediction * s
