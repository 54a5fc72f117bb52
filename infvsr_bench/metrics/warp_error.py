"""E*warp, the flow-warping error of diffusion-VSR papers (DOVE, InfVSR; Lai et al. 2018's mask).

For each pair (t, t+1), on frames downsampled x0.5 (bilinear): forward flow F (t -> t+1) and
backward flow B (t+1 -> t) from the output video; non-occlusion mask ``M = not(A or B)`` in frame
t with A: ``|B_w + F|^2 > 0.01 (|B_w|^2 + |F|^2) + 0.5`` (B_w = B sampled at p + F(p)) and
B: ``|grad F|^2 > 0.01 |F|^2 + 0.002``; ``E_t = sum_p M |I_t - I_{t+1}(p + F)|^2 / sum_p M`` on
[0,1] RGB, x1000; the clip value is the mean over pairs. This is Lai et al.'s reference code,
which calls ``detect_occlusion(bw, fw)``: its "fw_w + bw" and "grad bw" are B_w + F and grad F here.
RAFT gets frames mapped to [-1,1] by default (protocol ``ewarp``); ``flow_options.input:
evalcrafter_div255`` (conf ``ewarp_evalcrafter``, protocol ``evalcrafter``) follows EvalCrafter's
``compute_video_warping_error``, to reproduce published values that carry it: RAFT sees [-1, -0.992], and
the x0.5 frames are padded (replicate, centred) to a multiple of 8 by RAFT's ``InputPadder`` and never
unpadded, so that border is in the flow, the mask and the error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ClipError
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.metrics.flow import FlowRuntime, build_flow, describe, input_padding
from infvsr_bench.metrics.settings import EwarpDISSettings, EwarpSettings


def warp(x: torch.Tensor, flow: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Sample ``x`` [N,C,H,W] at ``p + flow(p)`` (bilinear, pixel centres): brings frame b to a for flow a->b.

    ``border`` clamps to the edge pixels as FlowNet2's Resample2d in Lai et al.'s code does.
    """
    h, w = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    gx = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    gy = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    return F.grid_sample(x, torch.stack((gx, gy), dim=-1), mode="bilinear", padding_mode=padding, align_corners=True)


def non_occluded(flow_ab: torch.Tensor, flow_ba: torch.Tensor, fb_rel: float = 0.01, fb_abs: float = 0.5,
                 mb_rel: float = 0.01, mb_abs: float = 0.002, squared: bool = True,
                 padding: str = "border") -> torch.Tensor:
    """Lai et al.'s mask [N,H,W] (bool) of pixels of frame a neither occluded (A) nor on a motion boundary (B)."""

    def mag(v: torch.Tensor) -> torch.Tensor:
        sq = (v**2).sum(1)
        return sq if squared else sq.sqrt()

    ba_w = warp(flow_ba, flow_ab, padding)
    a = mag(ba_w + flow_ab) > fb_rel * (mag(ba_w) + mag(flow_ab)) + fb_abs
    du = torch.zeros_like(flow_ab)
    dv = torch.zeros_like(flow_ab)
    du[..., :, :-1] = flow_ab[..., :, :-1] - flow_ab[..., :, 1:]  # forward differences, 0 on the last column/row
    dv[..., :-1, :] = flow_ab[..., :-1, :] - flow_ab[..., 1:, :]
    b = mag(torch.cat((du, dv), 1)) > mb_rel * mag(flow_ab) + mb_abs
    return ~(a | b)


