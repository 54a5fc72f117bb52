"""Every built-in metric's Settings: the options that change its value, with their one set of defaults.

Imports no torch, so the CLI registers these defaults for the configs (conf/metrics/<column>.yaml starts
from ``/metric_settings/<metric>``, infvsr_bench.config.register_schemas) before any metric is loaded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

PIXEL_PROTOCOLS = ("basicsr", "dove", "dove_y")  # what each computes: PROTOCOLS in pixel.py
PIXEL_CHANNELS = ("y", "rgb")  # basicsr's ``channel``: CHANNELS in pixel.py
# pyiqa's NIQE luma: its default YIQ Y (0.299/0.587/0.114), or its BT.601 Y option; both rounded as MATLAB's.
NIQE_COLOR_SPACES = ("yiq", "ycbcr")
DEFAULT_GAPS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
SCENE_CUT_MODES = ("auto", "detect", "none")
PRECISIONS = ("vbench", "float32", "float16")


def _check_skip(skip_ends: int) -> None:
    if skip_ends < 0:
        raise ValueError(f"skip_ends must be >= 0, got {skip_ends}")


@dataclasses.dataclass
class NoSettings:
    """No options: pyiqa's defaults for the metric, pinned by its version string."""


@dataclasses.dataclass
class PixelSettings:
    """Options that change a PSNR/SSIM value; under a dove protocol ``channel`` does not apply (recorded null)."""

    protocol: Literal["basicsr", "dove", "dove_y"] = "basicsr"
    channel: Literal["y", "rgb"] | None = "y"
    crop_border: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in PIXEL_PROTOCOLS:
            raise ValueError(f"protocol must be one of {list(PIXEL_PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol != "basicsr":
            self.channel = None  # the protocol fixes its colour handling
        elif self.channel not in PIXEL_CHANNELS:
            raise ValueError(f"channel must be 'y' or 'rgb', got {self.channel!r}")
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")


@dataclasses.dataclass
class PSNRSettings(PixelSettings):
    """PixelSettings plus the clip rule for frames equal to their GT (basicsr only; dove has pyiqa's eps in every frame).

    ``cap_80db``: the clip value is the mean over frames of min(PSNR, 80 dB). 80 dB is what pyiqa's
    eps (MSE + 1e-8 on [0,1]) gives a frame equal to its GT, so such a frame counts as it does in
    pyiqa and DOVE's tables (libvmaf caps its PSNR the same way, at 60 dB for 8 bits); every frame
    under 80 dB (any real output) counts exactly as in BasicSR. ``inf``: BasicSR's plain mean, inf as
    soon as one frame equals its GT. Per-frame values stay BasicSR's (inf for an equal frame) either
    way, and the scalar ``<column>_identical_frames`` counts those frames.
    """

    identical_frames: Literal["cap_80db", "inf"] | None = "cap_80db"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.protocol != "basicsr":
            self.identical_frames = None
        elif self.identical_frames not in ("cap_80db", "inf"):
            raise ValueError(f"identical_frames must be 'cap_80db' or 'inf', got {self.identical_frames!r}")


@dataclasses.dataclass
class EwarpSettings:
    """Every knob of E*warp; the defaults are the convention of diffusion-VSR papers' tables."""

    flow: str = "raft"
    # Filled with the backend's defaults (raft: weights C_T_V1 = FlyingChairs+Things, 20 iterations).
    flow_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    # "output": flow of the output video (E*warp). "gt": flow of the ground truth. Lai et al.'s original
    # "input" (LR video) is not given to metrics, so it is not offered.
    flow_source: Literal["output", "gt"] = "output"
    scale: float = 0.5  # bilinear resize of every frame before flow, mask and error
    fb_rel: float = 0.01
    fb_abs: float = 0.5
    mb_rel: float = 0.01
    mb_abs: float = 0.002
    squared: bool = True  # squared flow magnitudes in the mask (Lai et al.'s code)
    # |I_t - warp(I_{t+1})|^2 per pixel: "sum" over RGB (the formula) or "mean" (Lai et al.'s code
    # counts the 3-channel mask, i.e. divides by 3).
    channels: Literal["sum", "mean"] = "sum"
    padding: Literal["border", "zeros"] = "border"
    units: float = 1000.0

    def __post_init__(self) -> None:
        from infvsr_bench.metrics.flow import flow_settings  # torch: once built, not for the defaults

        if self.flow_source not in ("output", "gt"):
            raise ValueError(f"flow_source must be 'output' or 'gt' (the LR input is not available to metrics), "
                             f"got {self.flow_source!r}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if self.channels not in ("sum", "mean"):
            raise ValueError(f"channels must be 'sum' or 'mean', got {self.channels!r}")
        if self.padding not in ("border", "zeros"):
            raise ValueError(f"padding must be 'border' or 'zeros', got {self.padding!r}")
        self.flow_options = dataclasses.asdict(flow_settings(self.flow, self.flow_options))


@dataclasses.dataclass
class EwarpDISSettings(EwarpSettings):
    """E*warp with OpenCV DIS flow: same definition, no weights, runs offline."""

    flow: str = "dis"


@dataclasses.dataclass
class TOFSettings:
    """tOF knobs: the flow backend (TecoGAN: Farneback 0.5, 3, 15, 3, 5, 1.2, 0 on grey), end skip, scale."""

    flow: str = "farneback"
    flow_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # filled with the backend's defaults
    skip_ends: int = 2
    scale: float = 1.0  # TecoGAN's tables print tOF x10: set 10 to match them
    crop_8x8: bool = True  # TecoGAN's metrics.py: flow on the whole frames, then crop the flow; False: no crop

    def __post_init__(self) -> None:
        from infvsr_bench.metrics.flow import flow_settings  # torch: once built, not for the defaults

        _check_skip(self.skip_ends)
        self.flow_options = dataclasses.asdict(flow_settings(self.flow, self.flow_options))


@dataclasses.dataclass
class TLPSettings:
    """tLP knobs: LPIPS AlexNet v0.1 (the `lpips` package, inputs [0,1] -> [-1,1]), end skip, scale."""

    skip_ends: int = 2
    scale: float = 100.0
    crop_8x8: bool = True  # TecoGAN's metrics.py crops the frames before LPIPS; False: full frames

    def __post_init__(self) -> None:
        _check_skip(self.skip_ends)


@dataclasses.dataclass
class NIQEBasicSRSettings:
    """Options that change a NIQE value."""

    crop_border: int = 0  # pixels removed from every edge first (BasicSR crops the scale factor)
    # Score only frames whose index is a multiple of this (NIQE takes ~0.6 s per 720p frame on a CPU);
    # the clip value is the mean over those frames.
    stride: int = 1

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")


@dataclasses.dataclass
class NIQESettings(NIQEBasicSRSettings):
    """Options that change a NIQE value."""

    # yiq: pyiqa's default luma; ycbcr: pyiqa's BT.601 option (not BasicSR's calculate_niqe: use niqe_basicsr).
    color_space: str = "yiq"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.color_space not in NIQE_COLOR_SPACES:
            raise ValueError(f"color_space must be one of {list(NIQE_COLOR_SPACES)}, got {self.color_space!r}")


@dataclasses.dataclass
class DoverSettings:
    """Options that change a DOVER value."""

    report: Literal["fused", "technical", "aesthetic"] = "fused"  # the metric's main value (leaderboard column)
    sampling: Literal["official", "windows"] = "official"  # official: one pass over the clip; windows: a curve
    window: int | None = 128  # frames per scored window (windows only; recorded null under official)
    seed: int = 0  # seeds the random fragment and frame offsets (window k uses seed + k)

    def __post_init__(self) -> None:
        if self.report not in ("fused", "technical", "aesthetic"):
            raise ValueError(f"report must be 'fused', 'technical' or 'aesthetic', got {self.report!r}")
        if self.sampling not in ("official", "windows"):
            raise ValueError(f"sampling must be 'official' or 'windows', got {self.sampling!r}")
        if self.sampling == "official":
            self.window = None
        elif self.window is None or self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")


@dataclasses.dataclass
class ConsistencySettings:
    """Options that change a VBench consistency value."""

    stride: int = 1  # score only frames whose index is a multiple of this (VBench: every frame)

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")


@dataclasses.dataclass
class ClipConsistencySettings(ConsistencySettings):
    """VBench background consistency's options: the stride and the precision CLIP runs in."""

    # "vbench" = what VBench's ``clip.load`` runs on the device used: float16 on CUDA (OpenAI's fp16 weights and
    # activations, LayerNorm in float32, features normalised and compared in float16), float32 on the CPU (where
    # clip.load calls model.float()). Recorded as the precision that ran: "float16" or "float32".
    precision: str = "vbench"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")


@dataclasses.dataclass
class DriftSettings(ConsistencySettings):
    """Options that change a drift value: frame gaps, their estimator, and the reference window."""

    gaps: tuple[int, ...] = DEFAULT_GAPS  # frame gaps of the similarity-vs-gap curve
    ring_size: int = 128  # gaps up to this many frames are exact (every pair)
    anchor_stride: int = 8  # longer gaps: only pairs whose earlier frame index is a multiple of this
    reference_frames: int = 32  # the "first chunk": mean feature of frames with index below this
    # Scene cuts left out of the boundary ratio: "auto" = the dataset's when it knows them, else
    # detected on the GT (on the output without GT); "detect" = always detected; "none" = kept in.
    scene_cuts: str = "auto"
    cut_threshold: float = 27.0  # PySceneDetect ContentDetector's threshold and min_scene_len (frames)
    cut_min_frames: int = 15

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scene_cuts not in SCENE_CUT_MODES:
            raise ValueError(f"scene_cuts must be one of {list(SCENE_CUT_MODES)}, got {self.scene_cuts!r}")
        if self.cut_threshold <= 0 or self.cut_min_frames < 0:
            raise ValueError("cut_threshold must be > 0 and cut_min_frames >= 0")
        self.gaps = tuple(sorted({int(g) for g in self.gaps}))
        if not self.gaps or self.gaps[0] < 1:
            raise ValueError(f"gaps must be positive frame counts, got {self.gaps}")
        if self.ring_size < 1 or self.reference_frames < 1:
            raise ValueError("ring_size and reference_frames must be >= 1")
        if self.anchor_stride < 1 or self.anchor_stride % self.stride:
            raise ValueError(f"anchor_stride ({self.anchor_stride}) must be a positive multiple of stride ({self.stride})")
