"""3-D rotary position embedding of the Wan2.1 DiT, with InfVSR's absolute time offset.

Each head's channels form interleaved pairs (2j, 2j+1) treated as complex numbers, split into
time / row / column groups. For an axis group of n channels, pair j rotates by
``pos * 10000 ** (-2j / n)``. Time positions are ``start_frame + f`` (absolute within a scene),
row and column positions restart at 0 in every chunk.

Split: with P = head_dim / 2 pairs, row and column get ``P // 3`` pairs each and time the rest
(``P - 2 * (P // 3)``). For head_dim 128 that is 22 + 21 + 21 pairs (44 + 42 + 42 channels), the
official split; it equals the official ``dim // 3`` rule whenever that rule gives even channel
counts (e.g. head_dim 96: 16 + 16 + 16), and unlike it always covers all P pairs (the official
rule gives 11 + 10 + 10 = 31 pairs for head_dim 64 and crashes).
"""

from __future__ import annotations

import torch

__all__ = ["THETA", "apply_rope", "rope_split", "rope_tables"]

THETA = 10000.0


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Complex pairs per axis (time, row, column) for ``head_dim``; raises if it cannot split in three."""
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"RoPE needs an even head_dim >= 6 (one pair per axis), got {head_dim}")
    pairs = head_dim // 2
    spatial = pairs // 3
    return pairs - 2 * spatial, spatial, spatial


def _axis_angles(positions: torch.Tensor, pairs: int) -> torch.Tensor:
    """float64 angles [len(positions), pairs] for an axis of 2 * pairs channels."""
    channels = 2 * pairs
    inv_freq = 1.0 / (THETA ** (torch.arange(0, channels, 2, dtype=torch.float64, device=positions.device) / channels))
    return torch.outer(positions.to(torch.float64), inv_freq)


def rope_tables(
    head_dim: int,
    grid: tuple[int, int, int],
    start_frame: int = 0,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each [f*h*w, head_dim/2] in ``dtype``, for tokens ordered (frame, row, column).

    Angles are always derived in float64 (built once per chunk, so the cost is negligible and
    large absolute time positions stay exact); ``dtype`` is the precision the rotation runs in:
    float64 matches the official code, float32 is faster and stays within parity tolerance.
    """
    f, h, w = grid
    pt, ph, pw = rope_split(head_dim)

    def positions(start: int, n: int) -> torch.Tensor:
        return torch.arange(start, start + n, dtype=torch.int64, device=device)

    angles = torch.cat(
        [
            _axis_angles(positions(start_frame, f), pt).view(f, 1, 1, pt).expand(f, h, w, pt),
            _axis_angles(positions(0, h), ph).view(1, h, 1, ph).expand(f, h, w, ph),
            _axis_angles(positions(0, w), pw).view(1, 1, w, pw).expand(f, h, w, pw),
        ],
        dim=-1,
    ).reshape(f * h * w, head_dim // 2)
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of ``x`` [B, N, heads, head_dim] in the tables' dtype; returns x's dtype."""
    pairs = x.to(cos.dtype).unflatten(-1, (-1, 2))
    re, im = pairs.unbind(-1)
    cos, sin = cos[:, None, :], sin[:, None, :]
    rotated = torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)