class Ewarp(Metric):
    """E*warp x10^-3 (lower is better); per-frame value at t is the pair (t, t+1)."""

    name = "ewarp"
    version = "1"  # instances append every setting: see ``self.version``
    evalcrafter_version = "2"  # protocol evalcrafter: since 2 the InputPadder border is kept (#21 point 3)
    kind = MetricKind.TEMPORAL
    higher_is_better = False
    Settings = EwarpSettings
    runtime_options = ("device", "batch_size", "weights", "weights_dir", "allow_download")
    weights_choices = ("auto", "random")

    def __init__(self, settings: EwarpSettings | None = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        self.device = resolve_device(runtime.get("device", "auto"))
        self.flow = build_flow(self.settings.flow, self.settings.flow_options, FlowRuntime(**runtime))
        self.weights, self.weights_sha256 = self.flow.weights, dict(self.flow.weights_sha256)
        self.keep_padding = self.protocol() == "evalcrafter"
        base = self.evalcrafter_version if self.keep_padding else type(self).version
        self.version = f"{base}[{describe(self.settings)}]"

    @property
    def needs_gt(self) -> bool:
        return self.settings.flow_source == "gt"

    def protocol(self) -> str:
        """``evalcrafter`` when RAFT gets EvalCrafter's double-scaled input (as published E*warp may; the frames
        then keep InputPadder's border as in EvalCrafter), else ``ewarp``."""
        return "evalcrafter" if self.settings.flow_options.get("input") == "evalcrafter_div255" else "ewarp"

    def reset(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # last (output, flow source) frame
        self._next: int | None = None
        self._frames: list[int] = []
        self._values: list[float] = []

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 255
        if self.settings.scale != 1:
            x = F.interpolate(x, scale_factor=self.settings.scale, mode="bilinear", align_corners=False)
        if self.keep_padding:  # EvalCrafter pads for RAFT after the resize and never crops back
            x = F.pad(x, input_padding(*x.shape[-2:]), mode="replicate")
        return x

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        src = sr if self.settings.flow_source == "output" else gt
        if src is None:
            raise ClipError(f"{self.column}: flow_source 'gt' needs ground truth")
        if self._next is not None and frame_index != self._next:
            raise ValueError(f"{self.column}: expected frame {self._next}, got {frame_index} (chunks must be contiguous)")
        start = frame_index
        if self._prev is not None:
            sr, src, start = np.concatenate([self._prev[0][None], sr]), np.concatenate([self._prev[1][None], src]), start - 1
        self._prev, self._next = (sr[-1].copy(), src[-1].copy()), start + len(sr)
        if len(sr) < 2:
            return
        img = self._prepare(sr)
        fimg = img if self.settings.flow_source == "output" else self._prepare(src)
        fw, bw = (f.to(self.device) for f in self.flow.consecutive(fimg))
        self._frames.extend(range(start, start + len(sr) - 1))
        self._values.extend(self.pair_errors(img[:-1], img[1:], fw, bw).tolist())

    def pair_errors(self, a: torch.Tensor, b: torch.Tensor, fw: torch.Tensor, bw: torch.Tensor) -> np.ndarray:
        """E for each pair (a_i, b_i) given flows a->b and b->a, in the metric's units."""
        s = self.settings
        mask = non_occluded(fw, bw, s.fb_rel, s.fb_abs, s.mb_rel, s.mb_abs, s.squared, s.padding).float()
        sq = (a - warp(b, fw, s.padding)) ** 2
        err = sq.sum(1) if s.channels == "sum" else sq.mean(1)
        count = mask.sum((1, 2))
        # Lai et al.: a pair without any non-occluded pixel contributes 0.
        e = torch.where(count > 0, (err * mask).sum((1, 2)) / count.clamp(min=1), torch.zeros_like(count))
        return (e.double() * s.units).cpu().numpy()

    def compute(self) -> MetricResult:
        values = np.asarray(self._values, dtype=np.float64)
        frames = pd.DataFrame({"frame": np.asarray(self._frames, dtype=np.int64), self.column: values})
        return MetricResult(frames=frames, scalars={self.column: float(values.mean()) if values.size else float("nan")})


class EwarpDIS(Ewarp):
    """E*warp with OpenCV DIS flow instead of RAFT (no weights; not comparable to papers' E*warp)."""

    name = "ewarp_dis"
    Settings = EwarpDISSettings
